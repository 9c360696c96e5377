//! The workspace as the desktop app drives it: the real model, a real index
//! on disk, the fixture repository, and the events a window would receive.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quarry_search::Mode;
use quarry_workspace::{Event, IndexEvent, Locations, RepoState, SearchQuery, Workspace};

#[path = "../../../tests/support.rs"]
mod support;
use support::{copy_tree, fixtures};

/// A workspace in a scratch directory, recording its events.
struct Harness {
    _dir: tempfile::TempDir,
    base: PathBuf,
    ws: Arc<Workspace>,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Harness {
    async fn start() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_path_buf();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink_events = Arc::clone(&events);
        let locations = Locations {
            db: base.join("index"),
            settings: base.join("config.toml"),
            home: quarry_models::quarry_home(),
            embedding_cache: Some(base.join("embedding-cache")),
        };
        let (ws, problems) = Workspace::start(
            locations,
            Arc::new(move |e| sink_events.lock().unwrap().push(e)),
        )
        .await;
        assert!(problems.is_empty(), "{problems:?}");
        Harness {
            _dir: dir,
            base,
            ws,
            events,
        }
    }

    fn index_events(&self, root: &str) -> Vec<IndexEvent> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Index(i) if i.root == root => Some(i.clone()),
                _ => None,
            })
            .collect()
    }

    /// Waits until `root` has finished `n` indexing runs (none failing).
    async fn wait_runs(&self, root: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let events = self.index_events(root);
            let failed = events.iter().find(|e| e.phase == "error");
            assert!(failed.is_none(), "{failed:?}");
            if events.iter().filter(|e| e.phase == "done").count() >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "run {n} of {root} never finished"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for `root`'s job to reach one of `phases`.
    async fn wait_for(&self, root: &str, phases: &[&str]) -> IndexEvent {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            if let Some(e) = self
                .index_events(root)
                .into_iter()
                .find(|e| phases.contains(&e.phase.as_str()))
            {
                return e;
            }
            assert!(Instant::now() < deadline, "{root} never reached {phases:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn query(text: &str, mode: Mode) -> SearchQuery {
    SearchQuery {
        query: text.into(),
        mode,
        top_k: 10,
        repos: vec![],
        languages: vec![],
        path_globs: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_is_added_indexed_searched_previewed_and_removed() {
    let h = Harness::start().await;
    let repo = h.base.join("repo");
    copy_tree(&fixtures().join("repo"), &repo);

    let added = h.ws.add_repository(repo.to_str().unwrap()).unwrap();
    assert_eq!(added.state, RepoState::Queued);
    let root = added.root.clone();
    assert_eq!(added.name, "repo");
    let end = h.wait_for(&root, &["done", "error", "cancelled"]).await;
    assert_eq!(end.phase, "done", "{end:?}");

    // The window saw every stage, in order.
    let phases: Vec<String> = h.index_events(&root).into_iter().map(|e| e.phase).collect();
    let order = [
        "queued",
        "chunking",
        "searchable",
        "embedding",
        "optimizing",
        "done",
    ];
    let mut at = 0;
    for phase in &phases {
        if let Some(i) = order.iter().position(|p| p == phase) {
            assert!(i >= at, "{phase} after {}: {phases:?}", order[at]);
            at = i;
        }
    }
    assert_eq!(at, order.len() - 1, "{phases:?}");
    assert!(
        matches!(h.ws.model_state().phase, "ready"),
        "{:?}",
        h.ws.model_state()
    );

    let repos = h.ws.repositories().await.unwrap();
    assert_eq!(repos.len(), 1, "{repos:?}");
    let listed = &repos[0];
    assert_eq!(listed.state, RepoState::UpToDate);
    assert!(listed.files >= 10 && listed.chunks >= 40, "{listed:?}");
    assert_eq!(listed.pending, 0);
    assert!(listed.last_indexed.is_some());

    // Search by meaning: the hit comes highlighted and ready to show.
    let view =
        h.ws.search(query("retry an http request with backoff", Mode::Auto))
            .await
            .unwrap();
    assert_eq!(view.mode, Mode::Text);
    let hit = &view.hits[0];
    let (rank, repo_name, lines) = (hit.rank, hit.repo.clone(), hit.lines.clone());
    let hit = &hit.hit;
    assert_eq!(hit.symbol, "retry_with_backoff", "{:?}", view.hits);
    assert_eq!((rank, repo_name.as_str()), (1, "repo"));
    assert_eq!(
        lines.len() as u32,
        hit.end_line - hit.start_line + 1,
        "one line of tokens per source line"
    );
    assert!(lines
        .iter()
        .flatten()
        .any(|t| t.class == Some("keyword") && t.text == "fn"));
    assert!(
        view.terms.iter().any(|t| t == "backoff"),
        "{:?}",
        view.terms
    );

    // A reranker chosen in the settings decides the order from the next
    // search on; `none` gives the first stage back.
    let tiny = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models/tests/fixtures/tiny/bert-cross-encoder");
    let first =
        h.ws.search(query("cache eviction", Mode::Text))
            .await
            .unwrap();
    h.ws.save_settings(quarry_workspace::Settings {
        rerank: tiny.to_string_lossy().into_owned(),
        rerank_depth: Some(12),
        ..h.ws.settings()
    })
    .unwrap();
    let reranked =
        h.ws.search(query("cache eviction", Mode::Text))
            .await
            .unwrap();
    let encoder =
        quarry_models::rerank::cross_encoder::CrossEncoder::load(&tiny, candle_core::Device::Cpu)
            .unwrap();
    let pairs: Vec<(&str, &str)> = reranked
        .hits
        .iter()
        .map(|v| ("cache eviction", v.hit.text.as_str()))
        .collect();
    let logits = encoder.score_pairs(&pairs).unwrap();
    for (view, logit) in reranked.hits.iter().zip(&logits) {
        assert!(
            (view.hit.score - logit).abs() < 1e-4,
            "{} vs {logit}",
            view.hit.score
        );
    }
    assert!(logits.windows(2).all(|w| w[0] >= w[1]), "{logits:?}");
    h.ws.save_settings(quarry_workspace::Settings {
        rerank: "none".into(),
        ..h.ws.settings()
    })
    .unwrap();
    let again =
        h.ws.search(query("cache eviction", Mode::Text))
            .await
            .unwrap();
    let symbols = |v: &quarry_workspace::SearchView| -> Vec<String> {
        v.hits.iter().map(|h| h.hit.symbol.clone()).collect()
    };
    assert_eq!(symbols(&again), symbols(&first));

    // The preview adds context and stays inside the repository.
    let preview =
        h.ws.preview(&root, &hit.path, hit.start_line, hit.end_line, 3)
            .await
            .unwrap();
    assert_eq!(preview.first_line, hit.start_line.saturating_sub(3).max(1));
    let shown: String = preview.lines[(hit.start_line - preview.first_line) as usize]
        .iter()
        .map(|t| t.text.as_str())
        .collect();
    let first_hit_line: String = lines[0].iter().map(|t| t.text.as_str()).collect();
    assert_eq!(shown, first_hit_line);
    for bad in ["../config.toml", "/etc/passwd"] {
        let problem = h.ws.preview(&root, bad, 1, 1, 0).await.unwrap_err();
        assert!(problem.message.contains("not inside"), "{problem:?}");
    }
    let elsewhere = h.base.to_string_lossy().into_owned();
    let problem =
        h.ws.preview(&elsewhere, "config.toml", 1, 1, 0)
            .await
            .unwrap_err();
    assert!(problem.message.contains("not an indexed repository"));
    let problem =
        h.ws.open_in_editor(&root, "../config.toml", 1)
            .await
            .unwrap_err();
    assert!(problem.message.contains("not inside"), "{problem:?}");

    // While the workspace is open, a saved file becomes searchable by
    // itself: the background watcher indexes it.
    std::fs::write(
        repo.join("app/ledger.py"),
        "def reconcile_ledger_entries(entries):\n    return sum(e.amount for e in entries)\n",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let view =
            h.ws.search(query("reconcile_ledger_entries", Mode::Auto))
                .await
                .unwrap();
        if view.hits.first().map(|h| h.hit.symbol.as_str()) == Some("reconcile_ledger_entries") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the saved file was never indexed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Removing it empties the index (its files stay).
    h.ws.remove_repository(&root).await.unwrap();
    assert!(h.ws.repositories().await.unwrap().is_empty());
    let view =
        h.ws.search(query("retry_with_backoff", Mode::Auto))
            .await
            .unwrap();
    assert!(view.hits.is_empty(), "{:?}", view.hits);
    assert!(repo.join("src/retry.rs").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexing_can_be_cancelled_and_queued_work_dropped() {
    let h = Harness::start().await;
    let big = h.base.join("big");
    std::fs::create_dir_all(&big).unwrap();
    for i in 0..400 {
        let body: String = (0..6)
            .map(|j| {
                format!("def handler_{i}_{j}(request):\n    return request.value * {j} + {i}\n\n")
            })
            .collect();
        std::fs::write(big.join(format!("mod_{i}.py")), body).unwrap();
    }
    let small = h.base.join("small");
    copy_tree(&fixtures().join("repo"), &small);

    let big_root = h.ws.add_repository(big.to_str().unwrap()).unwrap().root;
    let small_root = h.ws.add_repository(small.to_str().unwrap()).unwrap().root;
    // Adding it again while queued changes nothing.
    h.ws.add_repository(small.to_str().unwrap()).unwrap();
    let listed = h.ws.repositories().await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");

    // A queued job is dropped without a trace.
    h.ws.cancel(&small_root);
    // The running one stops at its next batch; what it wrote stays.
    h.wait_for(&big_root, &["embedding"]).await;
    h.ws.cancel(&big_root);
    let end = h.wait_for(&big_root, &["done", "cancelled", "error"]).await;
    assert_eq!(end.phase, "cancelled", "{end:?}");
    assert!(end.error.unwrap().hint.unwrap().contains("re-index"));

    let repos = h.ws.repositories().await.unwrap();
    assert_eq!(repos.len(), 1, "the queued one was dropped: {repos:?}");
    let big_repo = &repos[0];
    assert_eq!(big_repo.state, RepoState::Error);
    assert!(big_repo
        .error
        .as_ref()
        .unwrap()
        .message
        .contains("cancelled"));
    assert!(
        big_repo.chunks > 0,
        "the text side was written: {big_repo:?}"
    );
    assert!(h
        .index_events(&small_root)
        .iter()
        .all(|e| e.phase == "queued"));

    // Text search works on what was written; a re-index finishes the rest.
    let view = h.ws.search(query("handler_7_3", Mode::Auto)).await.unwrap();
    assert_eq!(view.hits[0].hit.symbol, "handler_7_3");
    h.ws.reindex(&big_root);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let end = loop {
        let events = h.index_events(&big_root);
        let last = events.last().unwrap().clone();
        if last.phase == "done" {
            break last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(end.phase, "done");
    let repos = h.ws.repositories().await.unwrap();
    assert_eq!((repos[0].state, repos[0].pending), (RepoState::UpToDate, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_settings_file_is_reported_and_the_defaults_are_used() {
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("config.toml");
    std::fs::write(&settings, "max_file_size = \"huge\"\n").unwrap();
    let locations = Locations {
        db: dir.path().join("index"),
        settings: settings.clone(),
        home: quarry_models::quarry_home(),
        embedding_cache: None,
    };
    let (ws, problems) = Workspace::start(locations, Arc::new(|_| {})).await;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].message.contains("config.toml"), "{problems:?}");
    assert_eq!(ws.settings(), quarry_workspace::Settings::default());
    // The file is left for the user to fix, until they save new settings.
    assert!(std::fs::read_to_string(&settings).unwrap().contains("huge"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_that_cannot_be_indexed_are_refused_with_a_reason() {
    let h = Harness::start().await;
    let file = h.base.join("a-file.txt");
    std::fs::write(&file, "x").unwrap();
    for bad in [
        String::new(),
        h.base.join("missing").to_string_lossy().into_owned(),
        file.to_string_lossy().into_owned(),
    ] {
        let problem = h.ws.add_repository(&bad).unwrap_err();
        assert!(problem.hint.is_some(), "{bad}: {problem:?}");
    }
    // Nothing indexed yet: searching says so instead of failing obscurely.
    let problem =
        h.ws.search(query("anything", Mode::Auto))
            .await
            .unwrap_err();
    assert!(
        problem.message.contains("Nothing is indexed"),
        "{problem:?}"
    );
    assert!(h.ws.repositories().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_first_run_the_model_is_fetched_with_progress_while_the_rest_works() {
    // A machine that has never run Quarry: no model under its home.
    let dir = tempfile::tempdir().unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let locations = Locations {
        db: dir.path().join("index"),
        settings: dir.path().join("config.toml"),
        home: dir.path().join("home"),
        embedding_cache: Some(dir.path().join("home").join("embedding-cache")),
    };
    let (ws, problems) = Workspace::start(
        locations,
        Arc::new(move |e| {
            if let Event::Model(m) = e {
                seen.lock().unwrap().push(m)
            }
        }),
    )
    .await;
    assert!(problems.is_empty(), "{problems:?}");
    // Everything but search by meaning answers at once.
    assert!(ws.repositories().await.unwrap().is_empty());
    assert_eq!(ws.settings(), quarry_workspace::Settings::default());

    let deadline = Instant::now() + Duration::from_secs(900);
    while !matches!(ws.model_state().phase, "ready" | "error") {
        assert!(Instant::now() < deadline, "{:?}", ws.model_state());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let state = ws.model_state();
    assert_eq!(state.phase, "ready", "{state:?}");
    assert!(state.device.is_some());
    let events = events.lock().unwrap().clone();
    let phases: Vec<&str> = events.iter().map(|m| m.phase).collect();
    let downloading = phases.iter().position(|p| *p == "downloading");
    let verifying = phases.iter().position(|p| *p == "verifying");
    let ready = phases.iter().position(|p| *p == "ready");
    assert!(
        downloading < verifying && verifying < ready && downloading.is_some(),
        "{phases:?}"
    );
    assert!(
        events.iter().any(|m| m.source.is_some() && m.done > 0),
        "no byte counts were reported: {events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_model_in_the_settings_moves_the_index_to_it_and_back() {
    let h = Harness::start().await;
    let repo = h.base.join("repo");
    copy_tree(&fixtures().join("repo"), &repo);
    let root = h.ws.add_repository(repo.to_str().unwrap()).unwrap().root;
    h.wait_runs(&root, 1).await;
    let query_text = "retry an http request with backoff";
    let before = h.ws.search(query(query_text, Mode::Text)).await.unwrap();

    // Another model: the tiny random-weight BERT of the parity tests.
    let tiny = h.base.join("tiny-bert");
    copy_tree(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../models/tests/fixtures/tiny/bert-embedder"),
        &tiny,
    );
    let default_model = h.ws.settings().model;
    h.ws.save_settings(quarry_workspace::Settings {
        model: tiny.to_string_lossy().into_owned(),
        ..h.ws.settings()
    })
    .unwrap();
    h.wait_runs(&root, 2).await;
    let phases: Vec<String> = h.index_events(&root).into_iter().map(|e| e.phase).collect();
    assert!(phases.iter().any(|p| p == "switching model"), "{phases:?}");
    let state = h.ws.model_state();
    assert!(state.model.ends_with("tiny-bert"), "{state:?}");
    let repos = h.ws.repositories().await.unwrap();
    assert_eq!(repos[0].pending, 0, "{repos:?}");
    let tiny_view = h.ws.search(query(query_text, Mode::Text)).await.unwrap();
    assert!(!tiny_view.hits.is_empty());

    // Back to the default model: searches answer as before the switch.
    h.ws.save_settings(quarry_workspace::Settings {
        model: default_model,
        ..h.ws.settings()
    })
    .unwrap();
    h.wait_runs(&root, 3).await;
    let after = h.ws.search(query(query_text, Mode::Text)).await.unwrap();
    assert_eq!(after.hits[0].hit.symbol, before.hits[0].hit.symbol);
    assert!((after.hits[0].hit.score - before.hits[0].hit.score).abs() < 1e-3);
}
