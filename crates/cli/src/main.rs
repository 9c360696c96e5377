//! `quarry`: index local repositories and search them by behaviour, by
//! example code, or with a pasted issue.

mod output;

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use quarry_index::{IndexOptions, IndexProgress, IndexReport};
use quarry_models::{
    ensure_model, ensure_runtime, find_model, find_runtime, is_installed, known_models, model_dir,
    model_dtype, quarry_home, resolve_model, runtime_spec, runtime_version, select_device,
    Embedder, Engine, FetchEvent, ModelSpec, DEFAULT_MODEL,
};
use quarry_search::{Mode, SearchError, SearchRequest};
use quarry_store::{CacheStats, EmbeddingCache, IndexMeta, Store, StoreError, WriterLock};
use quarry_workspace::watch::WatchEvent;
use quarry_workspace::{engine_from_env, Locations, Problem, Settings};

/// Local code search: describe behaviour, paste code, or paste an issue.
#[derive(Parser, Debug)]
#[command(name = "quarry", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Index (or re-index) directories; unchanged files are skipped.
    Index(IndexArgs),
    /// Search the index.
    Search(SearchArgs),
    /// Index directories, then keep the index up to date as files change
    /// (until interrupted).
    Watch(WatchArgs),
    /// Remove directories from the index (deletes their rows, not their files).
    Remove(RemoveArgs),
    /// Show what is indexed.
    Status(StatusArgs),
    /// List or fetch embedding models.
    Models(ModelsArgs),
}

#[derive(Args, Debug)]
struct DbArg {
    /// Index directory [default: $QUARRY_DB, else <data dir>/quarry/index].
    #[arg(long, value_name = "DIR", global = true)]
    db: Option<PathBuf>,
}

impl DbArg {
    fn resolve(&self) -> PathBuf {
        self.db.clone().unwrap_or_else(|| Locations::from_env().db)
    }
}

#[derive(Args, Debug)]
struct IndexArgs {
    /// Directories to index.
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    #[command(flatten)]
    db: DbArg,
    #[command(flatten)]
    walk: WalkArgs,
    /// Delete the index first and build it again from scratch.
    #[arg(long)]
    rebuild: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Only make the files searchable by text (seconds even for a large
    /// tree); a later `quarry index` adds the vectors for search by meaning.
    #[arg(long)]
    text_only: bool,
}

/// What to leave out of a walk, on top of the settings.
#[derive(Args, Debug, Clone)]
struct WalkArgs {
    /// Skip files larger than this many bytes [default: the settings' max_file_size, else 1 MB].
    #[arg(long, value_name = "BYTES")]
    max_file_size: Option<u64>,
    /// Extra paths to leave out (gitignore glob syntax), besides the
    /// settings' `exclude`; repeatable.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
}

impl WalkArgs {
    /// Indexing options: these flags over the settings.
    fn options(&self, settings: &Settings) -> IndexOptions {
        let defaults = settings.index_options();
        IndexOptions {
            max_file_size: self.max_file_size.unwrap_or(defaults.max_file_size),
            exclude: defaults
                .exclude
                .iter()
                .chain(&self.exclude)
                .cloned()
                .collect(),
            ..defaults
        }
    }
}

#[derive(Args, Debug)]
struct WatchArgs {
    /// Directories to index and watch.
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    #[command(flatten)]
    db: DbArg,
    #[command(flatten)]
    walk: WalkArgs,
    /// Print one JSON object per line for each event.
    #[arg(long)]
    json: bool,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum ModeArg {
    Auto,
    Text,
    Code,
    Issue,
}

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Auto => Mode::Auto,
            ModeArg::Text => Mode::Text,
            ModeArg::Code => Mode::Code,
            ModeArg::Issue => Mode::Issue,
        }
    }
}

