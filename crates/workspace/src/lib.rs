//! The user's workspace as a long-lived process (the desktop app, `quarry
//! watch`) holds it: the settings, the index, the embedding model loaded
//! once, a queue of indexing jobs with live progress, and searches whose
//! results come back highlighted and ready to show.
//!
//! Front ends stay thin: they call [`Workspace`] methods and forward its
//! [`Event`]s; no indexing or search logic lives in them.

pub mod editor;
pub mod files;
mod jobs;
mod model;
pub mod problem;
pub mod rerank;
pub mod settings;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use quarry_chunk::Token;
use quarry_search::Mode;
use quarry_store::{EmbeddingCache, Store};

pub use files::Preview;
pub use jobs::{IndexEvent, Progress, RepoState};
pub use model::{engine_from_env, load_embedder, ModelState};
pub use problem::Problem;
pub use settings::Settings;

/// Something front ends show as it happens.
#[derive(Debug, Clone)]
pub enum Event {
    /// An indexing job moved on.
    Index(IndexEvent),
    /// The model is being fetched or loaded, or became ready or failed.
    Model(ModelState),
    /// Repositories were added, removed or (re)indexed: refresh the list
    /// with [`Workspace::repositories`].
    RepositoriesChanged,
}

/// Where events go (the app forwards them to its window).
pub type EventSink = Arc<dyn Fn(Event) + Send + Sync>;

/// Where a workspace keeps its files.
#[derive(Debug, Clone)]
pub struct Locations {
    /// The index directory.
    pub db: PathBuf,
    /// The settings file.
    pub settings: PathBuf,
    /// Quarry's home (models, runtimes).
    pub home: PathBuf,
    /// Where the machine-wide embedding cache lives; `None` turns it off.
    pub embedding_cache: Option<PathBuf>,
}

impl Locations {
    /// The defaults the CLI uses too: `$QUARRY_DB` or `<home>/index`,
    /// `$QUARRY_CONFIG` or the platform config file, `$QUARRY_HOME` or the
    /// platform data directory, `$QUARRY_EMBEDDING_CACHE` (`off` turns it
    /// off) or `<home>/embedding-cache`.
    pub fn from_env() -> Self {
        let home = quarry_models::quarry_home();
        let embedding_cache = match std::env::var_os(EMBEDDING_CACHE_ENV) {
            Some(v) if v == "off" => None,
            Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
            _ => Some(home.join("embedding-cache")),
        };
        Locations {
            db: std::env::var_os("QUARRY_DB")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join("index")),
            settings: Settings::path(),
            home,
            embedding_cache,
        }
    }

    /// Copies `store`'s vectors into the embedding cache of the model that
    /// made them, before they are dropped (a rebuild, a model switch). An
    /// unusable cache costs only time, so failures are logged.
    pub async fn keep_vectors(&self, store: &Store) {
        let meta = store.meta();
        let Some(cache) = self.open_embedding_cache(&meta.model, meta.dim).await else {
            return;
        };
        match store.save_vectors_to(&cache).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                vectors = n,
                "kept {}'s vectors in the embedding cache",
                meta.model
            ),
            Err(e) => tracing::warn!("could not keep {}'s vectors: {e}", meta.model),
        }
    }

    /// Moves the index `current` was opened on to `meta`'s model: its
    /// vectors go to the old model's embedding cache first (switching back
    /// costs nothing), then [`Store::switch_model`]. The CLI and the app
    /// both switch through here.
    pub async fn switch_index_model(
        &self,
        current: &Store,
        meta: &quarry_store::IndexMeta,
    ) -> Result<Store, quarry_store::StoreError> {
        self.keep_vectors(current).await;
        Store::open(current.dir()).await?.switch_model(meta).await
    }

    /// Opens the embedding cache of `model` (`dim`-dimensional) when there
    /// is one. It is only a cache: when it cannot be opened, indexing goes
    /// on without it and the reason is logged.
    pub async fn open_embedding_cache(
        &self,
        model: &str,
        dim: usize,
    ) -> Option<Arc<EmbeddingCache>> {
        let dir = self.embedding_cache.as_deref()?;
        match EmbeddingCache::open(dir, model, dim).await {
            Ok(cache) => Some(Arc::new(cache)),
            Err(e) => {
                tracing::warn!(cache = %dir.display(), "embedding cache unavailable: {e}");
                None
            }
        }
    }
}

/// The environment variable that moves the embedding cache (a directory)
/// or turns it off (`off`).
pub const EMBEDDING_CACHE_ENV: &str = "QUARRY_EMBEDDING_CACHE";

