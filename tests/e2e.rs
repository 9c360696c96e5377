//! End-to-end tests: the real `quarry` binary, the real model, a real
//! LanceDB on disk, over the fixture repository in `tests/fixtures/repo` and
//! over hostile trees built on the fly.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

#[path = "support.rs"]
mod support;
use support::{copy_tree, fixtures};

fn quarry() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_quarry"));
    // The user's own settings must not change what the tests see.
    let settings = std::env::temp_dir().join("quarry-e2e-no-settings.toml");
    // Nor may one test's vectors, through the machine's embedding cache,
    // change what another embeds; the tests of the cache give it a directory.
    cmd.env("NO_COLOR", "1")
        .env_remove("QUARRY_DB")
        .env("QUARRY_CONFIG", settings)
        .env("QUARRY_EMBEDDING_CACHE", "off");
    cmd
}

fn run(args: &[&str]) -> Output {
    quarry().args(args).output().expect("run quarry")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "quarry failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("quarry-e2e")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `quarry index REPO --db DB --json EXTRA...`.
fn index_raw(repo: &Path, db: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "index",
        repo.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// Indexes and returns the `--json` summary, failing the test on error.
fn index_json(repo: &Path, db: &Path, extra: &[&str]) -> Value {
    let out = index_raw(repo, db, extra);
    assert_ok(&out);
    serde_json::from_str(&stdout(&out)).expect("index --json is JSON")
}

/// `quarry status --db DB --json`, parsed.
fn status_json(db: &Path) -> Value {
    let out = run(&["status", "--db", db.to_str().unwrap(), "--json"]);
    assert_ok(&out);
    serde_json::from_str(&stdout(&out)).expect("status --json is JSON")
}

/// The fixture repository copied to a scratch directory and indexed once
/// per test run: (repo, db, index summary).
fn indexed_fixture() -> &'static (PathBuf, PathBuf, Value) {
    static FIXTURE: OnceLock<(PathBuf, PathBuf, Value)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let base = scratch("fixture");
        let repo = base.join("repo");
        copy_tree(&fixtures().join("repo"), &repo);
        let db = base.join("db");
        let summary = index_json(&repo, &db, &[]);
        (repo, db, summary)
    })
}

fn search_json(db: &Path, mode: &str, query: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "search",
        "--db",
        db.to_str().unwrap(),
        "--json",
        "--mode",
        mode,
    ];
    args.extend_from_slice(extra);
    args.push("--query-file");
    args.push("-");
    let mut child = quarry()
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(query.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_ok(&out);
    serde_json::from_str::<Vec<Value>>(&stdout(&out)).expect("search --json is a JSON array")
}

struct Case {
    mode: String,
    expected: String,
    query: String,
}

fn cases() -> Vec<Case> {
    fs::read_to_string(fixtures().join("queries.tsv"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let mut parts = line.splitn(3, '\t');
            let mode = parts.next().unwrap().to_string();
            let expected = parts.next().unwrap().to_string();
            let query = parts
                .next()
                .unwrap()
                .replace("\\n", "\n")
                .replace("\\t", "\t");
            Case {
                mode,
                expected,
                query,
            }
        })
        .collect()
}

#[test]
fn index_summary_reports_what_it_did() {
    let (_, _, summary) = indexed_fixture();
    assert!(
        summary["files_scanned"].as_u64().unwrap() >= 12,
        "{summary}"
    );
    assert_eq!(summary["files_changed"], summary["files_scanned"]);
    assert!(summary["chunks_total"].as_u64().unwrap() >= 40, "{summary}");
    assert_eq!(summary["chunks_total"], summary["chunks_embedded"]);
    let root = &summary["roots"][0];
    let indexed_paths: Vec<&str> = root["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert!(
        indexed_paths.is_empty(),
        "nothing in the fixture is skipped: {indexed_paths:?}"
    );
}

#[test]
fn ignored_hidden_and_generated_files_are_not_indexed() {
    let (_, db, _) = indexed_fixture();
    for (query, forbidden) in [
        ("generated code", "build/"),
        ("secret token", ".secret/"),
        ("log", "notes.log"),
    ] {
        let hits = search_json(db, "text", query, &["--top-k", "50"]);
        for hit in &hits {
            let path = hit["path"].as_str().unwrap();
            assert!(
                !path.starts_with(forbidden) && path != forbidden,
                "{path} must be ignored"
            );
        }
    }
}

/// Every query's expected function must be in the top 5, and at least 75%
/// of them first. (The misses are close calls between sibling functions,
/// e.g. `crc32_update` vs `crc32_file`; README records the measured rates.)
fn check_mode(mode: &str) {
    let (_, db, _) = indexed_fixture();
    let cases: Vec<Case> = cases().into_iter().filter(|c| c.mode == mode).collect();
    assert!(cases.len() >= 12, "at least a dozen {mode} queries");
    let mut failures = Vec::new();
    let mut first = 0;
    for case in &cases {
        let hits = search_json(db, mode, &case.query, &[]);
        let top: Vec<&str> = hits
            .iter()
            .take(5)
            .map(|h| h["symbol"].as_str().unwrap())
            .collect();
        if top.first() == Some(&case.expected.as_str()) {
            first += 1;
        } else if !top.contains(&case.expected.as_str()) {
            failures.push(format!(
                "{:?}\n    expected {} got {:?}",
                case.query, case.expected, top
            ));
        } else {
            eprintln!("{mode}: {} ranked {:?}", case.expected, top);
        }
    }
    eprintln!("{mode}: {first}/{} first", cases.len());
    assert!(
        failures.is_empty(),
        "{} of {} {mode} queries missed the top 5:\n  {}",
        failures.len(),
        cases.len(),
        failures.join("\n  ")
    );
    assert!(
        first * 4 >= cases.len() * 3,
        "only {first} of {} {mode} queries ranked the expected function first",
        cases.len()
    );
}

#[test]
fn text_queries_find_the_described_function() {
    check_mode("text");
}

#[test]
fn code_queries_find_the_similar_function() {
    check_mode("code");
}

#[test]
fn issue_queries_find_the_function_to_change() {
    check_mode("issue");
}

#[test]
fn auto_mode_detects_each_kind_of_query() {
    let (_, db, _) = indexed_fixture();
    for case in cases() {
        let hits = search_json(db, "auto", &case.query, &["--top-k", "5"]);
        let symbols: Vec<&str> = hits.iter().map(|h| h["symbol"].as_str().unwrap()).collect();
        assert!(
            symbols.contains(&case.expected.as_str()),
            "auto mode lost {} for {:?}: {symbols:?}",
            case.expected,
            case.query
        );
    }
}