#[derive(Args, Debug)]
struct SearchArgs {
    /// What to look for: words, a code snippet, or an issue's text.
    #[arg(
        value_name = "QUERY",
        conflicts_with = "query_file",
        required_unless_present = "query_file"
    )]
    query: Option<String>,
    /// Read the query from a file, or `-` for standard input.
    #[arg(long, value_name = "FILE")]
    query_file: Option<PathBuf>,
    #[command(flatten)]
    db: DbArg,
    /// Number of results.
    #[arg(long, short = 'k', default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    top_k: u16,
    /// How to read the query.
    #[arg(long, value_enum, default_value = "auto")]
    mode: ModeArg,
    /// Only these languages; repeatable.
    #[arg(long = "lang", value_name = "LANG")]
    languages: Vec<String>,
    /// Only paths matching this glob (relative to the repository); repeatable.
    #[arg(long = "path", value_name = "GLOB")]
    paths: Vec<String>,
    /// Only this repository (its path or directory name); repeatable.
    #[arg(long = "repo", value_name = "REPO")]
    repos: Vec<String>,
    /// Print hits as a JSON array.
    #[arg(long)]
    json: bool,
    /// Also print where the time went, per stage, to standard error (as a
    /// JSON object with --json).
    #[arg(long)]
    timings: bool,
    /// Second stage: `none`, `default` (the settings' choice, else this
    /// machine's), a known reranker (`quarry models` lists them) or a model
    /// directory.
    #[arg(long, value_name = "MODEL")]
    rerank: Option<String>,
    /// First-stage hits the reranker reads (default 100 on a GPU, 30 on the CPU).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1000))]
    rerank_depth: Option<u16>,
    /// What a reranker directory holds when its files do not tell:
    /// cross-encoder, pointwise, generative or listwise.
    #[arg(long, value_name = "KIND")]
    rerank_kind: Option<quarry_models::rerank::RerankerKind>,
}

#[derive(Args, Debug)]
struct RemoveArgs {
    /// Indexed directories to remove (as indexed, or as `quarry status` lists them).
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    #[command(flatten)]
    db: DbArg,
}

#[derive(Args, Debug)]
struct StatusArgs {
    #[command(flatten)]
    db: DbArg,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct ModelsArgs {
    #[command(subcommand)]
    action: Option<ModelsAction>,
}

#[derive(Subcommand, Debug)]
enum ModelsAction {
    /// List known models and whether they are installed (the default).
    List,
    /// Download a model (default: the default model) and the OpenVINO runtime.
    Fetch {
        /// Model id.
        model: Option<String>,
        /// Do not install the OpenVINO runtime (candle, built in, is used then).
        #[arg(long)]
        no_runtime: bool,
    },
}

/// An error that is the user's to fix in how they called us: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn main() -> ExitCode {
    quarry_workspace::init_logging();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            if err.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Index(args) => index(args).await,
        Command::Search(args) => search(args).await,
        Command::Remove(args) => remove(args).await,
        Command::Status(args) => status(args).await,
        Command::Models(args) => models(args),
        Command::Watch(args) => watch(args).await,
    }
}

/// The settings shared with the desktop app.
fn settings() -> Result<Settings> {
    Settings::load(&Settings::path()).map_err(|p| UsageError(explain(p)).into())
}

/// A problem as the CLI prints it: the message, then what to do.
fn explain(problem: Problem) -> String {
    match problem.hint {
        Some(hint) => format!("{}\n{hint}", problem.message),
        None => problem.message,
    }
}

fn load_embedder(spec: &'static ModelSpec, settings: &Settings) -> Result<Embedder> {
    engine_choice()?; // a bad $QUARRY_ENGINE is the caller's to fix: exit code 2
    let bar = ProgressBar::hidden();
    let embedder = quarry_workspace::load_embedder(
        &quarry_home(),
        spec,
        settings.device_preference(),
        &mut |event| fetch_progress(&bar, spec.id, event),
    );
    bar.finish_and_clear();
    embedder
        .map_err(|p| anyhow::anyhow!(explain(p)))
        .with_context(|| format!("loading model {}", spec.id))
}

