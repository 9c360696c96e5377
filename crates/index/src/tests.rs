//! Walk and pipeline tests on real files, a real LanceDB and the real model.

use std::fs;
use std::sync::OnceLock;

use super::*;
use quarry_models::{ensure_model, quarry_home, select_device, DevicePreference, DEFAULT_MODEL};
use quarry_store::IndexMeta;

fn write(root: &Path, rel: &str, contents: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}

fn rels(result: &walk::WalkResult) -> Vec<&str> {
    result.files.iter().map(|f| f.rel.as_str()).collect()
}

#[test]
fn walk_honours_ignore_files_hidden_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, ".gitignore", b"target/\n*.log\n");
    write(root, "src/main.rs", b"fn main() {}\n");
    write(root, "target/debug/gen.rs", b"fn generated() {}\n");
    write(root, "app.log", b"log line\n");
    write(root, ".hidden/secret.py", b"x = 1\n");
    write(root, "sub/.quarryignore", b"skipme.py\n");
    write(root, "sub/skipme.py", b"x = 2\n");
    write(root, "sub/keep.py", b"x = 3\n");
    write(root, "big.txt", &vec![b'a'; 2048]);
    let options = IndexOptions {
        max_file_size: 1024,
        exclude: vec!["*.md".into()],
        ..IndexOptions::default()
    };
    write(root, "README.md", b"# hi\n");
    let result = walk::walk(root, &options).unwrap();
    assert_eq!(rels(&result), vec!["src/main.rs", "sub/keep.py"]);
    assert_eq!(result.skipped.len(), 1, "{:?}", result.skipped);
    assert_eq!(result.skipped[0].path, "big.txt");
    assert!(result.skipped[0].reason.contains("larger than"));
}

#[test]
fn walk_reports_symlink_loops_and_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a/file.rs", b"fn f() {}\n");
    std::os::unix::fs::symlink(root.join("a"), root.join("a/loop")).unwrap();
    let result = walk::walk(root, &IndexOptions::default()).unwrap();
    assert_eq!(rels(&result), vec!["a/file.rs"]);
    assert!(
        result
            .skipped
            .iter()
            .any(|s| s.reason.contains("symlink loop")),
        "{:?}",
        result.skipped
    );
}

#[test]
fn walk_rejects_bad_glob() {
    let dir = tempfile::tempdir().unwrap();
    let options = IndexOptions {
        exclude: vec!["{unclosed".into()],
        ..IndexOptions::default()
    };
    let err = walk::walk(dir.path(), &options).unwrap_err();
    assert!(err.to_string().contains("{unclosed"), "{err}");
}

#[test]
fn load_classifies_binary_lossy_and_missing() {
    let dir = tempfile::tempdir().unwrap();
    let found = |rel: &str| FoundFile {
        abs: dir.path().join(rel),
        rel: rel.into(),
        size: 4,
        mtime_ns: 0,
    };
    write(dir.path(), "bin.dat", b"\x7fELF\0\0\x01");
    write(dir.path(), "latin1.py", b"name = 'caf\xe9'\n");
    assert!(matches!(load(&found("bin.dat")), Load::Skip(r) if r == "binary file"));
    match load(&found("latin1.py")) {
        Load::Text { text, lossy } => {
            assert!(lossy);
            assert!(text.contains("caf\u{fffd}"));
        }
        _ => panic!("latin-1 text must stay indexable"),
    }
    assert!(matches!(load(&found("gone.py")), Load::Skip(r) if r.contains("vanished")));
}

