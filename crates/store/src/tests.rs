//! Tests against a real LanceDB on disk.

use std::sync::Arc;

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

/// Deterministic pseudo-random numbers in [-1, 1) (no extra dependency).
fn lcg(state: &mut u64) -> f32 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

/// A unit vector near one of 40 cluster centres, like embeddings of related code.
fn clustered_vector(state: &mut u64, centres: &[Vec<f32>]) -> Vec<f32> {
    let c = &centres[(lcg(state).abs() * centres.len() as f32) as usize % centres.len()];
    let mut v: Vec<f32> = c.iter().map(|x| x + 0.35 * lcg(state)).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

#[test]
fn large_tables_get_an_ann_index_with_high_recall_and_fresh_rows_stay_findable() {
    const ANN_DIM: usize = 32;
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            Store::open_or_create(&dir.path().join("db"), &IndexMeta::new("t/m", ANN_DIM))
                .await
                .unwrap();
        store.set_ann_min_rows(2_000);
        let mut state = 7u64;
        let centres: Vec<Vec<f32>> = (0..40)
            .map(|_| (0..ANN_DIM).map(|_| lcg(&mut state)).collect())
            .collect();
        let make = |i: usize, state: &mut u64| {
            let mut row = chunk(
                "/r",
                &format!("f{}.rs", i / 10),
                &format!("s{i}"),
                "fn x() {}",
                [0.0; DIM],
            );
            row.chunk.id = format!("id{i}");
            row.vector = clustered_vector(state, &centres);
            row
        };
        let rows: Vec<ChunkRow> = (0..3_000).map(|i| make(i, &mut state)).collect();
        let paths: Vec<String> = (0..300).map(|f| format!("f{f}.rs")).collect();
        let files: Vec<FileRow> = paths.iter().map(|p| file("/r", p, 10)).collect();
        store
            .replace_files("/r", &paths, &files, &rows)
            .await
            .unwrap();
        assert!(!store.has_vector_index().await.unwrap());
        store.ensure_text_index().await.unwrap();
        let before = store.disk_usage();
        assert!(
            before.vector_data > 3_000 * ANN_DIM as u64 * 2,
            "{before:?}"
        );
        assert!(before.chunk_data > 3_000 * 10, "{before:?}");
        assert!(
            before.text_index > 0 && before.vector_index == 0,
            "{before:?}"
        );
        store.optimize().await.unwrap();
        assert!(
            store.has_vector_index().await.unwrap(),
            "no ANN index at 3,000 rows"
        );
        let after = store.disk_usage();
        assert!(after.vector_index > 0, "{after:?}");
        assert_eq!(after.total(), store.status().await.unwrap().bytes);

        // Recall@10 of the ANN search against exact search.
        let filter = SearchFilter::default();
        let (mut found, mut total) = (0usize, 0usize);
        for _ in 0..40 {
            let q = clustered_vector(&mut state, &centres);
            let exact: Vec<String> = store
                .vector_search_exact(&q, 10, &filter)
                .await
                .unwrap()
                .into_iter()
                .map(|(c, _)| c.id)
                .collect();
            let ann = store.vector_search(&q, 10, &filter).await.unwrap();
            assert_eq!(ann.len(), 10);
            found += ann.iter().filter(|(c, _)| exact.contains(&c.id)).count();
            total += exact.len();
        }
        let recall = found as f64 / total as f64;
        eprintln!("ANN recall@10 = {recall:.3}");
        assert!(recall >= 0.9, "recall@10 {recall}");
        assert_eq!(
            store.vector_index_type().await.unwrap(),
            Some(ANN_KIND.index_type())
        );

        // An index of an earlier kind is replaced by the next optimisation.
        store.build_vector_index(AnnKind::HnswSq).await.unwrap();
        assert_eq!(
            store.vector_index_type().await.unwrap(),
            Some(IndexType::IvfHnswSq)
        );
        store.optimize().await.unwrap();
        assert_eq!(
            store.vector_index_type().await.unwrap(),
            Some(ANN_KIND.index_type())
        );

        // A row added after the index was built is found before and after the
        // next optimisation folds it in.
        let mut fresh = make(5_000, &mut state);
        fresh.chunk.path = "new.rs".into();
        let target = fresh.vector.clone();
        store
            .replace_files(
                "/r",
                &["new.rs".into()],
                &[file("/r", "new.rs", 1)],
                &[fresh],
            )
            .await
            .unwrap();
        for round in 0..2 {
            let hits = store.vector_search(&target, 3, &filter).await.unwrap();
            assert_eq!(hits[0].0.id, "id5000", "round {round}");
            assert!(hits[0].1 > 0.999);
            store.optimize().await.unwrap();
        }
    });
}