/// The second stage `--rerank` (else the settings) asks for, loaded;
/// `None` for none.
fn load_reranker(
    args: &SearchArgs,
    settings: &Settings,
) -> Result<Option<quarry_workspace::rerank::LoadedReranker>> {
    let choice = match args.rerank.as_deref() {
        Some("default") | None => settings.rerank.as_str(),
        Some(choice) => choice,
    };
    let depth = args.rerank_depth.map(usize::from).or(settings.rerank_depth);
    let bar = ProgressBar::hidden();
    let loaded = quarry_workspace::rerank::load(
        &quarry_home(),
        choice,
        args.rerank_kind,
        depth,
        settings.device_preference(),
        &mut |event| fetch_progress(&bar, choice, event),
    );
    bar.finish_and_clear();
    loaded.map_err(|p| UsageError(explain(p)).into())
}

/// The inference engine from `$QUARRY_ENGINE` (auto, candle or openvino; default auto).
fn engine_choice() -> Result<Engine> {
    engine_from_env().map_err(|p| UsageError(p.message).into())
}

/// Shows a fetch of `what` (a model id, "the OpenVINO runtime") on a progress bar.
fn fetch_progress(bar: &ProgressBar, what: &str, event: FetchEvent) {
    match event {
        FetchEvent::Started { source } => {
            if std::io::stderr().is_terminal() {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                )
                .expect("template")
                .progress_chars("=> "),
            );
            bar.set_message(format!("fetching {what} from {source}"));
            eprintln!("Fetching {what} from {source} (first use only)");
        }
        FetchEvent::Progress { done, total } => {
            if let Some(total) = total {
                bar.set_length(total);
            }
            bar.set_position(done);
        }
        FetchEvent::Verifying => bar.set_message("verifying sha256"),
        FetchEvent::Finished { dir } => {
            bar.finish_and_clear();
            eprintln!("Installed {what} in {}", dir.display());
        }
    }
}

/// Takes the index's write lock, saying so when another process holds it.
fn lock_for_writing(db: &Path) -> Result<WriterLock> {
    WriterLock::acquire(db, || {
        eprintln!(
            "waiting for another quarry process that is writing to {} ...",
            db.display()
        )
    })
    .with_context(|| format!("locking the index at {}", db.display()))
}

async fn index(args: IndexArgs) -> Result<()> {
    let db = args.db.resolve();
    let reports = index_dirs(&args).await?.reports;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&index_summary(&reports, &db))?
        );
    } else {
        println!("Index: {}", db.display());
    }
    Ok(())
}

/// What [`index_dirs`] leaves open for a watcher to go on with.
struct Indexed {
    reports: Vec<IndexReport>,
    store: Store,
    embedder: Embedder,
    options: IndexOptions,
}