#[test]
fn data_files_are_skipped_as_data_and_code_full_of_numbers_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let found = |rel: &str| FoundFile {
        abs: dir.path().join(rel),
        rel: rel.into(),
        size: 4,
        mtime_ns: 0,
    };
    let table: String = (0..200)
        .map(|i| format!("2020-01-01 {i:02}:00,{}.5,{}\n", i * 3, i % 7))
        .collect();
    write(dir.path(), "data/weather.csv", b"name,city\nAda,London\n");
    write(dir.path(), "data/tmy.epw", table.as_bytes());
    write(
        dir.path(),
        "tables.py",
        format!("TABLE = \"\"\"\n{table}\"\"\"\n").as_bytes(),
    );
    write(
        dir.path(),
        "NOTES.txt",
        b"Release notes: version 2.0 changes the parser and the cache; 3 fixes.\n",
    );
    let skip = |rel: &str| match load(&found(rel)) {
        Load::Skip(reason) => Some(reason),
        Load::Text { .. } => None,
    };
    assert_eq!(
        skip("data/weather.csv").as_deref(),
        Some("data, not code (a table)")
    );
    assert_eq!(
        skip("data/tmy.epw").as_deref(),
        Some("data, not code (mostly numbers)")
    );
    assert_eq!(skip("tables.py"), None, "a language's file is code");
    assert_eq!(skip("NOTES.txt"), None, "prose with numbers is kept");
}

fn embedder() -> &'static Embedder {
    static EMBEDDER: OnceLock<Embedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| {
        let dir = ensure_model(&quarry_home(), DEFAULT_MODEL, &mut |_| {}).expect("model");
        let (device, _) = select_device(DevicePreference::Cpu);
        Embedder::load(&dir, DEFAULT_MODEL, device).expect("load model")
    })
}

fn meta() -> IndexMeta {
    IndexMeta::new(DEFAULT_MODEL.id, DEFAULT_MODEL.dim)
}