#[test]
fn json_hits_follow_the_contract() {
    let (repo, db, _) = indexed_fixture();
    let hits = search_json(db, "text", "cache eviction", &["--top-k", "3"]);
    assert_eq!(hits.len(), 3);
    let root = repo.canonicalize().unwrap();
    for hit in &hits {
        let keys: Vec<&str> = hit
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        for key in [
            "path",
            "root",
            "symbol",
            "kind",
            "language",
            "start_line",
            "end_line",
            "score",
            "text",
        ] {
            assert!(keys.contains(&key), "hit lacks {key}: {hit}");
        }
        assert_eq!(hit["root"].as_str().unwrap(), root.to_str().unwrap());
        let path = hit["path"].as_str().unwrap();
        assert!(!path.starts_with('/'), "path is relative: {path}");
        // The text is exactly the file's lines start..=end.
        let file = fs::read_to_string(root.join(path)).unwrap();
        let (start, end) = (
            hit["start_line"].as_u64().unwrap() as usize,
            hit["end_line"].as_u64().unwrap() as usize,
        );
        let lines: Vec<&str> = file.lines().collect();
        assert_eq!(
            hit["text"].as_str().unwrap().trim_end(),
            lines[start - 1..end].join("\n").trim_end()
        );
    }
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "sorted by score: {scores:?}"
    );
}

#[test]
fn a_pasted_function_from_the_index_comes_first_labelled_as_the_snippet() {
    let (_, db, _) = indexed_fixture();
    // `User.set_password`, copied out of its class: dedented by one level.
    let pasted = "def set_password(self, new_password):
    \"\"\"Replace the stored hash, enforcing a minimum password length.\"\"\"
    if len(new_password) < 8:
        raise ValueError(\"password must be at least 8 characters\")
    self.password_hash = hash_password(new_password)
    self.failed_logins = 0
";
    let hits = search_json(db, "code", pasted, &[]);
    assert_eq!(hits[0]["symbol"], "User.set_password", "{hits:?}");
    assert_eq!(hits[0]["snippet_match"], "exact");
    assert!(
        hits[1..].iter().all(|h| h["snippet_match"] != "exact"),
        "{hits:?}"
    );
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    // Part of a function: the function is labelled as containing it.
    let part =
        "        _scheme, iterations, salt_hex, expected_hex = self.password_hash.split(\"$\")
        recomputed = hash_password(candidate, bytes.fromhex(salt_hex), int(iterations))";
    let hits = search_json(db, "code", part, &[]);
    let verify = hits
        .iter()
        .find(|h| h["symbol"] == "User.verify_password")
        .expect("the function holding the lines is found");
    assert_eq!(verify["snippet_match"], "contains");
    assert!(hits.iter().all(|h| h["snippet_match"] != "exact"));

    // Other modes never label; the human output shows the label.
    let text = search_json(db, "text", "set a new password", &[]);
    assert!(text.iter().all(|h| h.get("snippet_match").is_none()));
    let out = quarry()
        .args([
            "search",
            "--db",
            db.to_str().unwrap(),
            "--mode",
            "code",
            "--top-k",
            "2",
            pasted,
        ])
        .output()
        .unwrap();
    assert_ok(&out);
    assert!(stdout(&out).contains("your snippet"), "{}", stdout(&out));
}

#[test]
fn search_weights_in_the_settings_file_apply_and_bad_ones_are_refused() {
    let (_, db, _) = indexed_fixture();
    let dir = scratch("search-settings");
    let config = dir.join("config.toml");
    let search = |config: &Path| {
        quarry()
            .env("QUARRY_CONFIG", config)
            .args([
                "search",
                "--db",
                db.to_str().unwrap(),
                "--mode",
                "text",
                "--json",
            ])
            .arg("check whether an email address is valid")
            .output()
            .unwrap()
    };
    // Every kind of text-mode evidence weighed 0: nothing can score.
    fs::write(
        &config,
        "[search.text]\ndense = 0.0\nlexical = 0.0\nlexical_named = 0.0\ndefines = 0.0\n\
         in_path = 0.0\nuses = 0.0\nframe = 0.0\nlanguage = 0.0\n",
    )
    .unwrap();
    let out = search(&config);
    assert_ok(&out);
    assert_eq!(stdout(&out).trim(), "[]");
    // Issue-mode overrides leave text mode as it was.
    fs::write(&config, "[search.issue]\nlexical = 0.0\n").unwrap();
    let out = search(&config);
    assert_ok(&out);
    let hits: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(hits[0]["symbol"], "is_valid_email");
    // A bad value or key names itself.
    fs::write(&config, "[search.issue]\nlexical = -1.0\n").unwrap();
    let out = search(&config);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("lexical"), "{}", stderr(&out));
    fs::write(&config, "[search.issue]\nlexicall = 1.0\n").unwrap();
    let out = search(&config);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("lexicall"), "{}", stderr(&out));
}