#[test]
fn chunks_without_vectors_are_text_searchable_and_invisible_to_vector_search() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(&dir.path().join("db"), &meta())
            .await
            .unwrap();
        let mut pending = chunk(
            "/r",
            "b.py",
            "retry_request",
            "def retry_request(url): pass",
            [0.0; DIM],
        );
        pending.vector.clear();
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
                        "fn parse_config() {}",
                        [1.0, 0.0, 0.0, 0.0],
                    ),
                    pending,
                ],
            )
            .await
            .unwrap();
        store.ensure_text_index().await.unwrap();
        assert_eq!(store.pending_chunks(None).await.unwrap(), 1);
        assert_eq!(store.pending_chunks(Some("/other")).await.unwrap(), 0);
        let status = store.status().await.unwrap();
        let per_root: Vec<(&str, usize, usize)> = status
            .roots
            .iter()
            .map(|r| (r.root.as_str(), r.chunks, r.pending))
            .collect();
        assert_eq!(per_root, [("/r", 2, 1)]);
        assert_eq!((status.pending, status.vectors), (1, 1));
        assert_eq!(
            store.files_with_pending_chunks("/r").await.unwrap(),
            HashSet::from(["b.py".to_string()])
        );
        let filter = SearchFilter::default();
        let near = store
            .vector_search(&[0.0, 1.0, 0.0, 0.0], 10, &filter)
            .await
            .unwrap();
        assert_eq!(near.len(), 1, "{near:?}");
        assert_eq!(near[0].0.symbol, "parse_config");
        let text = store
            .text_search("retry_request", 10, &filter)
            .await
            .unwrap();
        assert_eq!(text[0].0.symbol, "retry_request");
        // Optimising while a vector is missing keeps everything readable.
        store.optimize().await.unwrap();
        assert_eq!(
            store.vector_hashes().await.unwrap(),
            HashSet::from(["h-parse_config".to_string()])
        );
        assert_eq!(store.status().await.unwrap().pending, 1);
        // The vector arrives on its own, the chunk's row untouched: the chunk
        // joins vector search, and the full-text index still covers it.
        let version = store.chunks.version().await.unwrap();
        store
            .add_vectors(&[("h-retry_request".into(), vec![0.0, 1.0, 0.0, 0.0])])
            .await
            .unwrap();
        assert_eq!(store.chunks.version().await.unwrap(), version);
        assert_eq!(store.pending_chunks(None).await.unwrap(), 0);
        store.optimize().await.unwrap();
        assert_eq!(store.pending_chunks(None).await.unwrap(), 0);
        let near = store
            .vector_search(&[0.0, 1.0, 0.0, 0.0], 1, &filter)
            .await
            .unwrap();
        assert_eq!(near[0].0.symbol, "retry_request");
    });
}