/// A repository as the window lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Repository {
    /// Absolute path: the repository's identity.
    pub root: String,
    /// Last path component, for display.
    pub name: String,
    /// Indexed files.
    pub files: usize,
    /// Chunks in the index.
    pub chunks: usize,
    /// Chunks still without vectors.
    pub pending: usize,
    /// Unix seconds of the last finished indexing run.
    pub last_indexed: Option<u64>,
    /// Queued, indexing, up to date or failed.
    pub state: RepoState,
    /// While queued or indexing.
    pub progress: Option<Progress>,
    /// When the last job failed or was cancelled.
    pub error: Option<Problem>,
}

/// A search as the window asks for it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SearchQuery {
    /// Words, a snippet or an issue.
    pub query: String,
    /// How to read it.
    pub mode: Mode,
    /// Results wanted.
    pub top_k: usize,
    /// Only these repositories (roots); empty: all.
    #[serde(default)]
    pub repos: Vec<String>,
    /// Only these languages; empty: all.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Only paths matching one of these globs; empty: all.
    #[serde(default)]
    pub path_globs: Vec<String>,
}

/// One result, ready to show: the engine's hit (flattened into the same
/// JSON object, so the window reads `symbol`, `path`, `start_line`, … as
/// the CLI's `--json` does) with its rank, repository name and highlighted
/// lines.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HitView {
    /// 1-based rank.
    pub rank: usize,
    /// The repository's name.
    pub repo: String,
    /// The hit itself.
    #[serde(flatten)]
    pub hit: quarry_search::Hit,
    /// The chunk's code, highlighted.
    pub lines: Vec<Vec<Token>>,
}

/// A finished search, ready to show.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SearchView {
    /// The mode used (auto resolved).
    pub mode: Mode,
    /// Results, best first.
    pub hits: Vec<HitView>,
    /// Identifiers and terms of the query, to mark in the results.
    pub terms: Vec<String>,
    /// Chunks not embedded yet: the dense side is incomplete.
    pub pending_chunks: usize,
    /// Milliseconds the search took.
    pub took_ms: f64,
}

/// The most results one search returns.
pub const MAX_TOP_K: usize = 200;

/// Logs to standard error, filtered by `$QUARRY_LOG` (a `tracing` filter
/// such as `info` or `quarry_index=debug`; default: warnings only).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("QUARRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The ids of the models the settings may choose.
pub fn known_model_ids() -> Vec<String> {
    quarry_models::known_models()
        .iter()
        .map(|m| m.id.to_string())
        .collect()
}

/// The display name of a root: its last component.
pub fn repo_name(root: &str) -> String {
    Path::new(root)
        .file_name()
        .map_or_else(|| root.to_string(), |n| n.to_string_lossy().into_owned())
}

/// A loaded second stage (or none) with the settings (`rerank`,
/// `rerank_depth`) it was loaded for.
type LoadedFor = ((String, Option<usize>), Option<Arc<rerank::LoadedReranker>>);

/// The workspace. Create one per process with [`Workspace::start`].
pub struct Workspace {
    locations: Locations,
    settings: Mutex<Settings>,
    /// The open index, once there is one (opened at start, created by the
    /// first indexing job). Shared by searches and the indexer, so searches
    /// see each commit as soon as it lands.
    store: tokio::sync::Mutex<Option<Arc<Store>>>,
    model: model::ModelSlot,
    jobs: jobs::Jobs,
    /// The background watcher over every indexed root, with its stop flag.
    watcher: Mutex<Option<Arc<std::sync::atomic::AtomicBool>>>,
    /// The embedding cache of the loaded model (by its id), opened on
    /// first use and again after a model switch.
    embedding_cache: tokio::sync::Mutex<Option<(String, Option<Arc<EmbeddingCache>>)>>,
    /// The second stage the settings ask for, loaded on the first search
    /// (and again when they change), with the settings it was loaded for.
    reranker: tokio::sync::Mutex<Option<LoadedFor>>,
    sink: EventSink,
}