/// Indexes `args.dirs` (printing each report unless `--json`) and returns
/// the reports with the open index, the loaded model and the options used.
async fn index_dirs(args: &IndexArgs) -> Result<Indexed> {
    let db = args.db.resolve();
    for dir in &args.dirs {
        if !dir.is_dir() {
            return Err(UsageError(format!("{} is not a directory", dir.display())).into());
        }
    }
    let settings = settings()?;
    let spec = resolve_model(&settings.model)
        .map_err(|e| UsageError(format!("the settings' model `{}`: {e}", settings.model)))?;
    let _writing = lock_for_writing(&db)?;
    let locations = Locations::from_env();
    if args.rebuild {
        keep_vectors_before_rebuild(&db, &locations).await;
        Store::destroy(&db).with_context(|| format!("removing the index at {}", db.display()))?;
    }
    let meta = IndexMeta::new(spec.id, spec.dim);
    let store = match Store::open(&db).await {
        // The configured model changed: the index follows, keeping its
        // chunks and the old vectors (in the embedding cache).
        Ok(old) if old.check_model(&meta).is_err() => {
            let from = old.meta().clone();
            eprintln!(
                "The index was embedded with {} ({}-d); the settings now ask for {} ({}-d). \
                 Switching it: the old vectors are kept in the embedding cache (switching \
                 back costs nothing), files are chunked again only where the new model's \
                 window cuts them differently, and the chunks are embedded again, from the \
                 cache where it has them.",
                from.model, from.dim, spec.id, spec.dim
            );
            let switched = locations.switch_index_model(&old, &meta).await;
            drop(old);
            switched.map_err(store_error)?
        }
        Ok(store) => store,
        Err(_) => Store::open_or_create(&db, &meta)
            .await
            .map_err(store_error)?,
    };
    let embedder = load_embedder(spec, &settings)?;
    let options = IndexOptions {
        text_only: args.text_only,
        embedding_cache: locations.open_embedding_cache(spec.id, spec.dim).await,
        ..args.walk.options(&settings)
    };
    let mut reports = Vec::new();
    for dir in &args.dirs {
        let bar = index_bar(args.json);
        let mut on_progress = |event: IndexProgress| match event {
            IndexProgress::Scanned {
                files,
                changed,
                bytes,
            } => {
                bar.set_length(bytes);
                bar.set_message(format!("{files} files, {changed} to index"));
            }
            IndexProgress::Chunked {
                files_done,
                files_total,
                bytes_done,
                ..
            } => {
                bar.set_position(bytes_done);
                bar.set_message(format!(
                    "reading and chunking: {files_done}/{files_total} files"
                ));
            }
            IndexProgress::Searchable { chunks_pending } => {
                if chunks_pending > 0 {
                    // From here on the bar counts chunks to embed.
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{spinner} [{bar:30}] {pos}/{len}  {msg}  ETA {eta}",
                        )
                        .expect("template")
                        .progress_chars("=> "),
                    );
                    bar.set_length(chunks_pending as u64);
                    bar.set_position(0);
                    bar.reset_eta();
                    if !args.json && !args.text_only {
                        bar.suspend(|| {
                            eprintln!(
                                "{}: searchable by text now; embedding {chunks_pending} chunks for search by meaning",
                                dir.display()
                            )
                        });
                    }
                }
            }
            IndexProgress::Embedded {
                chunks_done,
                chunks_total,
            } => {
                bar.set_position(chunks_done as u64);
                let secs = bar.elapsed().as_secs_f64().max(0.001);
                bar.set_message(format!(
                    "embedding: {chunks_done}/{chunks_total} chunks, {:.1} chunks/s",
                    chunks_done as f64 / secs
                ));
            }
            IndexProgress::Optimizing => bar.set_message("optimising the index"),
        };
        let report = quarry_index::index_root(&store, &embedder, dir, &options, &mut on_progress)
            .await
            .with_context(|| format!("indexing {}", dir.display()))?;
        bar.finish_and_clear();
        if !args.json {
            output::print_index_report(&report);
        }
        reports.push(report);
    }
    Ok(Indexed {
        reports,
        store,
        embedder,
        options,
    })
}

/// Copies the vectors of the index about to be rebuilt into the embedding
/// cache of the model that made them, so the rebuild (or a later switch
/// back to that model) embeds nothing it had. An index that does not open
/// has nothing to keep.
async fn keep_vectors_before_rebuild(db: &Path, locations: &Locations) {
    if let Ok(old) = Store::open(db).await {
        locations.keep_vectors(&old).await;
    }
}