#[test]
fn new_indexes_store_half_precision_vectors_that_round_trip_closely() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(&dir.path().join("db"), &meta())
            .await
            .unwrap();
        let vector = [0.1234567, -0.5432198, 0.7777777, 0.2222222];
        store
            .replace_files(
                "/r",
                &["a.rs".into()],
                &[file("/r", "a.rs", 1)],
                &[chunk("/r", "a.rs", "f", "fn f() {}", vector)],
            )
            .await
            .unwrap();
        let schema = store.vectors.schema().await.unwrap();
        match schema.field_with_name("vector").unwrap().data_type() {
            arrow_schema::DataType::FixedSizeList(item, 4) => {
                assert_eq!(item.data_type(), &arrow_schema::DataType::Float16)
            }
            other => panic!("vector column is {other}"),
        }
        let back = &stored_vectors(&store).await["h-f"];
        for (a, b) in back.iter().zip(vector) {
            assert!((a - b).abs() < 1e-3, "{back:?} vs {vector:?}");
        }
        let hits = store
            .vector_search(&vector, 1, &SearchFilter::default())
            .await
            .unwrap();
        let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(
            (hits[0].1 - 1.0).abs() < 2e-3 * norm.max(1.0),
            "similarity {}",
            hits[0].1
        );
    });
}

/// Every stored vector, by text hash.
async fn stored_vectors(store: &Store) -> HashMap<String, Vec<f32>> {
    let batches = collect(&store.vectors.query(), "reading vectors")
        .await
        .unwrap();
    let mut out = HashMap::new();
    for batch in &batches {
        let hashes = arrow_rows::string_column(batch, "hash").unwrap();
        let vectors = arrow_rows::vector_column(batch, "vector").unwrap();
        out.extend(hashes.into_iter().zip(vectors));
    }
    out
}

#[test]
fn identical_texts_share_one_vector_and_filters_apply_to_chunks() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(&dir.path().join("db"), &meta())
            .await
            .unwrap();
        let shared = [0.0, 0.0, 1.0, 0.0];
        for root in ["/one", "/two"] {
            store
                .replace_files(
                    root,
                    &["util.py".into()],
                    &[file(root, "util.py", 2)],
                    &[
                        chunk(root, "util.py", "slugify", "def slugify(s): ...", shared),
                        chunk(
                            root,
                            "util.py",
                            "other",
                            "def other(): ...",
                            [1.0, 0.0, 0.0, 0.0],
                        ),
                    ],
                )
                .await
                .unwrap();
        }
        // Two chunks per text, one vector per text.
        assert_eq!(store.status().await.unwrap().vectors, 2);
        let all = store
            .vector_search(&shared, 2, &SearchFilter::default())
            .await
            .unwrap();
        let roots: Vec<&str> = all.iter().map(|(c, _)| c.root.as_str()).collect();
        assert_eq!(roots, ["/one", "/two"], "both copies, best first: {all:?}");
        let only_two = SearchFilter {
            roots: vec!["/two".into()],
            ..SearchFilter::default()
        };
        let hits = store.vector_search(&shared, 5, &only_two).await.unwrap();
        assert_eq!(hits.len(), 2, "{hits:?}");
        assert!(hits.iter().all(|(c, _)| c.root == "/two"));
        assert_eq!(hits[0].0.symbol, "slugify");

        // A root removed: its vectors stay while the other root uses them, and
        // unused ones are kept only up to a fraction of the used ones.
        store.remove_root("/one").await.unwrap();
        store.optimize().await.unwrap();
        assert_eq!(store.status().await.unwrap().vectors, 2);
        store.remove_root("/two").await.unwrap();
        store.optimize().await.unwrap();
        assert_eq!(store.status().await.unwrap().vectors, 0);
    });
}