impl Workspace {
    /// Opens the workspace and starts loading (on first run: downloading)
    /// the model in the background. Must be called inside a tokio runtime.
    /// Settings that cannot be read are reported through the returned
    /// problem list and replaced by the defaults, so the window still opens.
    pub async fn start(locations: Locations, sink: EventSink) -> (Arc<Self>, Vec<Problem>) {
        let mut problems = Vec::new();
        let settings = Settings::load(&locations.settings).unwrap_or_else(|p| {
            problems.push(p);
            Settings::default()
        });
        let store = match Store::open(&locations.db).await {
            Ok(store) => Some(Arc::new(store)),
            Err(quarry_store::StoreError::Missing { .. }) => None,
            Err(e) => {
                problems.push(e.into());
                None
            }
        };
        let model_id = store
            .as_ref()
            .map_or_else(|| settings.model.clone(), |s| s.meta().model.clone());
        let workspace = Arc::new(Workspace {
            model: model::ModelSlot::new(&model_id),
            locations,
            settings: Mutex::new(settings),
            store: tokio::sync::Mutex::new(store),
            jobs: jobs::Jobs::default(),
            watcher: Mutex::new(None),
            embedding_cache: tokio::sync::Mutex::new(None),
            reranker: tokio::sync::Mutex::new(None),
            sink,
        });
        model::start_loading(&workspace);
        let ws = Arc::clone(&workspace);
        tokio::spawn(async move {
            if ws.model.wait_ready().await.is_ok() {
                // Settings changed while the app was closed: follow them.
                if let Err(problem) = ws.follow_model_setting() {
                    tracing::warn!("the settings' model cannot be used: {problem}");
                }
                ws.restart_watcher().await;
            }
        });
        (workspace, problems)
    }

    /// Where the index, settings and models live.
    pub fn locations(&self) -> &Locations {
        &self.locations
    }

    fn emit(&self, event: Event) {
        (self.sink)(event)
    }

    /// The current settings.
    pub fn settings(&self) -> Settings {
        self.settings.lock().expect("settings lock").clone()
    }

    /// Validates, saves and applies new settings (indexing runs started
    /// afterwards use them).
    ///
    /// A new model switches the index: the model is loaded (fetched on
    /// first use) and every repository is indexed again with it, each job
    /// first moving the index to the new model (see `Store::switch_model`).
    pub fn save_settings(self: &Arc<Self>, settings: Settings) -> Result<Settings, Problem> {
        settings.save(&self.locations.settings)?;
        *self.settings.lock().expect("settings lock") = settings.clone();
        self.follow_model_setting()?;
        Ok(settings)
    }

    /// When the settings' model is not the one loaded, loads it and indexes
    /// every repository again with it (each job moves the index over).
    fn follow_model_setting(self: &Arc<Self>) -> Result<(), Problem> {
        let model = self.settings().model;
        let wanted = quarry_models::resolve_model(&model).map_err(Problem::from)?;
        if wanted.id == self.model.state().model {
            return Ok(());
        }
        tracing::info!("the model changed to {}: switching the index", wanted.id);
        self.model.reset(wanted.id);
        model::start_loading(self);
        let ws = Arc::clone(self);
        tokio::spawn(async move {
            let Some(store) = ws.open_store().await else {
                return;
            };
            match store.roots().await {
                Ok(roots) => {
                    for root in roots {
                        jobs::enqueue(&ws, &root);
                    }
                }
                Err(e) => tracing::warn!("cannot list the roots to switch: {e}"),
            }
        });
        Ok(())
    }

    /// The model's state.
    pub fn model_state(&self) -> ModelState {
        self.model.state()
    }

    /// Indexing options from the settings, with the embedding cache of the
    /// loaded model.
    async fn index_options(
        &self,
        embedder: &quarry_models::Embedder,
    ) -> quarry_index::IndexOptions {
        let cache = {
            let mut slot = self.embedding_cache.lock().await;
            match slot.as_ref() {
                Some((model, cache)) if model == embedder.model_id() => cache.clone(),
                _ => {
                    let cache = self
                        .locations
                        .open_embedding_cache(embedder.model_id(), embedder.dim())
                        .await;
                    *slot = Some((embedder.model_id().to_string(), cache.clone()));
                    cache
                }
            }
        };
        quarry_index::IndexOptions {
            embedding_cache: cache,
            ..self.settings().index_options()
        }
    }

    async fn open_store(&self) -> Option<Arc<Store>> {
        self.store.lock().await.clone()
    }

    /// Every indexed or queued repository with its counts and job state.
    pub async fn repositories(&self) -> Result<Vec<Repository>, Problem> {
        let mut repos = Vec::new();
        if let Some(store) = self.open_store().await {
            let status = store.status().await?;
            for root in status.roots {
                repos.push(Repository {
                    name: repo_name(&root.root),
                    files: root.files,
                    chunks: root.chunks,
                    pending: root.pending,
                    last_indexed: root.last_indexed,
                    state: RepoState::UpToDate,
                    progress: None,
                    error: None,
                    root: root.root,
                });
            }
        }
        self.jobs.overlay(&mut repos);
        repos.sort_by(|a, b| a.name.cmp(&b.name).then(a.root.cmp(&b.root)));
        Ok(repos)
    }