#[test]
fn reindex_skips_unchanged_and_drops_deleted() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let repo = tempfile::tempdir().unwrap();
        let db = tempfile::tempdir().unwrap();
        let root = repo.path();
        write(
            root,
            "lib.rs",
            b"/// Adds two numbers.\npub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n",
        );
        write(
            root,
            "util.py",
            b"def shout(text):\n    return text.upper() + '!'\n",
        );
        write(root, "image.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
        let store = Store::open_or_create(&db.path().join("idx"), &meta())
            .await
            .unwrap();
        let options = IndexOptions::default();

        let first = index_root(&store, embedder(), root, &options, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(first.files_scanned, 3);
        assert_eq!(first.files_changed, 2);
        assert!(first
            .skipped
            .iter()
            .any(|s| s.path == "image.png" && s.reason == "binary file"));
        assert!(first.chunks_total >= 2);
        let prints = store.chunk_fingerprints().await.unwrap();

        let second = index_root(&store, embedder(), root, &options, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(second.files_changed, 0);
        assert_eq!(second.chunks_embedded, 0);
        assert_eq!(
            store.chunk_fingerprints().await.unwrap(),
            prints,
            "same tree, same rows"
        );

        fs::remove_file(root.join("util.py")).unwrap();
        let third = index_root(&store, embedder(), root, &options, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(third.files_deleted, 1);
        let after = store.chunk_fingerprints().await.unwrap();
        assert!(after.iter().all(|p| p.1 != "util.py"), "{after:?}");
        assert!(after.iter().any(|p| p.2 == "add"));

        // A file whose mtime changes but whose bytes do not is not re-embedded.
        let contents = fs::read(root.join("lib.rs")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(root.join("lib.rs"), contents).unwrap();
        let fourth = index_root(&store, embedder(), root, &options, &mut |_| {})
            .await
            .unwrap();
        assert_eq!((fourth.files_changed, fourth.chunks_embedded), (0, 0));
        assert_eq!(store.chunk_fingerprints().await.unwrap(), after);

        // Editing one function of a file re-embeds that function only.
        let mut edited = fs::read_to_string(root.join("lib.rs")).unwrap();
        edited.push_str(
            "\n/// Multiplies two numbers.\npub fn mul(a: i32, b: i32) -> i32 {\n    a * b\n}\n",
        );
        fs::write(root.join("lib.rs"), edited).unwrap();
        let fifth = index_root(&store, embedder(), root, &options, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(fifth.files_changed, 1);
        assert_eq!(
            (fifth.chunks_reused, fifth.chunks_embedded),
            (1, 1),
            "{fifth:?}"
        );
        let prints = store.chunk_fingerprints().await.unwrap();
        assert!(prints.iter().any(|p| p.2 == "mul") && prints.iter().any(|p| p.2 == "add"));
    });
}

#[test]
fn text_is_searchable_first_and_an_interrupted_run_is_finished_next_time() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let repo = tempfile::tempdir().unwrap();
        let db = tempfile::tempdir().unwrap();
        let root = repo.path();
        write(
            root,
            "a.py",
            b"def alpha():\n    return 1\n\ndef beta():\n    return 2\n",
        );
        write(root, "b.py", b"def gamma():\n    return 3\n");
        write(root, "c.py", b"def delta():\n    return 4\n");
        let store = Store::open_or_create(&db.path().join("idx"), &meta())
            .await
            .unwrap();

        let mut events = Vec::new();
        let report = index_root(
            &store,
            embedder(),
            root,
            &IndexOptions::default(),
            &mut |e| events.push(e),
        )
        .await
        .unwrap();
        let pending = events.iter().find_map(|e| match e {
            IndexProgress::Searchable { chunks_pending } => Some(*chunks_pending),
            _ => None,
        });
        assert_eq!(pending, Some(4), "{events:?}");
        let position = |pred: &dyn Fn(&IndexProgress) -> bool| events.iter().position(pred);
        let searchable = position(&|e| matches!(e, IndexProgress::Searchable { .. })).unwrap();
        let first_chunked = position(&|e| matches!(e, IndexProgress::Chunked { .. })).unwrap();
        let first_embedded = position(&|e| matches!(e, IndexProgress::Embedded { .. })).unwrap();
        assert!(
            first_chunked < searchable && searchable < first_embedded,
            "{events:?}"
        );
        assert_eq!(
            (report.chunks_embedded, report.chunks_reused),
            (4, 0),
            "{report:?}"
        );
        assert!(report.searchable_seconds <= report.seconds);
        assert_eq!(store.pending_chunks(None).await.unwrap(), 0);

        // A run stopped after pass 1 (as if killed): b.py's new text has no vector.
        write(root, "b.py", b"def gamma():\n    return 33\n");
        stop_after_pass_1(&store, root).await;
        assert_eq!(store.pending_chunks(None).await.unwrap(), 1);

        // Nothing changed on disk since, yet the next run completes b.py, and
        // the index is the one a clean run produces.
        let next = index_fully(&store, root).await;
        assert_eq!(next.files_changed, 1, "{next:?}");
        assert_eq!(
            (next.chunks_embedded, next.chunks_reused),
            (1, 0),
            "{next:?}"
        );
        assert_eq!(store.pending_chunks(None).await.unwrap(), 0);
        assert_matches_a_clean_index(&store, root).await;
    });
}

/// Asserts that `store` holds exactly the chunks and file records a clean
/// full index of `root` holds.
async fn assert_matches_a_clean_index(store: &Store, root: &Path) {
    let clean_db = tempfile::tempdir().unwrap();
    let clean = Store::open_or_create(&clean_db.path().join("idx"), &meta())
        .await
        .unwrap();
    index_fully(&clean, root).await;
    assert_eq!(
        store.chunk_fingerprints().await.unwrap(),
        clean.chunk_fingerprints().await.unwrap()
    );
    let root = root.canonicalize().unwrap().to_string_lossy().into_owned();
    let files = |rows: HashMap<String, FileRow>| {
        let mut v: Vec<(String, String)> = rows
            .into_values()
            .map(|f| (f.path, f.content_hash))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        files(store.files_under(&root).await.unwrap()),
        files(clean.files_under(&root).await.unwrap())
    );
}

/// Indexes `root` into `store` to the end, with default options.
async fn index_fully(store: &Store, root: &Path) -> IndexReport {
    index_root(
        store,
        embedder(),
        root,
        &IndexOptions::default(),
        &mut |_| {},
    )
    .await
    .unwrap()
}