#[test]
fn filters_restrict_language_path_and_repo() {
    let (repo, db, _) = indexed_fixture();
    let hits = search_json(
        db,
        "text",
        "parse a date",
        &["--lang", "rust", "--top-k", "20"],
    );
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|h| h["language"] == "rust"));
    let hits = search_json(db, "text", "hash", &["--path", "app/*.py", "--top-k", "20"]);
    assert!(!hits.is_empty());
    assert!(hits
        .iter()
        .all(|h| h["path"].as_str().unwrap().starts_with("app/")));
    let name = repo.file_name().unwrap().to_str().unwrap();
    let hits = search_json(db, "text", "hash", &["--repo", name]);
    assert!(!hits.is_empty());
    let out = run(&[
        "search",
        "--db",
        db.to_str().unwrap(),
        "--repo",
        "no-such-repo",
        "hash",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no-such-repo"));
    let out = run(&[
        "search",
        "--db",
        db.to_str().unwrap(),
        "--lang",
        "cobol",
        "hash",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown language"));
}

#[test]
fn human_output_shows_location_symbol_and_snippet() {
    let (_, db, _) = indexed_fixture();
    let out = run(&[
        "search",
        "--db",
        db.to_str().unwrap(),
        "--top-k",
        "2",
        "validate an email address",
    ]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains(" 1. "), "{text}");
    assert!(text.contains("app/"), "{text}");
    assert!(text.contains("│"), "snippet with line numbers: {text}");
    assert!(!text.contains("\x1b["), "no colours when not a terminal");
    // Regressions: an installed model is not announced again, and LanceDB's
    // scoring-column deprecation warning does not leak to the user.
    let err = stderr(&out);
    assert!(!err.contains("Model installed"), "{err}");
    assert!(!err.contains("WARN"), "{err}");
}

#[test]
fn status_reports_roots_counts_and_size() {
    let (repo, db, summary) = indexed_fixture();
    let status = status_json(db);
    assert_eq!(status["chunks"], summary["chunks_total"]);
    assert_eq!(status["files"], summary["files_scanned"]);
    assert_eq!(status["model"], "sentence-transformers/all-MiniLM-L6-v2");
    assert_eq!(status["dim"], 384);
    assert!(status["bytes"].as_u64().unwrap() > 0);
    // Writes are batched and the table is compacted after indexing: a whole
    // repository leaves one or two live versions, not one per file.
    assert!(status["versions"].as_u64().unwrap() <= 2, "{status}");
    assert_eq!(
        status["roots"][0]["root"].as_str().unwrap(),
        repo.canonicalize().unwrap().to_str().unwrap()
    );
}

#[test]
fn a_second_checkout_in_the_same_index_embeds_nothing() {
    let base = scratch("second-checkout");
    let db = base.join("db");
    let first = base.join("main");
    let second = base.join("feature");
    copy_tree(&fixtures().join("repo"), &first);
    copy_tree(&fixtures().join("repo"), &second);
    let one = index_json(&first, &db, &[]);
    let two = index_json(&second, &db, &[]);
    assert_eq!(two["chunks_embedded"], 0, "{two}");
    assert_eq!(two["chunks_reused"], two["chunks_total"], "{two}");
    assert_eq!(two["chunks_total"], one["chunks_total"]);
    let status = status_json(&db);
    assert_eq!(status["chunks"], one["chunks_total"].as_u64().unwrap() * 2);
    assert_eq!(status["pending"], 0);
    // Both copies are found by meaning, each under its own root.
    let hits = search_json(
        &db,
        "text",
        "retry an http request with exponential backoff",
        &["--repo", "feature"],
    );
    assert!(!hits.is_empty());
    assert!(
        hits.iter()
            .all(|h| h["root"].as_str().unwrap().ends_with("feature")),
        "{hits:?}"
    );
}

#[test]
fn the_embedding_cache_spares_rebuilds_and_other_indexes_the_embedding() {
    let base = scratch("embedding-cache");
    let repo = base.join("repo");
    copy_tree(&fixtures().join("repo"), &repo);
    let cache = base.join("cache");
    let cached = |args: &[&str]| -> Value {
        let out = quarry()
            .env("QUARRY_EMBEDDING_CACHE", &cache)
            .args(args)
            .output()
            .unwrap();
        assert_ok(&out);
        serde_json::from_str(&stdout(&out)).expect("JSON")
    };
    let repo_arg = repo.to_str().unwrap();
    // An index made while the cache was off: its rebuild keeps its vectors.
    let plain = base.join("plain");
    let first = index_json(&repo, &plain, &[]);
    let embedded = first["chunks_embedded"].as_u64().unwrap();
    assert!(embedded > 0, "{first}");
    let plain_arg = plain.to_str().unwrap();
    let rebuilt = cached(&["index", repo_arg, "--db", plain_arg, "--rebuild", "--json"]);
    assert_eq!(rebuilt["chunks_embedded"], 0, "{rebuilt}");
    assert_eq!(rebuilt["chunks_from_cache"], embedded, "{rebuilt}");
    assert_eq!(rebuilt["chunks_total"], first["chunks_total"]);

    // Another index on the machine embeds nothing either.
    let other = base.join("other");
    let other_arg = other.to_str().unwrap();
    let second = cached(&["index", repo_arg, "--db", other_arg, "--json"]);
    assert_eq!(second["chunks_embedded"], 0, "{second}");
    assert_eq!(second["chunks_reused"], second["chunks_total"], "{second}");
    assert_eq!(status_json(&other)["pending"], 0);
    let status = cached(&["status", "--db", other_arg, "--json"]);
    assert_eq!(status["embedding_cache"]["entries"], embedded, "{status}");
    assert!(status["embedding_cache"]["bytes"].as_u64().unwrap() > 0);
    // Its vectors are the ones computed the first time.
    let query = "retry an http request with exponential backoff";
    let from_cache = search_json(&other, "text", query, &[]);
    let computed = search_json(&plain, "text", query, &[]);
    assert_eq!(from_cache[0]["symbol"], computed[0]["symbol"]);
    let score = |hits: &[Value]| hits[0]["score"].as_f64().unwrap();
    assert!((score(&from_cache) - score(&computed)).abs() < 1e-3);

    // Off means off.
    let off = index_json(&repo, &base.join("off"), &[]);
    assert_eq!(off["chunks_embedded"], embedded, "{off}");
}

#[test]
fn a_new_model_in_the_settings_switches_the_index_and_switching_back_embeds_nothing() {
    let base = scratch("model-switch");
    let repo = base.join("repo");
    copy_tree(&fixtures().join("repo"), &repo);
    // A second embedding model: the tiny random-weight BERT of the parity tests.
    let model = base.join("tiny-bert");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tests/fixtures/tiny/bert-embedder"),
        &model,
    );
    let (db, cache) = (base.join("db"), base.join("cache"));
    let default_config = base.join("default.toml");
    let tiny_config = base.join("tiny.toml");
    fs::write(
        &tiny_config,
        format!(
            "model = {:?}\n",
            model.canonicalize().unwrap().to_str().unwrap()
        ),
    )
    .unwrap();
    let with = |config: &Path, args: &[&str]| -> Output {
        quarry()
            .env("QUARRY_CONFIG", config)
            .env("QUARRY_EMBEDDING_CACHE", &cache)
            .args(args)
            .output()
            .unwrap()
    };
    let (repo_arg, db_arg) = (repo.to_str().unwrap(), db.to_str().unwrap());
    let index = |config: &Path| -> (Value, String) {
        let out = with(config, &["index", repo_arg, "--db", db_arg, "--json"]);
        assert_ok(&out);
        (serde_json::from_str(&stdout(&out)).unwrap(), stderr(&out))
    };
    let query = "retry an http request with exponential backoff";
    let top = |config: &Path| -> Value {
        let out = with(config, &["search", "--db", db_arg, "--json", query]);
        assert_ok(&out);
        let hits: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
        hits[0].clone()
    };

    let (first, _) = index(&default_config);
    let total = first["chunks_total"].as_u64().unwrap();
    assert_eq!(first["chunks_embedded"], total, "{first}");
    let before = top(&default_config);

    // The settings name another model: the index follows by itself.
    let (switched, said) = index(&tiny_config);
    assert!(said.contains("Switching it"), "{said}");
    // Its window is 64 tokens, not 256: the chunks are cut again to fit it.
    let tiny_total = switched["chunks_total"].as_u64().unwrap();
    assert!(tiny_total > total, "{switched}");
    assert_eq!(switched["chunks_embedded"], tiny_total, "{switched}");
    let status = status_json(&db);
    assert_eq!(status["dim"], 16, "{status}");
    assert_eq!(status["pending"], 0, "{status}");
    assert!(
        status["model"].as_str().unwrap().ends_with("tiny-bert"),
        "{status}"
    );
    assert!(!top(&tiny_config)["symbol"].as_str().unwrap().is_empty());

    // And back: every vector comes from the cache, and search is as before.
    let (back, said) = index(&default_config);
    assert!(said.contains("Switching it"), "{said}");
    assert_eq!(back["chunks_total"], total, "{back}");
    assert_eq!(back["chunks_embedded"], 0, "{back}");
    assert_eq!(back["chunks_from_cache"], total, "{back}");
    let status = status_json(&db);
    assert_eq!(status["dim"], 384, "{status}");
    let after = top(&default_config);
    assert_eq!(after["symbol"], before["symbol"]);
    assert!((after["score"].as_f64().unwrap() - before["score"].as_f64().unwrap()).abs() < 1e-3);

    // A model directory that is not one is refused before anything changes.
    let broken = base.join("broken.toml");
    fs::write(&broken, format!("model = {:?}\n", base.to_str().unwrap())).unwrap();
    let out = with(&broken, &["index", repo_arg, "--db", db_arg]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(status_json(&db)["dim"], 384);
}

#[test]
fn a_second_writer_waits_for_the_first() {
    use std::io::BufRead;
    let base = scratch("writer-lock");
    let repo = base.join("repo");
    copy_tree(&fixtures().join("repo"), &repo);
    let db = base.join("db");
    fs::create_dir_all(&db).unwrap();
    // Another writer (this test) holds the index's lock.
    let held = fs::File::create(db.join(".quarry-writer.lock")).unwrap();
    held.lock().unwrap();
    let mut child = quarry()
        .args([
            "index",
            "--db",
            db.to_str().unwrap(),
            repo.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(
        line.contains("waiting for another quarry process"),
        "{line}"
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "it waits");
    drop(held);
    let rest = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap());
    assert!(child.wait().unwrap().success(), "{}", rest.join().unwrap());
    assert_eq!(status_json(&db)["pending"], 0);
    assert!(status_json(&db)["chunks"].as_u64().unwrap() > 0);
}

#[test]
fn reindex_is_incremental_and_follows_changes() {
    let base = scratch("incremental");
    let repo = base.join("repo");
    copy_tree(&fixtures().join("repo"), &repo);
    let db = base.join("db");
    let index = |repo: &Path| index_json(repo, &db, &[]);
    let first = index(&repo);
    let second = index(&repo);
    assert_eq!(second["files_changed"], 0);
    assert_eq!(second["chunks_embedded"], 0);
    assert_eq!(second["chunks_total"], first["chunks_total"]);

    fs::write(
        repo.join("app/fresh.py"),
        "def frobnicate_widgets(widgets):\n    \"\"\"Frobnicate every widget twice.\"\"\"\n    return [w * 2 for w in widgets]\n",
    )
    .unwrap();
    let victim = cases()
        .into_iter()
        .find(|c| c.mode == "text" && !c.expected.contains("::"))
        .unwrap();
    let third = index(&repo);
    assert_eq!(third["files_changed"], 1);
    let hits = search_json(&db, "text", "frobnicate widgets", &["--top-k", "1"]);
    assert_eq!(hits[0]["symbol"], "frobnicate_widgets");

    // Deleting a file removes its rows.
    let hits = search_json(&db, "text", &victim.query, &["--top-k", "1"]);
    let victim_path = hits[0]["path"].as_str().unwrap().to_string();
    fs::remove_file(repo.join(&victim_path)).unwrap();
    let fourth = index(&repo);
    assert_eq!(fourth["files_deleted"], 1);
    let hits = search_json(&db, "text", &victim.query, &["--top-k", "50"]);
    assert!(hits.iter().all(|h| h["path"] != victim_path.as_str()));

    // --rebuild gives the same rows as the incremental path.
    let status = status_json;
    let before = status(&db);
    index_json(&repo, &db, &["--rebuild"]);
    let after = status(&db);
    assert_eq!(before["chunks"], after["chunks"]);
    assert_eq!(before["files"], after["files"]);
}

#[test]
fn hostile_files_are_skipped_with_reasons_and_nothing_else_is_lost() {
    let base = scratch("hostile");
    let repo = base.join("repo");
    fs::create_dir_all(repo.join("src")).unwrap();
    fs::write(
        repo.join("src/good.py"),
        "def compute_checksum_total(values):\n    return sum(values) % 65521\n",
    )
    .unwrap();
    fs::write(repo.join("src/empty.py"), "").unwrap();
    fs::write(repo.join("src/binary.bin"), b"\x00\x01\x02\xffELF\x00\x00").unwrap();
    fs::write(
        repo.join("src/latin1.py"),
        b"def greet_caf\xe9_owner():\n    return 'caf\xe9'\n",
    )
    .unwrap();
    let nested_py = format!("x = {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    fs::write(repo.join("src/nested.py"), nested_py).unwrap();
    let nested_rs = format!(
        "fn deep() {{ {}{} }}\n",
        "{".repeat(10_000),
        "}".repeat(10_000)
    );
    fs::write(repo.join("src/nested.rs"), nested_rs).unwrap();
    fs::write(
        repo.join("src/broken.rs"),
        "fn broken_parse_thing( {\n    let x = ;\n}\nfn still_fine_after_error() -> u8 { 7 }\n",
    )
    .unwrap();
    let big = "a".repeat(50 * 1024 * 1024);
    fs::write(repo.join("huge.txt"), big).unwrap();
    std::os::unix::fs::symlink(&repo, repo.join("src/loop")).unwrap();
    let locked = repo.join("src/locked.py");
    fs::write(&locked, "def locked_function_body():\n    return 1\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    let readable_anyway = fs::read(&locked).is_ok(); // root ignores permissions

    let db = base.join("db");
    let out = index_raw(&repo, &db, &[]);
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o644)).unwrap();
    assert_ok(&out);
    let summary: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let skipped: Vec<(String, String)> = summary["roots"][0]["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["path"].as_str().unwrap().to_string(),
                s["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let reason = |path: &str| {
        skipped
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, r)| r.clone())
    };
    assert_eq!(
        reason("src/binary.bin").as_deref(),
        Some("binary file"),
        "{skipped:?}"
    );
    assert!(
        reason("huge.txt").unwrap().contains("larger than"),
        "{skipped:?}"
    );
    assert!(
        skipped.iter().any(|(_, r)| r.contains("symlink loop")),
        "{skipped:?}"
    );
    if readable_anyway {
        assert!(reason("src/locked.py").is_none());
    } else {
        assert_eq!(
            reason("src/locked.py").as_deref(),
            Some("permission denied")
        );
    }
    assert!(reason("src/empty.py").is_none(), "an empty file is fine");
    let lossy = summary["roots"][0]["lossy_files"].as_array().unwrap();
    assert_eq!(lossy, &vec![Value::from("src/latin1.py")]);

    for (query, path, text) in [
        (
            "checksum total of values",
            "src/good.py",
            "def compute_checksum_total",
        ),
        // U+FFFD is no identifier character, so the symbol is cut there;
        // the text keeps the replacement character.
        (
            "greet the cafe owner",
            "src/latin1.py",
            "def greet_caf\u{fffd}_owner",
        ),
        (
            "still fine after error",
            "src/broken.rs",
            "fn still_fine_after_error",
        ),
    ] {
        let hits = search_json(&db, "text", query, &["--top-k", "3"]);
        assert!(
            hits.iter()
                .any(|h| h["path"] == path && h["text"].as_str().unwrap().contains(text)),
            "{text} must survive next to hostile files: {hits:?}"
        );
    }
}

#[test]
fn absurd_queries_get_clear_answers() {
    let (_, db, _) = indexed_fixture();
    let db = db.to_str().unwrap();
    let out = run(&["search", "--db", db, "   "]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("query is empty"), "{}", stderr(&out));
    let out = run(&["search", "--db", db]);
    assert_eq!(out.status.code(), Some(2), "missing query is a usage error");

    let huge = "why does the cache evict entries too early? ".repeat(25_000);
    assert!(huge.len() > 1_000_000);
    let hits = search_json(Path::new(db), "auto", &huge, &["--top-k", "5"]);
    assert_eq!(hits.len(), 5);

    let out = run(&["search", "--db", db, "--path", "[", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid path glob"));
}

#[test]
fn foreign_and_mismatched_indexes_are_refused() {
    let base = scratch("foreign");
    let not_index = base.join("notes");
    fs::create_dir_all(&not_index).unwrap();
    fs::write(not_index.join("todo.txt"), "buy milk").unwrap();
    let out = run(&["search", "--db", not_index.to_str().unwrap(), "anything"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is not a Quarry index"),
        "{}",
        stderr(&out)
    );
    let repo = fixtures().join("repo");
    let out = run(&[
        "index",
        repo.to_str().unwrap(),
        "--db",
        not_index.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        fs::read_to_string(not_index.join("todo.txt")).unwrap(),
        "buy milk",
        "nothing lost"
    );

    let missing = base.join("missing");
    let out = run(&["search", "--db", missing.to_str().unwrap(), "anything"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("quarry index"), "{}", stderr(&out));

    // An index written with a model this Quarry cannot load: search says to
    // rebuild; indexing moves it to the configured model by itself.
    let other = base.join("other-model");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        quarry_store::Store::open_or_create(
            &other,
            &quarry_store::IndexMeta::new("acme/code-embed-v9", 768),
        )
        .await
        .unwrap();
    });
    let out = run(&["search", "--db", other.to_str().unwrap(), "anything"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("acme/code-embed-v9"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("--rebuild"));
    let out = run(&[
        "index",
        repo.to_str().unwrap(),
        "--db",
        other.to_str().unwrap(),
    ]);
    assert_ok(&out);
    assert!(stderr(&out).contains("Switching it"), "{}", stderr(&out));
    assert_eq!(
        status_json(&other)["model"],
        "sentence-transformers/all-MiniLM-L6-v2"
    );
    assert!(!search_json(&other, "text", "retry with backoff", &[]).is_empty());
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(run(&["index"]).status.code(), Some(2));
    let out = run(&["index", "/definitely/not/here"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a directory"));
    assert_eq!(run(&["--version"]).status.code(), Some(0));
}

#[test]
fn models_lists_the_default_model() {
    let out = run(&["models"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("sentence-transformers/all-MiniLM-L6-v2 (default)"),
        "{text}"
    );
    // CI installs the OpenVINO runtime with `quarry models fetch`.
    assert!(text.contains("Engine: openvino 2026.4.1 cpu"), "{text}");
    // The code embedders and the rerankers, with the device they run on.
    for listed in [
        "nomic-ai/CodeRankEmbed  768-d",
        "Qwen/Qwen3-Embedding-0.6B  1024-d",
        "Rerankers (",
        "on cpu (",
        "default here: none",
        "Qwen/Qwen3-Reranker-0.6B  Pointwise",
        "nomic-ai/CodeRankLLM  Listwise",
    ] {
        assert!(text.contains(listed), "{listed}: {text}");
    }
    let out = quarry()
        .env("QUARRY_ENGINE", "candle")
        .arg("models")
        .output()
        .unwrap();
    assert_ok(&out);
    assert!(
        stdout(&out).contains("Engine: candle cpu"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn both_engines_search_an_index_alike_and_a_bad_engine_is_a_usage_error() {
    let (_, db, _) = indexed_fixture();
    let engine_search = |engine: &str, query: &str| -> Vec<String> {
        let out = quarry()
            .env("QUARRY_ENGINE", engine)
            .args([
                "search",
                "--db",
                db.to_str().unwrap(),
                "--json",
                "--mode",
                "text",
                query,
            ])
            .output()
            .unwrap();
        assert_ok(&out);
        let hits: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
        hits.iter()
            .take(3)
            .map(|h| h["symbol"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    // The index was built by the default engine (OpenVINO here); candle's query
    // vectors must rank it the same way.
    for case in cases().iter().filter(|c| c.mode == "text").take(5) {
        let ov = engine_search("openvino", &case.query);
        let candle = engine_search("candle", &case.query);
        assert_eq!(ov[0], candle[0], "{}", case.query);
        assert!(ov.contains(&case.expected), "{}: {ov:?}", case.query);
    }
    let out = quarry()
        .env("QUARRY_ENGINE", "tensorflow")
        .args(["search", "--db", db.to_str().unwrap(), "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("QUARRY_ENGINE"), "{}", stderr(&out));
}

#[test]
fn damaged_index_says_how_to_recover_and_rebuild_works() {
    let base = scratch("damaged");
    let repo = base.join("repo");
    fs::create_dir_all(&repo).unwrap();
    fs::write(
        repo.join("tally.py"),
        "def tally_votes(ballots):\n    \"\"\"Count votes per candidate.\"\"\"\n    return collections.Counter(ballots)\n",
    )
    .unwrap();
    let db = base.join("db");
    index_json(&repo, &db, &[]);
    let db_str = db.to_str().unwrap();

    // Truncated data files: reads fail with a pointer to --rebuild.
    for entry in fs::read_dir(db.join("chunks.lance/data")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len().min(100)]).unwrap();
    }
    let out = run(&["search", "--db", db_str, "count votes"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--rebuild"), "{}", stderr(&out));

    // Lost table versions: recognised as a damaged Quarry index, not a foreign one.
    fs::remove_dir_all(db.join("chunks.lance/_versions")).unwrap();
    let out = run(&["search", "--db", db_str, "count votes"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("is damaged"), "{}", stderr(&out));

    index_json(&repo, &db, &["--rebuild"]);
    let hits = search_json(&db, "text", "count votes per candidate", &["--top-k", "1"]);
    assert_eq!(hits[0]["symbol"], "tally_votes");
}

#[test]
fn remove_drops_one_repository_and_keeps_the_others() {
    let base = scratch("remove");
    let (alpha, beta) = (base.join("alpha"), base.join("beta"));
    fs::create_dir_all(&alpha).unwrap();
    fs::create_dir_all(&beta).unwrap();
    fs::write(
        alpha.join("a.py"),
        "def water_the_plants(garden):\n    \"\"\"Water every plant in the garden.\"\"\"\n    for plant in garden:\n        plant.water()\n",
    )
    .unwrap();
    fs::write(
        beta.join("b.rs"),
        "/// Launches the rocket after a countdown.\npub fn launch_rocket(countdown: u32) {\n    for _ in 0..countdown {}\n}\n",
    )
    .unwrap();
    let db = base.join("db");
    let out = run(&[
        "index",
        alpha.to_str().unwrap(),
        beta.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--json",
    ]);
    assert_ok(&out);
    let summary: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(summary["roots"].as_array().unwrap().len(), 2);

    let out = run(&[
        "remove",
        beta.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    assert_ok(&out);
    let status = status_json(&db);
    let roots: Vec<&str> = status["roots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["root"].as_str().unwrap())
        .collect();
    assert_eq!(roots, vec![alpha.canonicalize().unwrap().to_str().unwrap()]);
    let hits = search_json(&db, "text", "launch the rocket", &["--top-k", "5"]);
    assert!(
        hits.iter().all(|h| h["symbol"] != "launch_rocket"),
        "{hits:?}"
    );
    assert!(beta.join("b.rs").exists(), "files on disk are untouched");

    let out = run(&[
        "remove",
        beta.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not indexed"), "{}", stderr(&out));
}

#[test]
fn indexes_written_by_the_previous_format_still_open() {
    let base = scratch("index-v1");
    let db = base.join("db");
    copy_tree(&fixtures().join("index-v1/db"), &db);

    // Searched as it is: by meaning and by name.
    let hits = search_json(&db, "text", "read the configuration file", &[]);
    assert_eq!(hits[0]["symbol"], "parse_config", "{hits:?}");
    let hits = search_json(&db, "code", "retry_request(url)", &[]);
    assert_eq!(hits[0]["symbol"], "retry_request", "{hits:?}");
    let status = status_json(&db);
    assert_eq!(status["chunks"], 2);
    assert_eq!(status["pending"], 0);
    // Upgraded on opening: vectors moved to their own table.
    assert_eq!(status["schema_version"], 2, "{status}");
    assert_eq!(status["vectors"], 2, "{status}");

    // Extended with the current pipeline, which writes text before vectors.
    let repo = base.join("more");
    copy_tree(&fixtures().join("index-v1/src"), &repo);
    fs::write(
        repo.join("extra.py"),
        "def shout(text):\n    return text.upper() + '!'\n",
    )
    .unwrap();
    let summary = index_json(&repo, &db, &[]);
    assert_eq!(summary["files_changed"], 2, "{summary}");
    let hits = search_json(
        &db,
        "text",
        "make text upper case and add an exclamation mark",
        &[],
    );
    assert_eq!(hits[0]["symbol"], "shout", "{hits:?}");
    let status = status_json(&db);
    assert_eq!(status["chunks"], 5, "{status}");
    assert_eq!(status["pending"], 0);
}

#[test]
fn text_only_indexing_is_searchable_by_name_and_a_later_run_embeds() {
    let base = scratch("text-only");
    let repo = base.join("repo");
    copy_tree(&fixtures().join("repo"), &repo);
    let db = base.join("db");
    let summary = index_json(&repo, &db, &["--text-only"]);
    assert_eq!(summary["chunks_embedded"], 0, "{summary}");
    let pending = summary["chunks_pending"].as_u64().unwrap();
    assert!(
        pending > 0 && pending == summary["chunks_total"].as_u64().unwrap(),
        "{summary}"
    );

    // Names and words are found at once, with a note that meaning is pending.
    let out = quarry()
        .args([
            "search",
            "--db",
            db.to_str().unwrap(),
            "--json",
            "retry_with_backoff",
        ])
        .output()
        .unwrap();
    assert_ok(&out);
    let hits: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(hits[0]["symbol"], "retry_with_backoff");
    assert!(
        stderr(&out).contains("not embedded yet"),
        "{}",
        stderr(&out)
    );
    let status = status_json(&db);
    assert_eq!(status["pending"].as_u64(), Some(pending));

    // The next plain run embeds exactly what was pending and nothing else.
    let summary = index_json(&repo, &db, &[]);
    assert_eq!(
        summary["chunks_embedded"].as_u64(),
        Some(pending),
        "{summary}"
    );
    assert_eq!(summary["chunks_pending"], 0);
    let out = quarry()
        .args([
            "search",
            "--db",
            db.to_str().unwrap(),
            "--json",
            "--mode",
            "text",
            "retry a failing HTTP request with exponential backoff",
        ])
        .output()
        .unwrap();
    assert_ok(&out);
    assert!(
        !stderr(&out).contains("not embedded yet"),
        "{}",
        stderr(&out)
    );
    let hits: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(hits[0]["symbol"], "retry_with_backoff");
}

/// A module of functions whose text is new in `round`, so every run has
/// something to chunk and embed.
fn generated_module(round: usize) -> String {
    (0..8)
        .map(|k| {
            format!(
                "def scaled_total_{round}_{k}(values):\n    \"\"\"Sum of values scaled by {k} in round {round}.\"\"\"\n    return sum(v * {k} for v in values) + {round}\n\n"
            )
        })
        .collect()
}

/// The crash-safety harness: the real binary is killed (SIGKILL) at 20
/// random moments while it indexes a changing tree (new, edited and deleted
/// files; every fifth run a `--rebuild`), the index must open after every
/// kill, and a final run must converge to exactly the index a clean run
/// produces: the same chunks and file records, every chunk embedded.
#[test]
fn killing_the_indexer_at_random_moments_converges_to_the_clean_index() {
    let base = scratch("kill");
    let repo = base.join("repo");
    copy_tree(&fixtures().join("repo"), &repo);
    let db = base.join("db");
    let db_arg = db.to_str().unwrap().to_string();
    let repo_arg = repo.to_str().unwrap().to_string();

    // Kill moments are spread over the length of a full run on this machine.
    let started = std::time::Instant::now();
    index_json(&repo, &base.join("timing"), &[]);
    let full_run = started.elapsed();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill moments from seed {seed}, full run {full_run:?}");
    let mut state = seed;
    let mut uniform = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };

    for round in 0..20 {
        fs::write(
            repo.join(format!("app/generated_{round}.py")),
            generated_module(round),
        )
        .unwrap();
        if round % 3 == 2 {
            fs::remove_file(repo.join(format!("app/generated_{}.py", round - 1))).unwrap();
        }
        let mut args = vec!["index", "--db", db_arg.as_str(), repo_arg.as_str()];
        if round % 5 == 4 {
            args.push("--rebuild");
        }
        // Killed runs also leave the embedding cache half-written.
        let mut child = quarry()
            .env("QUARRY_EMBEDDING_CACHE", base.join("cache"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let moment = full_run.mul_f64(uniform() * 1.2);
        std::thread::sleep(moment);
        child.kill().unwrap();
        child.wait().unwrap();
        // Whenever it died, the index opens (or was not created yet).
        let out = run(&["status", "--db", &db_arg, "--json"]);
        assert!(
            out.status.success() || stderr(&out).contains("no Quarry index"),
            "round {round}, killed after {moment:?} (seed {seed}):\n{}",
            stderr(&out)
        );
    }

    // The final run reads whatever the killed runs cached.
    let last = quarry()
        .env("QUARRY_EMBEDDING_CACHE", base.join("cache"))
        .args(["index", "--db", &db_arg, &repo_arg])
        .output()
        .unwrap();
    assert_ok(&last);
    let clean = base.join("clean");
    index_json(&repo, &clean, &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let killed = quarry_store::Store::open(&db).await.unwrap();
        let clean = quarry_store::Store::open(&clean).await.unwrap();
        assert_eq!(
            killed.chunk_fingerprints().await.unwrap(),
            clean.chunk_fingerprints().await.unwrap(),
            "seed {seed}"
        );
        let root = repo.canonicalize().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            killed.files_under(&root).await.unwrap(),
            clean.files_under(&root).await.unwrap(),
            "seed {seed}"
        );
        assert_eq!(killed.pending_chunks(None).await.unwrap(), 0, "seed {seed}");
        assert_eq!(clean.pending_chunks(None).await.unwrap(), 0);
    });
}

#[test]
fn timings_go_to_stderr_and_leave_the_hits_unchanged() {
    let (_, db, _) = indexed_fixture();
    let db = db.to_str().unwrap();
    let query = "retry an http request with backoff";
    let plain = run(&["search", "--db", db, "--json", query]);
    let timed = run(&["search", "--db", db, "--json", "--timings", query]);
    assert_ok(&timed);
    let hits = |out: &Output| -> Vec<(String, String)> {
        let hits: Vec<Value> = serde_json::from_str(&stdout(out)).expect("hits are JSON");
        hits.iter()
            .map(|h| (h["path"].to_string(), h["symbol"].to_string()))
            .collect()
    };
    assert_eq!(hits(&timed), hits(&plain));
    let last = stderr(&timed)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let timings: Value = serde_json::from_str(&last).expect("timings are one JSON line");
    assert!(timings["startup_ms"].as_f64().unwrap() > 0.0, "{timings}");
    for stage in ["embed_ms", "dense_ms", "lexical_ms", "total_ms"] {
        assert!(
            timings["search"][stage].as_f64().unwrap() > 0.0,
            "{stage}: {timings}"
        );
    }
    let text = run(&["search", "--db", db, "--timings", query]);
    assert!(
        stderr(&text).contains("timings: startup"),
        "{}",
        stderr(&text)
    );
}

/// A tiny random-weight reranker checked in for the parity tests.
fn tiny_model(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/tests/fixtures/tiny")
        .join(name)
}

#[test]
fn a_reranker_reorders_the_first_stage_and_reports_its_time() {
    let (_, db, _) = indexed_fixture();
    let db = db.to_str().unwrap();
    let query = "cache eviction with a least recently used policy";
    let model = tiny_model("bert-cross-encoder");
    let first: Vec<Value> = serde_json::from_str(&stdout(&run(&[
        "search", "--db", db, "--json", "--top-k", "30", "--rerank", "none", query,
    ])))
    .unwrap();
    let out = run(&[
        "search",
        "--db",
        db,
        "--json",
        "--timings",
        "--top-k",
        "5",
        "--rerank",
        model.to_str().unwrap(),
        query,
    ]);
    assert_ok(&out);
    let hits: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(hits.len(), 5);
    // Every hit comes from the first stage's 30 (the CPU depth), scored
    // by the model itself: the same logits the library computes.
    let encoder =
        quarry_models::rerank::cross_encoder::CrossEncoder::load(&model, candle_core::Device::Cpu)
            .unwrap();
    let texts: Vec<&str> = hits.iter().map(|h| h["text"].as_str().unwrap()).collect();
    let pairs: Vec<(&str, &str)> = texts.iter().map(|t| (query, *t)).collect();
    let expected = encoder.score_pairs(&pairs).unwrap();
    for (hit, want) in hits.iter().zip(&expected) {
        assert!(first.iter().any(|f| f["symbol"] == hit["symbol"]), "{hit}");
        let got = hit["score"].as_f64().unwrap() as f32;
        assert!(
            (got - want).abs() <= 1e-4 + 1e-4 * want.abs(),
            "{got} vs {want}"
        );
    }
    // The best 5 of the 30 by the model, in its order.
    let all_texts: Vec<&str> = first.iter().map(|h| h["text"].as_str().unwrap()).collect();
    let all_pairs: Vec<(&str, &str)> = all_texts.iter().map(|t| (query, *t)).collect();
    let mut all = encoder.score_pairs(&all_pairs).unwrap();
    all.sort_by(|a, b| b.total_cmp(a));
    for (got, want) in expected.iter().zip(&all) {
        assert!(
            (got - want).abs() <= 1e-4 + 1e-4 * want.abs(),
            "{expected:?} vs {all:?}"
        );
    }
    let timings: Value =
        serde_json::from_str(stderr(&out).lines().last().unwrap_or_default()).unwrap();
    assert_eq!(timings["search"]["reranked"], 30, "{timings}");
    assert!(timings["search"]["rerank_ms"].as_f64().unwrap() > 0.0);

    // --rerank none is the first stage; a decoder reranker of another kind runs too.
    let none: Vec<Value> = serde_json::from_str(&stdout(&run(&[
        "search", "--db", db, "--json", "--top-k", "5", "--rerank", "none", query,
    ])))
    .unwrap();
    assert_eq!(none, first[..5].to_vec());
    let listwise = tiny_model("qwen2");
    let out = run(&[
        "search",
        "--db",
        db,
        "--json",
        "--top-k",
        "12",
        "--rerank",
        listwise.to_str().unwrap(),
        "--rerank-kind",
        "listwise",
        "--rerank-depth",
        "12",
        query,
    ]);
    assert_ok(&out);
    let hits: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let mut symbols: Vec<&str> = hits.iter().map(|h| h["symbol"].as_str().unwrap()).collect();
    let mut firsts: Vec<&str> = first[..12]
        .iter()
        .map(|h| h["symbol"].as_str().unwrap())
        .collect();
    symbols.sort();
    firsts.sort();
    assert_eq!(symbols, firsts, "a permutation of the first stage's 12");
}

#[test]
fn a_bad_reranker_is_refused_with_what_to_do() {
    let (_, db, _) = indexed_fixture();
    let db = db.to_str().unwrap();
    let out = run(&[
        "search",
        "--db",
        db,
        "--rerank",
        "no-such-reranker",
        "cache",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Unknown reranker"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("Qwen/Qwen3-Reranker-0.6B"),
        "{}",
        stderr(&out)
    );
    // A directory that holds no model names itself.
    let empty = scratch("empty-reranker");
    let out = run(&[
        "search",
        "--db",
        db,
        "--rerank",
        empty.to_str().unwrap(),
        "cache",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("config.json"), "{}", stderr(&out));
    let out = run(&[
        "search",
        "--db",
        db,
        "--rerank-kind",
        "sideways",
        "--rerank",
        "none",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// A running `quarry watch --json`, its events read line by line.
struct Watching {
    child: std::process::Child,
    events: std::sync::mpsc::Receiver<Value>,
}

impl Watching {
    fn start(repo: &Path, db: &Path) -> Watching {
        let mut child = quarry()
            .args([
                "watch",
                repo.to_str().unwrap(),
                "--db",
                db.to_str().unwrap(),
                "--json",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let event: Value = serde_json::from_str(&line).expect("one JSON object per line");
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        let watching = Watching { child, events };
        watching.next("ready");
        watching
    }

    /// The next event of `kind` (earlier events of other kinds are dropped).
    fn next(&self, kind: &str) -> Value {
        loop {
            let event = self
                .events
                .recv_timeout(std::time::Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("no {kind} event"));
            if event["event"] == kind {
                return event;
            }
        }
    }

    /// Batch events until their changed and deleted files add up to `files`.
    fn batches_until(&self, files: u64) -> Vec<Value> {
        let mut batches = Vec::new();
        let mut seen = 0;
        while seen < files {
            let batch = self.next("batch");
            seen +=
                batch["files_changed"].as_u64().unwrap() + batch["files_deleted"].as_u64().unwrap();
            batches.push(batch);
        }
        batches
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn top_symbol(db: &Path, query: &str) -> Option<String> {
    search_json(db, "text", query, &["--top-k", "1"])
        .first()
        .map(|h| h["symbol"].as_str().unwrap().to_string())
}

#[test]
fn watch_follows_edits_bursts_renames_and_deletes_and_ignores_what_the_walk_ignores() {
    let base = scratch("watch");
    let repo = base.join("repo");
    fs::create_dir_all(repo.join("pkg")).unwrap();
    fs::write(repo.join(".gitignore"), "target/\n").unwrap();
    fs::write(
        repo.join("pkg/first.py"),
        "def first_function():\n    return 1\n",
    )
    .unwrap();
    let db = base.join("db");
    let watching = Watching::start(&repo, &db);
    assert_eq!(
        top_symbol(&db, "first_function").as_deref(),
        Some("first_function")
    );

    // A new file is searchable once its batch is reported.
    fs::write(
        repo.join("pkg/added.py"),
        "def walrus_tusk_length(walrus):\n    return walrus.tusk\n",
    )
    .unwrap();
    let batch = watching.next("batch");
    assert_eq!(batch["files_changed"], 1, "{batch}");
    assert_eq!(
        top_symbol(&db, "walrus_tusk_length").as_deref(),
        Some("walrus_tusk_length")
    );

    // Ignored paths cause no work at all; the next real change comes alone.
    fs::create_dir_all(repo.join("target/debug")).unwrap();
    fs::write(
        repo.join("target/debug/gen.py"),
        "def generated_thing():\n    pass\n",
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    fs::write(
        repo.join("pkg/first.py"),
        "def first_function_renamed():\n    return 1\n",
    )
    .unwrap();
    let batch = watching.next("batch");
    assert_eq!(
        (batch["files_changed"].as_u64(), batch["paths"].as_u64()),
        (Some(1), Some(1)),
        "{batch}"
    );
    assert_ne!(
        top_symbol(&db, "generated_thing").as_deref(),
        Some("generated_thing")
    );

    // A burst (a checkout writing 300 files) is one batch, or very few.
    for i in 0..300 {
        fs::write(
            repo.join(format!("pkg/burst_{i}.py")),
            format!("def burst_handler_{i}(event):\n    return event.id + {i}\n"),
        )
        .unwrap();
    }
    let batches = watching.batches_until(300);
    assert!(batches.len() <= 2, "{} batches: {batches:?}", batches.len());
    assert_eq!(
        top_symbol(&db, "burst_handler_217").as_deref(),
        Some("burst_handler_217")
    );

    // A renamed directory moves its files; a deleted file leaves the index.
    fs::rename(repo.join("pkg"), repo.join("lib")).unwrap();
    let moved = watching.batches_until(2 * 302);
    let hits = search_json(&db, "text", "walrus_tusk_length", &["--top-k", "1"]);
    assert_eq!(hits[0]["path"], "lib/added.py", "{moved:?}");
    fs::remove_file(repo.join("lib/added.py")).unwrap();
    watching.batches_until(1);
    assert_ne!(
        top_symbol(&db, "walrus_tusk_length").as_deref(),
        Some("walrus_tusk_length")
    );
    let status = status_json(&db);
    assert_eq!(status["files"], 301, "{status}");
}
