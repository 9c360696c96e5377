//! Tests against a real LanceDB on disk.

use super::*;

const DIM: usize = 4;

fn meta() -> IndexMeta {
    IndexMeta::new("test/model", DIM)
}

fn chunk(root: &str, path: &str, symbol: &str, text: &str, vector: [f32; DIM]) -> ChunkRow {
    ChunkRow {
        chunk: StoredChunk {
            id: format!("{root}:{path}:{symbol}"),
            root: root.into(),
            path: path.into(),
            language: if path.ends_with(".rs") {
                "rust"
            } else {
                "python"
            }
            .into(),
            kind: "function".into(),
            symbol: symbol.into(),
            start_line: 1,
            end_line: 3,
            content_hash: format!("h-{symbol}"),
            text: text.into(),
        },
        vector: vector.to_vec(),
    }
}

fn file(root: &str, path: &str, chunks: u32) -> FileRow {
    FileRow {
        root: root.into(),
        path: path.into(),
        size: 10,
        mtime_ns: 42,
        content_hash: format!("f-{path}"),
        chunks,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

#[test]
fn round_trip_search_and_replace() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let store = Store::open_or_create(&db, &meta()).await.unwrap();
        store
            .replace_files(
                "/r",
                &["a.rs".into(), "b.py".into()],
                &[file("/r", "a.rs", 1), file("/r", "b.py", 1)],
                &[
                    chunk(
                        "/r",
                        "a.rs",
                        "parse_config",
                        "fn parse_config(path: &str) {}",
                        [1.0, 0.0, 0.0, 0.0],
                    ),
                    chunk(
                        "/r",
                        "b.py",
                        "retry_request",
                        "def retry_request(url, backoff): pass",
                        [0.0, 1.0, 0.0, 0.0],
                    ),
                ],
            )
            .await
            .unwrap();
        store.optimize().await.unwrap();

        let hits = store
            .vector_search(&[0.1, 0.9, 0.0, 0.0], 2, &SearchFilter::default())
            .await
            .unwrap();
        assert_eq!(hits[0].0.symbol, "retry_request");
        assert!(hits[0].1 > hits[1].1);

        let hits = store
            .text_search("config", 5, &SearchFilter::default())
            .await
            .unwrap();
        assert_eq!(hits.len(), 1, "identifier parts are searchable: {hits:?}");
        assert_eq!(hits[0].0.symbol, "parse_config");

        let filter = SearchFilter {
            languages: vec!["python".into()],
            roots: vec![],
        };
        let hits = store
            .vector_search(&[1.0, 0.0, 0.0, 0.0], 5, &filter)
            .await
            .unwrap();
        assert!(hits.iter().all(|(c, _)| c.language == "python"));

        // Replacing a file removes its old chunks; removing another drops it.
        store
            .replace_files(
                "/r",
                &["a.rs".into(), "b.py".into()],
                &[file("/r", "a.rs", 1)],
                &[chunk(
                    "/r",
                    "a.rs",
                    "load_config",
                    "fn load_config() {}",
                    [1.0, 0.0, 0.0, 0.0],
                )],
            )
            .await
            .unwrap();
        let prints = store.chunk_fingerprints().await.unwrap();
        assert_eq!(prints.len(), 1);
        assert_eq!(prints[0].2, "load_config");
        let files = store.files_under("/r").await.unwrap();
        assert_eq!(files.keys().collect::<Vec<_>>(), vec!["a.rs"]);

        let status = store.status().await.unwrap();
        assert_eq!((status.files, status.chunks), (1, 1));
        assert!(status.bytes > 0);
    });
}

#[test]
fn reopen_checks_model_and_refuses_foreign_dirs() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        drop(Store::open_or_create(&db, &meta()).await.unwrap());

        let reopened = Store::open(&db).await.unwrap();
        assert_eq!(reopened.meta(), &meta());

        let other = IndexMeta::new("other/model", 8);
        let err = Store::open_or_create(&db, &other).await.err().unwrap();
        assert!(matches!(err, StoreError::ModelMismatch { .. }), "{err}");
        assert!(err.to_string().contains("--rebuild"));

        let foreign = dir.path().join("foreign");
        std::fs::create_dir_all(&foreign).unwrap();
        std::fs::write(foreign.join("notes.txt"), "hello").unwrap();
        let err = Store::open_or_create(&foreign, &meta())
            .await
            .err()
            .unwrap();
        assert!(matches!(err, StoreError::NotAnIndex { .. }), "{err}");
        assert!(foreign.join("notes.txt").exists(), "nothing is lost");
        assert!(Store::destroy(&foreign).is_err());

        let missing = dir.path().join("missing");
        assert!(matches!(
            Store::open(&missing).await.err().unwrap(),
            StoreError::Missing { .. }
        ));
    });
}

#[test]
fn paths_with_quotes_are_escaped() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(&dir.path().join("db"), &meta())
            .await
            .unwrap();
        let path = "it's a \"dir\"/o'clock.py".to_string();
        store
            .replace_files(
                "/r'oot",
                std::slice::from_ref(&path),
                &[file("/r'oot", &path, 1)],
                &[chunk(
                    "/r'oot",
                    &path,
                    "f",
                    "def f(): pass",
                    [0.0, 0.0, 1.0, 0.0],
                )],
            )
            .await
            .unwrap();
        store
            .replace_files("/r'oot", &[path], &[], &[])
            .await
            .unwrap();
        assert!(store.chunk_fingerprints().await.unwrap().is_empty());
    });
}

#[test]
fn wrong_dimension_is_an_error() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(&dir.path().join("db"), &meta())
            .await
            .unwrap();
        let mut bad = chunk("/r", "a.rs", "f", "fn f() {}", [0.0; DIM]);
        bad.vector.push(1.0);
        let err = store
            .replace_files("/r", &["a.rs".into()], &[], &[bad])
            .await
            .err()
            .unwrap();
        assert!(matches!(err, StoreError::Dimension { .. }));
        assert!(store
            .vector_search(&[0.0; 3], 1, &SearchFilter::default())
            .await
            .is_err());
    });
}