/// Runs `index_root` and cancels it as soon as everything is searchable by
/// text: what a run killed while embedding leaves behind.
async fn stop_after_pass_1(store: &Store, root: &Path) {
    let cancel = Arc::new(AtomicBool::new(false));
    let options = IndexOptions {
        cancel: Some(cancel.clone()),
        ..IndexOptions::default()
    };
    let err = index_root(store, embedder(), root, &options, &mut |e| {
        if matches!(e, IndexProgress::Searchable { .. }) {
            cancel.store(true, Ordering::Relaxed);
        }
    })
    .await
    .unwrap_err();
    assert!(matches!(err, IndexError::Cancelled), "{err}");
}

#[test]
fn a_cancelled_run_leaves_text_searchable_and_the_next_run_finishes() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let repo = tempfile::tempdir().unwrap();
        let db = tempfile::tempdir().unwrap();
        let root = repo.path();
        write(root, "a.py", b"def alpha():\n    return 1\n");
        write(root, "b.rs", b"fn beta() -> u8 {\n    2\n}\n");
        let store = Store::open_or_create(&db.path().join("idx"), &meta())
            .await
            .unwrap();
        stop_after_pass_1(&store, root).await;
        assert_eq!(store.pending_chunks(None).await.unwrap(), 2);
        let hits = store
            .text_search("beta", 5, &quarry_store::SearchFilter::default())
            .await
            .unwrap();
        assert_eq!(hits[0].0.symbol, "beta");

        let report = index_fully(&store, root).await;
        assert_eq!(
            (report.files_changed, report.chunks_embedded),
            (2, 2),
            "{report:?}"
        );
        assert_eq!(store.pending_chunks(None).await.unwrap(), 0);
    });
}

#[test]
fn indexing_the_changed_paths_gives_the_index_a_full_run_gives() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let repo = tempfile::tempdir().unwrap();
        let db = tempfile::tempdir().unwrap();
        let root = &repo.path().canonicalize().unwrap();
        write(root, ".gitignore", b"target/\n*.log\n");
        write(root, "keep.py", b"def keep():\n    return 0\n");
        write(root, "edit.py", b"def before_edit():\n    return 1\n");
        write(root, "gone.rs", b"fn gone() {}\n");
        write(root, "old_dir/a.py", b"def moved_a():\n    return 2\n");
        write(root, "old_dir/deep/b.py", b"def moved_b():\n    return 3\n");
        write(root, "dropped/c.py", b"def dropped_c():\n    return 4\n");
        let store = Store::open_or_create(&db.path().join("idx"), &meta())
            .await
            .unwrap();
        index_fully(&store, root).await;

        // What an editor, a formatter and a `git checkout` do.
        write(root, "edit.py", b"def after_edit():\n    return 11\n");
        fs::remove_file(root.join("gone.rs")).unwrap();
        fs::rename(root.join("old_dir"), root.join("new_dir")).unwrap();
        fs::remove_dir_all(root.join("dropped")).unwrap();
        write(root, "fresh/one.rs", b"fn fresh_one() -> u8 { 1 }\n");
        write(root, "target/debug/gen.rs", b"fn generated() {}\n");
        write(root, "build.log", b"def not_code(): pass\n");
        write(root, ".hidden/x.py", b"def hidden(): pass\n");
        let changed: Vec<PathBuf> = [
            "edit.py",
            "gone.rs",
            "old_dir",
            "new_dir",
            "dropped",
            "dropped/c.py",
            "fresh",
            "fresh/one.rs",
            "target/debug/gen.rs",
            "build.log",
            ".hidden/x.py",
            "no/such/path.py",
        ]
        .iter()
        .map(|p| root.join(p))
        .collect();
        let report = index_paths(
            &store,
            embedder(),
            root,
            &changed,
            &IndexOptions::default(),
            &mut |_| {},
        )
        .await
        .unwrap();
        assert_eq!(
            (report.files_changed, report.files_deleted),
            (4, 4),
            "edit, two moved in, one new; gone, two moved away, one dropped: {report:?}"
        );
        // The moved files' texts changed path, so they are new texts.
        assert_eq!(report.chunks_embedded, 4, "{report:?}");

        assert_matches_a_clean_index(&store, root).await;

        // Paths that are all ignored or unchanged do nothing.
        let idle = index_paths(
            &store,
            embedder(),
            root,
            &[root.join("target/debug/gen.rs"), root.join("keep.py")],
            &IndexOptions::default(),
            &mut |_| {},
        )
        .await
        .unwrap();
        assert_eq!((idle.files_changed, idle.files_deleted), (0, 0), "{idle:?}");
    });
}