async fn watch(args: WatchArgs) -> Result<()> {
    let index_args = IndexArgs {
        dirs: args.dirs,
        db: args.db,
        walk: args.walk,
        rebuild: false,
        json: args.json,
        text_only: false,
    };
    // Catch up with what changed while nothing was watching.
    let Indexed {
        reports,
        store,
        embedder,
        options,
    } = index_dirs(&index_args).await?;
    let options = quarry_workspace::watch::WatchOptions {
        index: options,
        ..Default::default()
    };
    let roots: Vec<PathBuf> = reports.iter().map(|r| PathBuf::from(&r.root)).collect();
    if args.json {
        let summary = index_summary(&reports, &index_args.db.resolve());
        println!(
            "{}",
            serde_json::json!({ "event": "indexed", "summary": summary })
        );
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let json = args.json;
    let mut on_event = |event: WatchEvent| output::print_watch_event(&event, json);
    quarry_workspace::watch::watch(&store, &embedder, &roots, &options, stop, &mut on_event)
        .await
        .map_err(|p| anyhow::anyhow!(explain(p)))
}

fn index_bar(json: bool) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{bar:30}] {bytes}/{total_bytes}  {msg}  ETA {eta}",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn index_summary(reports: &[IndexReport], db: &Path) -> serde_json::Value {
    let sum = |f: fn(&IndexReport) -> usize| reports.iter().map(f).sum::<usize>();
    serde_json::json!({
        "db": db,
        "files_scanned": sum(|r| r.files_scanned),
        "files_changed": sum(|r| r.files_changed),
        "files_deleted": sum(|r| r.files_deleted),
        "files_skipped": sum(|r| r.skipped.len()),
        "chunks_total": sum(|r| r.chunks_total),
        "chunks_embedded": sum(|r| r.chunks_embedded),
        "chunks_reused": sum(|r| r.chunks_reused),
        "chunks_from_cache": sum(|r| r.chunks_from_cache),
        "chunks_pending": sum(|r| r.chunks_pending),
        "searchable_seconds": reports.iter().map(|r| r.searchable_seconds).sum::<f64>(),
        "seconds": reports.iter().map(|r| r.seconds).sum::<f64>(),
        "roots": reports,
    })
}

fn store_error(err: StoreError) -> anyhow::Error {
    match err {
        StoreError::NotAnIndex { .. } | StoreError::Missing { .. } => {
            UsageError(err.to_string()).into()
        }
        other => other.into(),
    }
}

fn read_query(args: &SearchArgs) -> Result<String> {
    match (&args.query, &args.query_file) {
        (Some(q), _) => Ok(q.clone()),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the query from standard input")?;
            Ok(text)
        }
        (None, Some(path)) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("reading the query file {}", path.display()))?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
        (None, None) => Err(UsageError("give a QUERY or --query-file".into()).into()),
    }
}

async fn search(args: SearchArgs) -> Result<()> {
    let query = read_query(&args)?;
    if query.trim().is_empty() {
        return Err(UsageError(SearchError::EmptyQuery.to_string()).into());
    }
    for lang in &args.languages {
        if !quarry_chunk::languages().contains(&lang.as_str()) && lang != "text" {
            return Err(UsageError(format!(
                "unknown language `{lang}`; known: {}, text",
                quarry_chunk::languages().join(", ")
            ))
            .into());
        }
    }
    let db = args.db.resolve();
    let opening = std::time::Instant::now();
    let store = Store::open(&db).await.map_err(store_error)?;
    let model_id = store.meta().model.clone();
    let spec = resolve_model(&model_id).map_err(|e| {
        anyhow::anyhow!(
            "the index at {} was built with model `{model_id}`, which cannot be used here ({e}); rebuild it with `quarry index --rebuild DIR`",
            db.display()
        )
    })?;
    store
        .check_model(&IndexMeta::new(spec.id, spec.dim))
        .map_err(store_error)?;
    let settings = settings()?;
    let embedder = load_embedder(spec, &settings)?;
    let reranker = load_reranker(&args, &settings)?;
    let startup_ms = opening.elapsed().as_secs_f64() * 1000.0;
    let request = SearchRequest {
        query,
        mode: args.mode.into(),
        top_k: args.top_k as usize,
        languages: args.languages.clone(),
        path_globs: args.paths.clone(),
        repos: args.repos.clone(),
        weights: None,
        tuning: settings.search,
    };
    let stage = reranker.as_ref().map(|r| quarry_search::RerankStage {
        reranker: r.reranker.as_ref(),
        depth: r.depth,
    });
    let outcome = match quarry_search::search_reranked(&store, &embedder, &request, stage).await {
        Ok(outcome) => outcome,
        Err(e @ SearchError::Store(StoreError::Lance { .. })) => {
            return Err(anyhow::Error::new(e).context(format!(
                "the index at {} could not be read; if it is damaged, rebuild it with `quarry index --rebuild DIR`",
                db.display()
            )))
        }
        Err(
            e @ (SearchError::EmptyQuery
            | SearchError::BadGlob { .. }
            | SearchError::UnknownRepo(_)),
        ) => return Err(UsageError(e.to_string()).into()),
        Err(e) => return Err(e.into()),
    };
    if outcome.pending_chunks > 0 {
        eprintln!(
            "note: {} chunks are not embedded yet (indexing is running or was interrupted; \
             `quarry index` finishes it): they are found by their words, not yet by meaning",
            outcome.pending_chunks
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome.hits)?);
    } else {
        output::print_hits(&outcome);
    }
    if args.timings {
        let t = &outcome.timings;
        if args.json {
            let value = serde_json::json!({ "startup_ms": startup_ms, "search": t });
            eprintln!("{}", serde_json::to_string(&value)?);
        } else {
            eprintln!(
                "timings: startup (open index, load models) {startup_ms:.1} ms; search {:.1} ms: \
                 embed {:.1}, vector {:.1}, full-text {:.1}, symbols {:.1}, pending count {:.1}, fusion {:.1}, \
                 rerank {:.1} ({} hits)",
                t.total_ms, t.embed_ms, t.dense_ms, t.lexical_ms, t.symbols_ms, t.pending_ms, t.fuse_ms,
                t.rerank_ms, t.reranked
            );
        }
    }
    Ok(())
}