/// Writes an index the way schema version 1 did: vectors (f16, nullable)
/// in a column of the chunks table.
async fn write_v1_index(db: &Path) {
    let conn = connect(db).await.unwrap();
    let mut fields: Vec<arrow_schema::Field> = arrow_rows::chunk_schema(HashMap::new())
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(arrow_schema::Field::new(
        "vector",
        arrow_schema::DataType::FixedSizeList(
            Arc::new(arrow_schema::Field::new(
                "item",
                arrow_schema::DataType::Float16,
                true,
            )),
            DIM as i32,
        ),
        true,
    ));
    let mut v1 = meta();
    v1.schema_version = 1;
    let schema = Arc::new(arrow_schema::Schema::new_with_metadata(fields, v1.to_map()));
    let rows = [
        chunk(
            "/r",
            "a.rs",
            "parse_config",
            "fn parse_config() {}",
            [1.0, 0.0, 0.0, 0.0],
        ),
        chunk(
            "/r",
            "b.rs",
            "parse_config",
            "fn parse_config() {}",
            [1.0, 0.0, 0.0, 0.0],
        ),
        chunk("/r", "c.py", "retry", "def retry(): pass", [0.0; DIM]),
    ];
    let plain = arrow_rows::chunk_batch(arrow_rows::chunk_schema(HashMap::new()), &rows).unwrap();
    let values = arrow_array::Float16Array::from_iter_values(
        rows.iter()
            .flat_map(|r| r.vector.iter().map(|&x| half::f16::from_f32(x))),
    );
    let nulls = arrow_buffer::NullBuffer::from(vec![true, true, false]);
    let vectors = arrow_array::FixedSizeListArray::try_new(
        Arc::new(arrow_schema::Field::new(
            "item",
            arrow_schema::DataType::Float16,
            true,
        )),
        DIM as i32,
        Arc::new(values),
        Some(nulls),
    )
    .unwrap();
    let mut columns = plain.columns().to_vec();
    columns.push(Arc::new(vectors));
    let batch = RecordBatch::try_new(schema, columns).unwrap();
    conn.create_empty_table(FILES_TABLE, arrow_rows::file_schema())
        .execute()
        .await
        .unwrap()
        .add(
            arrow_rows::file_batch(&[
                file("/r", "a.rs", 1),
                file("/r", "b.rs", 1),
                file("/r", "c.py", 1),
            ])
            .unwrap(),
        )
        .execute()
        .await
        .unwrap();
    conn.create_table(CHUNKS_TABLE, batch)
        .execute()
        .await
        .unwrap()
        .create_index(&["text"], Index::FTS(fts_params()))
        .execute()
        .await
        .unwrap();
}

#[test]
fn version_1_indexes_are_upgraded_in_place_even_after_an_interrupted_upgrade() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        write_v1_index(&db).await;
        // An upgrade killed half-way left a partial vectors table behind.
        connect(&db)
            .await
            .unwrap()
            .create_empty_table(VECTORS_TABLE, arrow_rows::vector_schema(DIM))
            .execute()
            .await
            .unwrap()
            .add(arrow_rows::vector_batch(DIM, &[("junk", &[0.5; DIM])]).unwrap())
            .execute()
            .await
            .unwrap();

        let store = Store::open_or_create(&db, &meta()).await.unwrap();
        assert_eq!(store.meta().schema_version, SCHEMA_VERSION);
        let schema = store.chunks.schema().await.unwrap();
        assert!(schema.field_with_name("vector").is_err());
        // One vector per distinct text; the chunk that had none is still pending.
        let vectors = stored_vectors(&store).await;
        assert_eq!(vectors.len(), 1, "{vectors:?}");
        assert_eq!(vectors["h-parse_config"], vec![1.0, 0.0, 0.0, 0.0]);
        assert_eq!(store.pending_chunks(None).await.unwrap(), 1);
        assert_eq!(
            store.files_with_pending_chunks("/r").await.unwrap(),
            HashSet::from(["c.py".to_string()])
        );
        let filter = SearchFilter::default();
        let near = store
            .vector_search(&[1.0, 0.0, 0.0, 0.0], 5, &filter)
            .await
            .unwrap();
        let paths: Vec<&str> = near.iter().map(|(c, _)| c.path.as_str()).collect();
        assert_eq!(paths, ["a.rs", "b.rs"]);
        let text = store.text_search("retry", 5, &filter).await.unwrap();
        assert_eq!(text[0].0.path, "c.py", "the full-text index survived");
        drop(store);

        // Opening again finds version 2 and changes nothing.
        let store = Store::open(&db).await.unwrap();
        assert_eq!(store.meta().schema_version, SCHEMA_VERSION);
        assert_eq!(stored_vectors(&store).await.len(), 1);
    });
}