#[test]
fn a_second_index_on_the_machine_takes_its_vectors_from_the_embedding_cache() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let repo = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let root = repo.path();
        write(
            root,
            "retry.py",
            b"def retry(call, attempts=3):\n    for _ in range(attempts):\n        try:\n            return call()\n        except IOError:\n            pass\n\n\ndef backoff(n):\n    return 2 ** n\n",
        );
        write(root, "lib.rs", b"pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n");
        let caches = scratch.path().join("cache");
        let cache = Arc::new(
            EmbeddingCache::open(&caches, DEFAULT_MODEL.id, DEFAULT_MODEL.dim)
                .await
                .unwrap(),
        );
        let options = IndexOptions {
            embedding_cache: Some(Arc::clone(&cache)),
            ..IndexOptions::default()
        };
        let first_store = Store::open_or_create(&scratch.path().join("one"), &meta())
            .await
            .unwrap();
        let first = index_root(&first_store, embedder(), root, &options, &mut |_| {})
            .await
            .unwrap();
        assert!(first.chunks_embedded >= 3, "{first:?}");
        assert_eq!(first.chunks_from_cache, 0);

        // Another index on the same machine: nothing is embedded again.
        let second_store = Store::open_or_create(&scratch.path().join("two"), &meta())
            .await
            .unwrap();
        let second = index_root(&second_store, embedder(), root, &options, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(
            (second.chunks_embedded, second.chunks_from_cache),
            (0, first.chunks_embedded),
            "{second:?}"
        );
        assert_eq!(second.chunks_reused, second.chunks_total);
        assert_eq!(second.chunks_pending, 0);
        // And the vectors are the same ones: the same nearest chunk, the same score.
        let query = embedder().embed(&["retry a call a few times"]).unwrap().remove(0);
        let filter = quarry_store::SearchFilter::default();
        let one = first_store.vector_search(&query, 1, &filter).await.unwrap();
        let two = second_store.vector_search(&query, 1, &filter).await.unwrap();
        assert_eq!(one[0].0.symbol, two[0].0.symbol);
        assert!((one[0].1 - two[0].1).abs() < 1e-3, "{one:?} vs {two:?}");

        // Even a text-only run takes what the cache has: dense search works.
        let third_store = Store::open_or_create(&scratch.path().join("three"), &meta())
            .await
            .unwrap();
        let text_only = IndexOptions {
            text_only: true,
            ..options.clone()
        };
        let third = index_root(&third_store, embedder(), root, &text_only, &mut |_| {})
            .await
            .unwrap();
        assert_eq!((third.chunks_pending, third.chunks_embedded), (0, 0));

        // A cache of another model is never used.
        let foreign = Arc::new(EmbeddingCache::open(&caches, "other/model", 384).await.unwrap());
        let fourth_store = Store::open_or_create(&scratch.path().join("four"), &meta())
            .await
            .unwrap();
        let fourth_options = IndexOptions {
            embedding_cache: Some(foreign),
            ..IndexOptions::default()
        };
        let fourth = index_root(&fourth_store, embedder(), root, &fourth_options, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(fourth.chunks_embedded, first.chunks_embedded);
    });
}