async fn remove(args: RemoveArgs) -> Result<()> {
    let db = args.db.resolve();
    let store = Store::open(&db).await.map_err(store_error)?;
    let _writing = lock_for_writing(&db)?;
    let roots = store.roots().await?;
    for dir in &args.dirs {
        let root = quarry_index::canonical_root(dir)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| dir.to_string_lossy().into_owned());
        if !roots.contains(&root) {
            return Err(UsageError(format!(
                "{} is not indexed in {}; `quarry status` lists what is",
                dir.display(),
                db.display()
            ))
            .into());
        }
        store.remove_root(&root).await?;
        println!("Removed {root}");
    }
    store.optimize().await?;
    Ok(())
}

async fn status(args: StatusArgs) -> Result<()> {
    let db = args.db.resolve();
    let store = Store::open(&db).await.map_err(store_error)?;
    let status = store.status().await?;
    let cache = embedding_cache_stats(&status.meta).await;
    if args.json {
        let value = serde_json::json!({
            "db": status.db,
            "roots": status.roots,
            "files": status.files,
            "chunks": status.chunks,
            "pending": status.pending,
            "vectors": status.vectors,
            "model": status.meta.model,
            "dim": status.meta.dim,
            "schema_version": status.meta.schema_version,
            "bytes": status.bytes,
            "disk": store.disk_usage(),
            "versions": status.versions,
            "embedding_cache": cache.as_ref().map(|(dir, stats)| serde_json::json!({
                "dir": dir, "entries": stats.entries, "bytes": stats.bytes,
            })),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        output::print_status(&status);
        if let Some((dir, stats)) = cache {
            println!(
                "Embedding cache: {} vectors, {:.1} MiB at {}",
                stats.entries,
                stats.bytes as f64 / (1024.0 * 1024.0),
                dir.display()
            );
        }
    }
    Ok(())
}

/// Where the embedding cache of the index's model is and what it holds,
/// when it exists (status never creates it).
async fn embedding_cache_stats(meta: &IndexMeta) -> Option<(PathBuf, CacheStats)> {
    let root = Locations::from_env().embedding_cache?;
    let dir = EmbeddingCache::dir_for(&root, &meta.model, meta.dim);
    if !dir.is_dir() {
        return None;
    }
    let cache = EmbeddingCache::open(&root, &meta.model, meta.dim)
        .await
        .ok()?;
    Some((dir, cache.stats().await.ok()?))
}

fn models(args: ModelsArgs) -> Result<()> {
    let home = quarry_home();
    match args.action.unwrap_or(ModelsAction::List) {
        ModelsAction::List => {
            let (gpu_or_cpu, device) = select_device(settings()?.device_preference());
            // The precision candle runs encoders in there (bf16 on capable GPUs).
            let device = format!("{device}, {}", model_dtype(&gpu_or_cpu).as_str());
            let engine = match (engine_choice()?, find_runtime(&home)) {
                (Engine::Candle, _) => format!("candle {device}"),
                (_, Some(lib)) => match runtime_version(&lib) {
                    Ok(v) => format!(
                        "openvino {} cpu ({})",
                        v.split('-').next().unwrap_or_default(),
                        lib.parent().unwrap_or(&lib).display()
                    ),
                    Err(e) => format!("candle {device} (the OpenVINO runtime does not load: {e})"),
                },
                (_, None) => format!(
                    "candle {device} (install the faster OpenVINO runtime with `quarry models fetch`)"
                ),
            };
            println!("Engine: {engine}");
            println!("Models in {}", home.join("models").display());
            for spec in known_models() {
                let installed = is_installed(&home, spec);
                println!(
                    "  {}{}  {}-d, {} tokens  {}",
                    spec.id,
                    if spec.id == DEFAULT_MODEL.id {
                        " (default)"
                    } else {
                        ""
                    },
                    spec.dim,
                    spec.max_tokens,
                    if installed {
                        format!("installed at {}", model_dir(&home, spec).display())
                    } else {
                        "not installed (`quarry models fetch`)".to_string()
                    }
                );
            }
            let settings = settings()?;
            let machine = quarry_workspace::rerank::machine_default(settings.device_preference());
            println!(
                "Rerankers (`quarry search --rerank ID|DIR|none`; on {device}; default here: {}):",
                if settings.rerank == "default" {
                    machine
                } else {
                    settings.rerank.as_str()
                }
            );
            for known in quarry_models::rerank::known_rerankers() {
                let spec = known.files();
                let dir = model_dir(&home, &spec);
                println!(
                    "  {}  {:?}  {}",
                    known.id,
                    known.kind,
                    if dir.join("config.json").is_file() {
                        format!("installed at {}", dir.display())
                    } else {
                        "fetched on first use".to_string()
                    }
                );
            }
            Ok(())
        }
        ModelsAction::Fetch { model, no_runtime } => {
            let spec = match model {
                None => DEFAULT_MODEL,
                Some(id) => find_model(&id).ok_or_else(|| {
                    UsageError(format!(
                        "unknown model `{id}`; known: {}",
                        known_models()
                            .iter()
                            .map(|m| m.id)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?,
            };
            if is_installed(&home, spec) {
                println!(
                    "{} is already installed in {}",
                    spec.id,
                    model_dir(&home, spec).display()
                );
            } else {
                let bar = ProgressBar::hidden();
                let dir = ensure_model(&home, spec, &mut |event| {
                    fetch_progress(&bar, spec.id, event)
                })?;
                bar.finish_and_clear();
                println!("{} installed in {}", spec.id, dir.display());
            }
            if no_runtime || runtime_spec().is_none() {
                return Ok(());
            }
            if let Some(lib) = find_runtime(&home) {
                println!(
                    "OpenVINO runtime is installed in {}",
                    lib.parent().unwrap_or(&lib).display()
                );
                return Ok(());
            }
            let bar = ProgressBar::hidden();
            match ensure_runtime(&home, &mut |event| {
                fetch_progress(&bar, "the OpenVINO runtime", event)
            }) {
                Ok(lib) => {
                    bar.finish_and_clear();
                    println!(
                        "OpenVINO runtime installed in {}",
                        lib.parent().unwrap_or(&lib).display()
                    );
                }
                // Not fatal: candle runs the model, only slower.
                Err(e) => {
                    bar.finish_and_clear();
                    eprintln!("warning: {e}");
                }
            }
            Ok(())
        }
    }
}