#[test]
fn one_writer_at_a_time_and_the_lock_survives_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let first = WriterLock::acquire(&db, || panic!("nobody holds it yet")).unwrap();
    let (waited_tx, waited_rx) = std::sync::mpsc::channel();
    let second = std::thread::spawn({
        let db = db.clone();
        move || {
            let lock = WriterLock::acquire(&db, || waited_tx.send(()).unwrap()).unwrap();
            drop(lock);
        }
    });
    waited_rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the second writer waits");
    assert!(
        !second.is_finished(),
        "it waits while the first holds the lock"
    );

    // The holder rebuilds: the tables go, the lock stays, and the directory
    // holding only the lock is an empty index directory.
    rt().block_on(async {
        drop(Store::open_or_create(&db, &meta()).await.unwrap());
        Store::destroy(&db).unwrap();
        assert!(db.join(WRITER_LOCK).exists());
        let store = Store::open_or_create(&db, &meta()).await.unwrap();
        assert_eq!(store.status().await.unwrap().chunks, 0);
    });
    drop(first);
    second.join().unwrap();
}

#[test]
fn an_interrupted_creation_starts_over_but_a_damaged_index_is_never_wiped() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let store = Store::open_or_create(&db, &meta()).await.unwrap();
        store
            .replace_files("/r", &["a.rs".into()], &[file("/r", "a.rs", 1)], &[])
            .await
            .unwrap();
        drop(store);
        // Killed while a rebuild was creating the chunks table: readers see no
        // index yet, the next writer starts over.
        std::fs::write(db.join(CREATING_MARKER), b"").unwrap();
        std::fs::remove_dir_all(db.join("chunks.lance/_versions")).unwrap();
        assert!(matches!(
            Store::open(&db).await.err().unwrap(),
            StoreError::Missing { .. }
        ));
        let store = Store::open_or_create(&db, &meta()).await.unwrap();
        assert_eq!(store.status().await.unwrap().files, 0);
        assert!(!db.join(CREATING_MARKER).exists());
        drop(store);

        // Without the marker, lost versions are damage: reported, and kept.
        std::fs::remove_dir_all(db.join("chunks.lance/_versions")).unwrap();
        let err = Store::open_or_create(&db, &meta()).await.err().unwrap();
        assert!(matches!(err, StoreError::Damaged { .. }), "{err}");
        assert!(db.join("files.lance").exists(), "nothing wiped");
        Store::destroy(&db).unwrap();
        drop(Store::open_or_create(&db, &meta()).await.unwrap());

        // A complete index that lost a table is reported, and kept.
        std::fs::remove_dir_all(db.join("files.lance")).unwrap();
        let err = Store::open_or_create(&db, &meta()).await.err().unwrap();
        assert!(matches!(err, StoreError::Damaged { .. }), "{err}");
        assert!(err.to_string().contains("--rebuild"), "{err}");
        assert!(db.join("chunks.lance/_versions").exists(), "nothing wiped");
        // ...until the user asks for a rebuild.
        Store::destroy(&db).unwrap();
        drop(Store::open_or_create(&db, &meta()).await.unwrap());
    });
}

#[test]
fn last_indexed_times_are_kept_per_root_and_do_not_change_what_the_directory_is() {
    rt().block_on(last_indexed_times());
}