    /// Languages the language filter offers: every language Quarry chunks,
    /// plus `text` (an index does not record which of them occur).
    pub fn languages(&self) -> Vec<String> {
        quarry_chunk::languages()
            .iter()
            .map(|l| l.to_string())
            .chain(["text".to_string()])
            .collect()
    }

    /// Adds a folder and queues its indexing; returns its entry as queued.
    /// Adding a folder that is already indexed re-indexes it (only what
    /// changed is done again).
    pub fn add_repository(self: &Arc<Self>, path: &str) -> Result<Repository, Problem> {
        let path = path.trim();
        if path.is_empty() {
            return Err(Problem::new(
                "No folder given.",
                "Choose a folder to index.",
            ));
        }
        let root = quarry_index::canonical_root(Path::new(path)).map_err(Problem::from)?;
        std::fs::read_dir(&root).map_err(|e| {
            Problem::new(
                format!("Cannot read the folder {}: {e}", root.display()),
                problem::io_hint(&e),
            )
        })?;
        let root = root.to_string_lossy().into_owned();
        self.reindex(&root);
        Ok(Repository {
            name: repo_name(&root),
            files: 0,
            chunks: 0,
            pending: 0,
            last_indexed: None,
            state: RepoState::Queued,
            progress: None,
            error: None,
            root,
        })
    }

    /// Queues an indexing run of `root` (no-op while one is queued or running).
    pub fn reindex(self: &Arc<Self>, root: &str) {
        if jobs::enqueue(self, root) {
            self.emit(Event::RepositoriesChanged);
        }
    }

    /// Stops `root`'s indexing; what was written stays and is searchable.
    pub fn cancel(&self, root: &str) {
        self.jobs.cancel(root);
    }

    /// (Re)starts the background watcher over every indexed root, so files
    /// saved while the window is open are searchable within a second or
    /// two; each batch refreshes the repository list. Called when the model
    /// is ready and whenever the set of roots may have changed.
    pub(crate) async fn restart_watcher(self: &Arc<Self>) {
        if let Some(stop) = self.watcher.lock().expect("watcher").take() {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let (Some(store), Ok(embedder)) = (self.open_store().await, self.model.ready()) else {
            return;
        };
        let roots: Vec<PathBuf> = match store.roots().await {
            Ok(roots) => roots.into_iter().map(PathBuf::from).collect(),
            Err(e) => {
                tracing::warn!("cannot list roots to watch: {e}");
                return;
            }
        };
        let roots: Vec<PathBuf> = roots.into_iter().filter(|r| r.is_dir()).collect();
        if roots.is_empty() {
            return;
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        *self.watcher.lock().expect("watcher") = Some(Arc::clone(&stop));
        let options = watch::WatchOptions {
            index: self.index_options(&embedder).await,
            ..watch::WatchOptions::default()
        };
        let ws = Arc::clone(self);
        tokio::spawn(async move {
            let sink = Arc::clone(&ws.sink);
            let mut on_event = |event: watch::WatchEvent| match event {
                watch::WatchEvent::Batch(_) => sink(Event::RepositoriesChanged),
                watch::WatchEvent::Failed { root, problem } => {
                    tracing::warn!(root, "watching: {problem}")
                }
                _ => {}
            };
            if let Err(problem) =
                watch::watch(&store, &embedder, &roots, &options, stop, &mut on_event).await
            {
                tracing::warn!("the background watcher stopped: {problem}");
            }
        });
    }

    /// Removes a repository from the index (its rows, not its files),
    /// stopping its indexing first.
    pub async fn remove_repository(self: &Arc<Self>, root: &str) -> Result<(), Problem> {
        self.jobs.cancel(root);
        self.jobs.wait_idle(root).await;
        self.jobs.forget(root);
        if let Some(store) = self.open_store().await {
            let _lock = self.lock_for_writing(None).await?;
            store.remove_root(root).await?;
            store.optimize().await?;
        }
        self.restart_watcher().await;
        self.emit(Event::RepositoriesChanged);
        Ok(())
    }

    /// Takes the index's writer lock without blocking the runtime; while
    /// another process holds it, `root`'s progress says so.
    async fn lock_for_writing(
        self: &Arc<Self>,
        root: Option<&str>,
    ) -> Result<quarry_store::WriterLock, Problem> {
        let db = self.locations.db.clone();
        std::fs::create_dir_all(&db).map_err(|e| {
            Problem::new(
                format!("Cannot create the index folder {}: {e}", db.display()),
                problem::io_hint(&e),
            )
        })?;
        let me = Arc::clone(self);
        let root = root.map(str::to_string);
        tokio::task::spawn_blocking(move || {
            quarry_store::WriterLock::acquire(&db, || {
                if let Some(root) = &root {
                    me.jobs.set_phase(&me, root, "waiting");
                }
            })
        })
        .await
        .map_err(|e| Problem::bare(format!("The lock task failed: {e}")))?
        .map_err(Problem::from)
    }

    /// The reranker the settings ask for (`None`: none), loaded once and
    /// again only when the settings change.
    async fn reranker(&self) -> Result<Option<Arc<rerank::LoadedReranker>>, Problem> {
        let settings = self.settings();
        let wanted = (settings.rerank.clone(), settings.rerank_depth);
        let mut slot = self.reranker.lock().await;
        if let Some((loaded_for, loaded)) = slot.as_ref() {
            if *loaded_for == wanted {
                return Ok(loaded.clone());
            }
        }
        let home = self.locations.home.clone();
        let device = settings.device_preference();
        let (choice, depth) = wanted.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            rerank::load(&home, &choice, None, depth, device, &mut |_| {})
        })
        .await
        .map_err(|e| Problem::bare(format!("Loading the reranker failed: {e}")))??
        .map(Arc::new);
        *slot = Some((wanted, loaded.clone()));
        Ok(loaded)
    }