async fn last_indexed_times() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(dir.path(), &meta()).await.unwrap();
    for root in ["/one", "/two"] {
        store
            .replace_files(
                root,
                &["a.rs".into()],
                &[file(root, "a.rs", 1)],
                &[chunk(root, "a.rs", "f", "fn f() {}", [1.0, 0.0, 0.0, 0.0])],
            )
            .await
            .unwrap();
    }
    store.record_indexed("/one").unwrap();
    let status = store.status().await.unwrap();
    let times: Vec<(String, bool)> = status
        .roots
        .iter()
        .map(|r| (r.root.clone(), r.last_indexed.is_some()))
        .collect();
    assert_eq!(times, [("/one".into(), true), ("/two".into(), false)]);

    store.remove_root("/one").await.unwrap();
    store.record_indexed("/two").unwrap();
    let saved = std::fs::read_to_string(dir.path().join(INDEXED_AT_FILE)).unwrap();
    assert!(!saved.contains("/one") && saved.contains("/two"), "{saved}");
    // The side file is ours: the directory is still a Quarry index, and
    // one whose tables are damaged is still damaged, not foreign.
    assert!(matches!(inspect_dir(dir.path()).unwrap(), DirState::Quarry));
    std::fs::remove_dir_all(dir.path().join("chunks.lance/_versions")).unwrap();
    assert!(
        matches!(inspect_dir(dir.path()).unwrap(), DirState::Damaged(_)),
        "{:?}",
        inspect_dir(dir.path()).unwrap()
    );
}

#[test]
fn a_long_lived_handle_sees_what_another_process_wrote() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        // The desktop app's handle, opened before a CLI run writes.
        let app = Store::open_or_create(&db, &meta()).await.unwrap();
        assert_eq!(app.chunks_under("/r").await.unwrap(), 0);
        let cli = Store::open(&db).await.unwrap();
        cli.replace_files(
            "/r",
            &["a.rs".into()],
            &[file("/r", "a.rs", 1)],
            &[chunk("/r", "a.rs", "f", "fn f() {}", [1.0, 0.0, 0.0, 0.0])],
        )
        .await
        .unwrap();
        std::thread::sleep(READ_CONSISTENCY * 2);
        assert_eq!(app.chunks_under("/r").await.unwrap(), 1);
        let hits = app
            .vector_search(&[1.0, 0.0, 0.0, 0.0], 5, &SearchFilter::default())
            .await
            .unwrap();
        assert_eq!(hits.len(), 1);
    });
}

#[test]
fn a_rebuild_can_keep_the_old_vectors_in_the_cache_first() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let store = Store::open_or_create(&db, &meta()).await.unwrap();
        store
            .replace_files(
                "/r",
                &["a.rs".into()],
                &[file("/r", "a.rs", 2)],
                &[
                    chunk("/r", "a.rs", "f", "fn f() {}", [1.0, 0.0, 0.0, 0.0]),
                    chunk("/r", "a.rs", "g", "fn g() {}", [0.0, 0.6, 0.8, 0.0]),
                ],
            )
            .await
            .unwrap();
        let caches = dir.path().join("cache");
        let cache = EmbeddingCache::open(&caches, "test/model", DIM)
            .await
            .unwrap();
        cache
            .put(&[("h-f".into(), vec![1.0, 0.0, 0.0, 0.0])])
            .await
            .unwrap();
        // Only what the cache lacks is copied, and only into its own model's cache.
        assert_eq!(store.save_vectors_to(&cache).await.unwrap(), 1);
        assert_eq!(store.save_vectors_to(&cache).await.unwrap(), 0);
        let other = EmbeddingCache::open(&caches, "other/model", DIM)
            .await
            .unwrap();
        assert_eq!(store.save_vectors_to(&other).await.unwrap(), 0);
        let got = cache.get(&["h-g".into()]).await.unwrap();
        assert_eq!(got.len(), 1);
        assert!((got[0].1[2] - 0.8).abs() < 1e-3, "{got:?}");
    });
}

#[test]
fn optimize_indexes_the_columns_small_changes_filter_by_and_lookups_stay_exact() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(&dir.path().join("db"), &meta())
            .await
            .unwrap();
        let write = |path: &'static str, symbol: &'static str, x: f32| {
            let store = &store;
            async move {
                store
                    .replace_files(
                        "/r",
                        &[path.into()],
                        &[file("/r", path, 1)],
                        &[chunk("/r", path, symbol, "fn x() {}", [x, 1.0, 0.0, 0.0])],
                    )
                    .await
                    .unwrap()
            }
        };
        write("a.rs", "a", 1.0).await;
        write("b.rs", "b", 2.0).await;
        store.optimize().await.unwrap();
        let indexed = |table: &Table| {
            let table = table.clone();
            async move {
                let mut columns: Vec<String> = table
                    .list_indices()
                    .await
                    .unwrap()
                    .into_iter()
                    .flat_map(|i| i.columns)
                    .collect();
                columns.sort();
                columns
            }
        };
        assert_eq!(indexed(&store.chunks).await, ["path", "root", "text"]);
        assert_eq!(indexed(&store.files).await, ["path"]);
        assert_eq!(indexed(&store.vectors).await, ["hash"]);
        // Rows written after the indexes (not yet folded in) are found too.
        write("c.rs", "c", 3.0).await;
        write("a.rs", "a2", 4.0).await;
        let hashes: Vec<String> = ["h-a", "h-a2", "h-b", "h-c", "h-zz"]
            .iter()
            .map(|h| h.to_string())
            .collect();
        let found = store.vectors_among(&hashes).await.unwrap();
        let expected: HashSet<String> = ["h-a", "h-a2", "h-b", "h-c"]
            .iter()
            .map(|h| h.to_string())
            .collect();
        assert_eq!(found, expected);
        assert_eq!(store.chunks_under("/r").await.unwrap(), 3);
        let files = store.files_under("/r").await.unwrap();
        assert_eq!(files.len(), 3);
        store.optimize().await.unwrap();
        assert_eq!(store.chunks_under("/r").await.unwrap(), 3);
        // h-a lost its only chunk but stays, as orphans are few.
        assert_eq!(store.vectors_among(&hashes).await.unwrap(), expected);
    });
}

#[test]
fn a_model_switch_keeps_the_chunks_and_drops_only_the_vectors_even_when_interrupted() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let store = Store::open_or_create(&db, &meta()).await.unwrap();
        store
            .replace_files(
                "/r",
                &["a.rs".into()],
                &[file("/r", "a.rs", 2)],
                &[
                    chunk(
                        "/r",
                        "a.rs",
                        "f",
                        "fn parse_config() {}",
                        [1.0, 0.0, 0.0, 0.0],
                    ),
                    chunk("/r", "a.rs", "g", "fn g() {}", [0.0, 0.6, 0.8, 0.0]),
                ],
            )
            .await
            .unwrap();
        store.ensure_text_index().await.unwrap();
        assert_eq!(store.pending_chunks(None).await.unwrap(), 0);
        let wider = IndexMeta::new("other/model", 8);
        let store = store.switch_model(&wider).await.unwrap();
        assert_eq!(store.meta(), &wider);
        assert!(!db.join(SWITCHING_MARKER).exists());
        // The chunks and their text stay searchable; every one waits for a vector.
        assert_eq!(store.pending_chunks(None).await.unwrap(), 2);
        let found = store
            .text_search("parse_config", 5, &SearchFilter::default())
            .await
            .unwrap();
        assert_eq!(found[0].0.symbol, "f");
        assert!(store.check_model(&wider).is_ok());
        assert!(store.check_model(&meta()).is_err());
        // Vectors of the new width go in.
        store
            .add_vectors(&[("h-f".into(), vec![0.5; 8])])
            .await
            .unwrap();
        assert_eq!(store.pending_chunks(None).await.unwrap(), 1);
        drop(store);

        // A switch killed after its marker is finished by the next open.
        std::fs::write(
            db.join(SWITCHING_MARKER),
            serde_json::json!({"model": "test/model", "dim": DIM}).to_string(),
        )
        .unwrap();
        let reopened = Store::open(&db).await.unwrap();
        assert_eq!(reopened.meta(), &meta());
        assert_eq!(reopened.pending_chunks(None).await.unwrap(), 2);
        assert!(!db.join(SWITCHING_MARKER).exists());
        // A marker that names nothing is damage, said as such.
        drop(reopened);
        std::fs::write(db.join(SWITCHING_MARKER), "{}").unwrap();
        let e = Store::open(&db).await.err().unwrap();
        assert!(e.to_string().contains(SWITCHING_MARKER), "{e}");
    });
}