    /// Runs a search and prepares its hits for display.
    pub async fn search(&self, query: SearchQuery) -> Result<SearchView, Problem> {
        let started = std::time::Instant::now();
        if query.query.trim().is_empty() {
            return Err(quarry_search::SearchError::EmptyQuery.into());
        }
        let store = self.open_store().await.ok_or_else(|| {
            Problem::new("Nothing is indexed yet.", "Add a repository to search it.")
        })?;
        let embedder = self.model.ready()?;
        if store.meta().model != embedder.model_id() {
            return Err(Problem::new(
                format!(
                    "The index is moving to the model {}; search works again when that is done.",
                    embedder.model_id()
                ),
                "Its progress shows in the repository list.",
            ));
        }
        let request = quarry_search::SearchRequest {
            query: query.query,
            mode: query.mode,
            top_k: query.top_k.clamp(1, MAX_TOP_K),
            languages: query.languages,
            path_globs: query.path_globs,
            repos: query.repos,
            weights: None,
            tuning: self.settings().search,
        };
        let reranker = self.reranker().await?;
        let stage = reranker.as_ref().map(|r| quarry_search::RerankStage {
            reranker: r.reranker.as_ref(),
            depth: r.depth,
        });
        let outcome = quarry_search::search_reranked(&store, &embedder, &request, stage).await?;
        let mut terms: Vec<String> = Vec::new();
        for term in outcome
            .analysis
            .identifiers
            .iter()
            .chain(&outcome.analysis.terms)
        {
            if term.chars().count() >= 2 && !terms.iter().any(|t| t.eq_ignore_ascii_case(term)) {
                terms.push(term.clone());
            }
        }
        let hits = outcome
            .hits
            .into_iter()
            .enumerate()
            .map(|(i, hit)| HitView {
                rank: i + 1,
                repo: repo_name(&hit.root),
                lines: quarry_chunk::highlight(&hit.language, &hit.text),
                hit,
            })
            .collect();
        Ok(SearchView {
            mode: outcome.mode,
            hits,
            terms,
            pending_chunks: outcome.pending_chunks,
            took_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    }

    /// Checks that `root` is a repository of this workspace and resolves
    /// `path` inside it.
    async fn indexed_file(&self, root: &str, path: &str) -> Result<PathBuf, Problem> {
        let known = match self.open_store().await {
            Some(store) => store.roots().await?.iter().any(|r| r == root),
            None => false,
        };
        if !known {
            return Err(Problem::new(
                format!("{root} is not an indexed repository."),
                "Only files of indexed repositories can be opened.",
            ));
        }
        files::resolve_inside(root, path)
    }

    /// Lines of an indexed file around a hit.
    pub async fn preview(
        &self,
        root: &str,
        path: &str,
        start_line: u32,
        end_line: u32,
        context: u32,
    ) -> Result<Preview, Problem> {
        let file = self.indexed_file(root, path).await?;
        tokio::task::spawn_blocking(move || files::preview(&file, start_line, end_line, context))
            .await
            .map_err(|e| Problem::bare(format!("The preview task failed: {e}")))?
    }

    /// Opens an indexed file at `line` in the configured editor.
    pub async fn open_in_editor(&self, root: &str, path: &str, line: u32) -> Result<(), Problem> {
        let file = self.indexed_file(root, path).await?;
        let template = self
            .settings()
            .editor
            .unwrap_or_else(editor::default_editor_command);
        editor::open_in_editor(&template, &file, line.max(1))
    }
}
