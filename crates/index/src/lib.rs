//! The indexing pipeline: walk a root, find what changed since the last
//! run, chunk the changed files with tree-sitter, embed the chunks and write
//! them to the store in a few large commits.

pub mod walk;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use quarry_chunk::{Chunk, ChunkConfig, TokenCounter};
use quarry_models::Embedder;
use quarry_store::{ChunkRow, EmbeddingCache, FileRow, Store, StoredChunk};
use xxhash_rust::xxh3::xxh3_128;

use walk::FoundFile;

/// Default largest file that is indexed: 1 MiB. Larger files are almost
/// always generated or data, and are reported as skipped.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1024 * 1024;
/// Files per pipeline batch: chunked together, embedded together, and
/// written in one set of commits.
const FILES_PER_BATCH: usize = 256;
/// Parsed files that may wait for the writer: parsing runs ahead of
/// writing by about two batches.
const PARSED_QUEUE: usize = 2 * FILES_PER_BATCH;
/// Chunks embedded between two progress events.
const EMBED_SLICE: usize = 64;
/// Vectors stored per commit: large enough to keep commits few, small enough
/// that dense search fills in steadily.
const EMBED_GROUP: usize = 512;
/// Embedded groups that may wait for the writer while the next is embedded.
const EMBEDDED_QUEUE: usize = 2;
/// How many bytes are checked for a NUL byte to call a file binary.
const BINARY_SNIFF_BYTES: usize = 8 * 1024;

/// Errors that stop an indexing run (a bad file never does: it is skipped).
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The root cannot be indexed.
    #[error("cannot index {}: {reason}", path.display())]
    Root { path: PathBuf, reason: String },
    /// An exclude glob is malformed.
    #[error("invalid exclude glob `{glob}`: {reason}")]
    BadGlob { glob: String, reason: String },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] quarry_store::StoreError),
    /// The embedding model failed.
    #[error(transparent)]
    Model(#[from] quarry_models::ModelError),
    /// [`IndexOptions::cancel`] was set; the next run finishes the work.
    #[error("indexing was cancelled; run it again to finish")]
    Cancelled,
}

/// Settings for an indexing run.
#[derive(Debug, Clone)]
pub struct IndexOptions {
    /// Files larger than this many bytes are skipped.
    pub max_file_size: u64,
    /// Extra globs (gitignore syntax) to leave out.
    pub exclude: Vec<String>,
    /// Walker threads.
    pub threads: usize,
    /// Chunking parameters.
    pub chunking: ChunkConfig,
    /// Stop after pass 1: everything searchable by text, vectors left for a
    /// later run (`quarry index --text-only`).
    pub text_only: bool,
    /// Set to stop a run between batches ([`IndexError::Cancelled`]). What was
    /// written stays consistent: the next run picks up where this one stopped.
    pub cancel: Option<Arc<AtomicBool>>,
    /// The machine's embedding cache for the index's model: texts it has
    /// are not embedded again, texts embedded are added to it. `None` (or a
    /// cache of another model) turns it off.
    pub embedding_cache: Option<Arc<EmbeddingCache>>,
}

impl IndexOptions {
    fn check_cancelled(&self) -> Result<(), IndexError> {
        match &self.cancel {
            Some(flag) if flag.load(Ordering::Relaxed) => Err(IndexError::Cancelled),
            _ => Ok(()),
        }
    }
}

impl Default for IndexOptions {
    fn default() -> Self {
        Self {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            exclude: Vec::new(),
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            chunking: ChunkConfig::default(),
            text_only: false,
            cancel: None,
            embedding_cache: None,
        }
    }
}

/// A file or directory left out of the index, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// Path relative to the root.
    pub path: String,
    /// Human-readable reason.
    pub reason: String,
}

/// What one indexing run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IndexReport {
    /// The root, as stored.
    pub root: String,
    /// Files the walk found (before change detection).
    pub files_scanned: usize,
    /// New or modified files that were (re)chunked and embedded.
    pub files_changed: usize,
    /// Files whose rows were removed because they are gone.
    pub files_deleted: usize,
    /// Files left out, with reasons.
    pub skipped: Vec<Skipped>,
    /// Files that were not valid UTF-8 and were indexed with replacement characters.
    pub lossy_files: Vec<String>,
    /// Chunks now in the index for this root.
    pub chunks_total: usize,
    /// Distinct texts embedded during this run.
    pub chunks_embedded: usize,
    /// Chunks of changed files that needed no embedding: their text already
    /// had a vector (an unchanged function of an edited file, an edit undone,
    /// the same file in another checkout) or repeats a text of this run.
    pub chunks_reused: usize,
    /// Of `chunks_reused`, the distinct texts whose vector came from the
    /// machine's embedding cache (computed for another index, or before a
    /// rebuild).
    pub chunks_from_cache: usize,
    /// Chunks of this root still without vectors after the run (`text_only`).
    pub chunks_pending: usize,
    /// Seconds until every chunk was searchable by text (end of pass 1).
    pub searchable_seconds: f64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Progress events, for a progress bar or the desktop app.
#[derive(Debug, Clone)]
pub enum IndexProgress {
    /// The walk finished: `files` candidates, `changed` of them (holding
    /// `bytes` bytes) need work.
    Scanned {
        files: usize,
        changed: usize,
        bytes: u64,
    },
    /// Pass 1: changed files read, chunked and written (text only).
    Chunked {
        files_done: usize,
        files_total: usize,
        bytes_done: u64,
        bytes_total: u64,
    },
    /// Pass 1 is done: every chunk is searchable by text; `chunks_pending`
    /// still need vectors for dense search.
    Searchable { chunks_pending: usize },
    /// Pass 2: vectors computed so far. Sent after every embedded slice, so a
    /// bar moves (and an ETA can be estimated) during a long embedding run.
    Embedded {
        chunks_done: usize,
        chunks_total: usize,
    },
    /// Compacting and (re)building the full-text index.
    Optimizing,
}

/// Counts tokens with the embedding model's own tokenizer, so chunks are
/// split exactly at the model window.
struct ModelTokens<'a>(&'a Embedder);

impl TokenCounter for ModelTokens<'_> {
    fn count(&self, text: &str) -> usize {
        self.0.count_tokens(text)
    }
}

/// Canonical form of a root as stored in the index.
pub fn canonical_root(dir: &Path) -> Result<PathBuf, IndexError> {
    let canonical = dir.canonicalize().map_err(|e| IndexError::Root {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    if !canonical.is_dir() {
        return Err(IndexError::Root {
            path: dir.to_path_buf(),
            reason: "not a directory".into(),
        });
    }
    Ok(canonical)
}

/// The state pass 1 builds up: what it found deleted, and the texts it
/// leaves for pass 2 to embed.
struct Pass1 {
    root: String,
    known: Arc<HashMap<String, FileRow>>,
    deleted: Vec<String>,
    /// Hashes of texts that have a vector, or will once pass 2 is done.
    embedded: HashSet<String>,
    /// `embedded` starts empty and each batch looks its texts up in the
    /// store (a small change in a large index); else it holds every vector
    /// hash of the index from the start (a full run).
    look_up_vectors: bool,
    /// (hash, text) of each distinct text to embed.
    to_embed: Vec<(String, String)>,
}

/// Indexes `dir` into `store`: only files that are new or changed since the
/// last run are chunked and embedded; rows of deleted files are removed.
///
/// Two passes, so a new repository is searchable within seconds, each a
/// pipeline of stages linked by bounded channels:
/// 1. parsing workers on every core read, hash and chunk the changed files
///    while this task writes their chunks a batch at a time, noting the
///    texts that have no vector yet (a text embedded before — anywhere in
///    the index — is never embedded again); then the full-text index is
///    made sure of: the text side is complete ([`IndexProgress::Searchable`]);
/// 2. an embedding thread computes the missing vectors a group at a time
///    while this task stores the previous group's; dense search sees each
///    group as soon as it lands, and the chunks' rows are never rewritten.
///
/// A run killed during pass 2 leaves chunks without vectors; the next run
/// finds their files and finishes them even though they did not change.
pub async fn index_root(
    store: &Store,
    embedder: &Embedder,
    dir: &Path,
    options: &IndexOptions,
    on_progress: &mut (dyn FnMut(IndexProgress) + Send),
) -> Result<IndexReport, IndexError> {
    let started = Instant::now();
    let root_path = canonical_root(dir)?;
    let root = root_path.to_string_lossy().into_owned();
    let walked = walk::walk(&root_path, options)?;
    let mut report = IndexReport {
        root: root.clone(),
        files_scanned: walked.files.len(),
        skipped: walked.skipped,
        ..IndexReport::default()
    };

    let known = Arc::new(store.files_under(&root).await?);
    let present: HashSet<&str> = walked.files.iter().map(|f| f.rel.as_str()).collect();
    let deleted: Vec<String> = known
        .keys()
        .filter(|p| !present.contains(p.as_str()))
        // A file skipped now (too large, unreadable) is no longer indexed.
        .cloned()
        .collect();
    apply_changes(
        store,
        embedder,
        walked.files,
        deleted,
        known,
        options,
        &mut report,
        (started, Scope::WholeRoot),
        on_progress,
    )
    .await?;
    options.check_cancelled()?;
    on_progress(IndexProgress::Optimizing);
    store.optimize().await?;
    maintain_cache(options).await;
    finish_report(store, &mut report, started, Scope::WholeRoot).await?;
    Ok(report)
}

/// Brings the index up to date with the paths under `dir` that changed
/// (created, modified, deleted or renamed files or directories, as a file
/// watcher reports them), without walking the rest of the tree: each path
/// is checked against the walk's rules on its own ([`walk::PathFilter`]),
/// a directory that appeared is walked, and a path that is gone (or now
/// ignored) removes what was indexed at or under it. The result is the
/// index a full [`index_root`] would give for those paths. Unlike
/// [`index_root`], it does not compact the store: a watcher calls
/// [`Store::optimize`] on its own schedule.
pub async fn index_paths(
    store: &Store,
    embedder: &Embedder,
    dir: &Path,
    paths: &[PathBuf],
    options: &IndexOptions,
    on_progress: &mut (dyn FnMut(IndexProgress) + Send),
) -> Result<IndexReport, IndexError> {
    let started = Instant::now();
    let root_path = canonical_root(dir)?;
    let root = root_path.to_string_lossy().into_owned();
    let mut report = IndexReport {
        root: root.clone(),
        ..IndexReport::default()
    };
    let known = Arc::new(store.files_under(&root).await?);
    let mut filter = walk::PathFilter::new(&root_path, options);
    let mut found: Vec<FoundFile> = Vec::new();
    let mut deleted: Vec<String> = Vec::new();
    let under = |rel: &str, keep: &HashSet<String>, deleted: &mut Vec<String>| {
        let prefix = format!("{rel}/");
        deleted.extend(
            known
                .keys()
                .filter(|k| (*k == rel || k.starts_with(&prefix)) && !keep.contains(*k))
                .cloned(),
        );
    };
    for path in paths {
        // Events name paths as the OS spells them; the root is canonical.
        let path = match path.strip_prefix(dir) {
            Ok(rest) if dir != root_path => root_path.join(rest),
            _ => path.clone(),
        };
        let rel = walk::relative(&root_path, &path);
        if !path.starts_with(&root_path) || rel == "." {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).ok();
        if !filter.includes(&path) || meta.is_none() {
            under(&rel, &HashSet::new(), &mut deleted);
            continue;
        }
        let walked = if meta.is_some_and(|m| m.is_dir()) {
            walk::walk_under(&root_path, &path, options)?
        } else {
            walk::walk_file(&root_path, &path, options)
        };
        let present: HashSet<String> = walked.files.iter().map(|f| f.rel.clone()).collect();
        under(&rel, &present, &mut deleted);
        found.extend(walked.files);
        report.skipped.extend(walked.skipped);
    }
    found.sort_by(|a, b| a.rel.cmp(&b.rel));
    found.dedup_by(|a, b| a.rel == b.rel);
    report.files_scanned = found.len();
    apply_changes(
        store,
        embedder,
        found,
        deleted,
        known,
        options,
        &mut report,
        (started, Scope::ChangedPaths),
        on_progress,
    )
    .await?;
    finish_report(store, &mut report, started, Scope::ChangedPaths).await?;
    Ok(report)
}

/// Compacts the embedding cache after a run (unless another process is at
/// it); a cache that fails is logged, never the run's failure.
pub async fn maintain_cache(options: &IndexOptions) {
    if let Some(cache) = &options.embedding_cache {
        if let Err(e) = cache.maintain().await {
            tracing::warn!(cache = %cache.dir().display(), "embedding cache maintenance failed: {e}");
        }
    }
}

/// The embedding cache, when there is one for the index's model.
fn usable_cache<'a>(store: &Store, options: &'a IndexOptions) -> Option<&'a EmbeddingCache> {
    options
        .embedding_cache
        .as_deref()
        .filter(|c| c.model() == store.meta().model && c.dim() == store.meta().dim)
}

/// What a run looked at, which decides how it reads the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Every file of the root ([`index_root`]): the index's hashes are read
    /// once.
    WholeRoot,
    /// Only the paths a watcher reported ([`index_paths`]): the store is
    /// asked about those rows only.
    ChangedPaths,
}

/// The counts every run reports at its end.
/// For a whole root, `chunks_pending` counts the root's pending chunks;
/// for changed paths, those of the changed files (a watcher's batch must
/// not diff the whole index).
async fn finish_report(
    store: &Store,
    report: &mut IndexReport,
    started: Instant,
    scope: Scope,
) -> Result<(), IndexError> {
    report.chunks_total = store.chunks_under(&report.root).await?;
    if scope == Scope::WholeRoot {
        report.chunks_pending = store.pending_chunks(Some(&report.root)).await?;
    }
    report.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    report.lossy_files.sort();
    store.record_indexed(&report.root)?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(())
}

/// The two passes over what changed: `found` are the files present now
/// (only those new or modified since `known`, or left unfinished by an
/// interrupted run, are chunked), `deleted` the known files that are gone.
#[allow(clippy::too_many_arguments)]
async fn apply_changes(
    store: &Store,
    embedder: &Embedder,
    found: Vec<FoundFile>,
    deleted: Vec<String>,
    known: Arc<HashMap<String, FileRow>>,
    options: &IndexOptions,
    report: &mut IndexReport,
    (started, scope): (Instant, Scope),
    on_progress: &mut (dyn FnMut(IndexProgress) + Send),
) -> Result<(), IndexError> {
    let root = report.root.clone();
    // A watcher's batch (`found` is only the changed paths) looks up the
    // vectors and unfinished files of its own rows; a full run, which
    // looks at every file anyway, reads the index's hashes once.
    let narrow = scope == Scope::ChangedPaths;
    let (unfinished, embedded) = if narrow {
        let rels: Vec<String> = found.iter().map(|f| f.rel.clone()).collect();
        let unfinished = store.files_with_pending_chunks_among(&root, &rels).await?;
        (unfinished, HashSet::new())
    } else {
        (
            store.files_with_pending_chunks(&root).await?,
            store.vector_hashes().await?,
        )
    };
    let unfinished = Arc::new(unfinished);
    let changed: Vec<FoundFile> = found
        .iter()
        .filter(|f| match known.get(&f.rel) {
            Some(row) => {
                row.size != f.size || row.mtime_ns != f.mtime_ns || unfinished.contains(&f.rel)
            }
            None => true,
        })
        .cloned()
        .collect();
    let bytes_total: u64 = changed.iter().map(|f| f.size).sum();
    on_progress(IndexProgress::Scanned {
        files: found.len(),
        changed: changed.len(),
        bytes: bytes_total,
    });

    let mut pass1 = Pass1 {
        root: root.clone(),
        known,
        deleted,
        embedded,
        look_up_vectors: narrow,
        to_embed: Vec::new(),
    };
    write_text(
        store,
        embedder,
        changed,
        unfinished,
        options,
        &mut pass1,
        report,
        on_progress,
    )
    .await?;
    let Pass1 {
        mut deleted,
        to_embed,
        ..
    } = pass1;
    if !deleted.is_empty() {
        deleted.sort();
        deleted.dedup();
        report.files_deleted = deleted.len();
        store.replace_files(&root, &deleted, &[], &[]).await?;
    }
    store.ensure_text_index().await?;
    report.searchable_seconds = started.elapsed().as_secs_f64();
    // Vectors computed before (for another index, or before a rebuild)
    // cost a copy, even in a text-only run.
    let to_embed = match usable_cache(store, options) {
        Some(cache) if !to_embed.is_empty() => {
            let hashes: Vec<String> = to_embed.iter().map(|(h, _)| h.clone()).collect();
            let cached = store.fill_from_cache(cache, &hashes).await?;
            report.chunks_from_cache += cached.len();
            report.chunks_reused += cached.len();
            to_embed
                .into_iter()
                .filter(|(hash, _)| !cached.contains(hash))
                .collect()
        }
        _ => to_embed,
    };
    on_progress(IndexProgress::Searchable {
        chunks_pending: to_embed.len(),
    });

    if options.text_only {
        report.chunks_pending = to_embed.len();
    } else {
        write_vectors(store, embedder, to_embed, options, report, on_progress).await?;
    }
    Ok(())
}

/// Pass 1: parsing workers on every core feed this task, which writes the
/// chunks a batch of files at a time and keeps the texts that still need
/// embedding in `pass1.to_embed`.
#[allow(clippy::too_many_arguments)]
async fn write_text(
    store: &Store,
    embedder: &Embedder,
    changed: Vec<FoundFile>,
    unfinished: Arc<HashSet<String>>,
    options: &IndexOptions,
    pass1: &mut Pass1,
    report: &mut IndexReport,
    on_progress: &mut (dyn FnMut(IndexProgress) + Send),
) -> Result<(), IndexError> {
    let files_total = changed.len();
    let bytes_total: u64 = changed.iter().map(|f| f.size).sum();
    let (tx, mut rx) = tokio::sync::mpsc::channel(PARSED_QUEUE);
    let parsers = spawn_parsers(
        changed,
        pass1.known.clone(),
        unfinished,
        options.clone(),
        embedder.clone(),
        tx,
    );
    let (mut files_done, mut bytes_done) = (0, 0);
    let mut batch = Vec::with_capacity(FILES_PER_BATCH);
    loop {
        let room = FILES_PER_BATCH - batch.len();
        let open = rx.recv_many(&mut batch, room).await > 0;
        if batch.len() < FILES_PER_BATCH && open {
            continue;
        }
        if !batch.is_empty() {
            options.check_cancelled()?;
            files_done += batch.len();
            bytes_done += batch
                .iter()
                .map(|(f, _): &(FoundFile, _)| f.size)
                .sum::<u64>();
            write_text_batch(store, std::mem::take(&mut batch), pass1, report).await?;
            on_progress(IndexProgress::Chunked {
                files_done,
                files_total,
                bytes_done,
                bytes_total,
            });
        }
        if !open {
            break;
        }
    }
    // Every sender is gone: the workers finished (or one panicked, which
    // must not pass for a complete run).
    if let Err(panic) = parsers.join() {
        std::panic::resume_unwind(panic);
    }
    options.check_cancelled()?;
    Ok(())
}

/// Starts the parsing stage: one worker per core reads, hashes and chunks
/// `files`, sending each result into `tx` (bounded, so parsing runs ahead of
/// the writer by a batch or two, never by the whole tree). Stops early when
/// the run is cancelled or the receiver is dropped.
fn spawn_parsers(
    files: Vec<FoundFile>,
    known: Arc<HashMap<String, FileRow>>,
    unfinished: Arc<HashSet<String>>,
    options: IndexOptions,
    embedder: Embedder,
    tx: tokio::sync::mpsc::Sender<(FoundFile, Prepared)>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let workers = options.threads.clamp(1, files.len().max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let tokens = ModelTokens(&embedder);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    if options.check_cancelled().is_err() {
                        break;
                    }
                    let Some(file) = files.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    let prepared = prepare(file, &known, &unfinished, &options, &tokens);
                    if tx.blocking_send((file.clone(), prepared)).is_err() {
                        break;
                    }
                });
            }
        });
    })
}

/// Writes one batch of parsed files (chunks and file records), and notes
/// the texts among their chunks that have no vector yet.
async fn write_text_batch(
    store: &Store,
    batch: Vec<(FoundFile, Prepared)>,
    pass1: &mut Pass1,
    report: &mut IndexReport,
) -> Result<(), IndexError> {
    let root = pass1.root.clone();
    if pass1.look_up_vectors {
        let hashes: Vec<String> = batch
            .iter()
            .filter_map(|(_, p)| match p {
                Prepared::Chunked { chunks, .. } => Some(chunks),
                _ => None,
            })
            .flatten()
            .map(|c| hash_hex(c.embed_text.as_bytes()))
            .filter(|h| !pass1.embedded.contains(h))
            .collect();
        pass1.embedded.extend(store.vectors_among(&hashes).await?);
    }
    let mut paths = Vec::new();
    let mut file_rows = Vec::new();
    let mut rows = Vec::new();
    let mut touched = Vec::new();
    for (file, outcome) in batch {
        match outcome {
            Prepared::Skip(reason) => {
                // Whatever it held before is no longer indexed.
                if pass1.known.contains_key(&file.rel) {
                    pass1.deleted.push(file.rel.clone());
                }
                report.skipped.push(Skipped {
                    path: file.rel,
                    reason,
                });
            }
            Prepared::Unchanged(old) => {
                // Touched but unchanged: record the new mtime only.
                touched.push(FileRow {
                    mtime_ns: file.mtime_ns,
                    size: file.size,
                    ..old
                });
            }
            Prepared::Chunked {
                content_hash,
                lossy,
                chunks,
            } => {
                if lossy {
                    report.lossy_files.push(file.rel.clone());
                }
                report.files_changed += 1;
                file_rows.push(FileRow {
                    root: root.clone(),
                    path: file.rel.clone(),
                    size: file.size,
                    mtime_ns: file.mtime_ns,
                    content_hash,
                    chunks: chunks.len() as u32,
                });
                for chunk in chunks {
                    let hash = hash_hex(chunk.embed_text.as_bytes());
                    if pass1.embedded.insert(hash.clone()) {
                        pass1
                            .to_embed
                            .push((hash.clone(), chunk.embed_text.clone()));
                    } else {
                        // Embedded before, or earlier in this run.
                        report.chunks_reused += 1;
                    }
                    rows.push(chunk_row(&root, file.rel.clone(), chunk, hash));
                }
                paths.push(file.rel);
            }
        }
    }
    store
        .replace_files(&root, &paths, &file_rows, &rows)
        .await?;
    if !touched.is_empty() {
        let touched_paths: Vec<String> = touched.iter().map(|f| f.path.clone()).collect();
        store
            .update_file_records(&root, &touched_paths, &touched)
            .await?;
    }
    Ok(())
}

/// What the embedding stage reports back.
enum Embedded {
    /// This many more texts were embedded (for progress).
    Slice(usize),
    /// A group is complete: its vectors by text hash.
    Group(Vec<(String, Vec<f32>)>),
    /// The model failed; the run stops.
    Failed(quarry_models::ModelError),
}

/// Pass 2: an embedding thread works through the texts a group at a time
/// while this task stores each finished group's vectors.
async fn write_vectors(
    store: &Store,
    embedder: &Embedder,
    to_embed: Vec<(String, String)>,
    options: &IndexOptions,
    report: &mut IndexReport,
    on_progress: &mut (dyn FnMut(IndexProgress) + Send),
) -> Result<(), IndexError> {
    if to_embed.is_empty() {
        return Ok(());
    }
    let cache = usable_cache(store, options);
    let chunks_total = to_embed.len();
    let (tx, mut rx) = tokio::sync::mpsc::channel(EMBEDDED_QUEUE * (EMBED_GROUP / EMBED_SLICE + 1));
    let embedding = spawn_embedder(to_embed, embedder.clone(), options.cancel.clone(), tx);
    while let Some(message) = rx.recv().await {
        match message {
            Embedded::Slice(n) => {
                report.chunks_embedded += n;
                on_progress(IndexProgress::Embedded {
                    chunks_done: report.chunks_embedded,
                    chunks_total,
                });
            }
            Embedded::Group(vectors) => {
                store.add_vectors(&vectors).await?;
                if let Some(cache) = cache {
                    if let Err(e) = cache.put(&vectors).await {
                        tracing::warn!(cache = %cache.dir().display(), "embedding cache not written: {e}");
                    }
                }
            }
            Embedded::Failed(e) => return Err(e.into()),
        }
        options.check_cancelled()?;
    }
    if let Err(panic) = embedding.join() {
        std::panic::resume_unwind(panic);
    }
    options.check_cancelled()
}

/// Starts the embedding stage: a thread that embeds `texts` a slice at a
/// time (the model uses every core itself) and sends each group of
/// [`EMBED_GROUP`] vectors into `tx`, bounded so at most a couple of
/// finished groups wait for the writer. Stops when cancelled or when the
/// receiver is dropped.
fn spawn_embedder(
    texts: Vec<(String, String)>,
    embedder: Embedder,
    cancel: Option<Arc<AtomicBool>>,
    tx: tokio::sync::mpsc::Sender<Embedded>,
) -> std::thread::JoinHandle<()> {
    let cancelled = move || cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed));
    std::thread::spawn(move || {
        for group in texts.chunks(EMBED_GROUP) {
            let mut vectors = Vec::with_capacity(group.len());
            for slice in group.chunks(EMBED_SLICE) {
                if cancelled() {
                    return;
                }
                let batch: Vec<&str> = slice.iter().map(|(_, t)| t.as_str()).collect();
                match embedder.embed(&batch) {
                    Ok(embedded) => {
                        vectors.extend(slice.iter().map(|(h, _)| h.clone()).zip(embedded))
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Embedded::Failed(e));
                        return;
                    }
                }
                if tx.blocking_send(Embedded::Slice(slice.len())).is_err() {
                    return;
                }
            }
            if tx.blocking_send(Embedded::Group(vectors)).is_err() {
                return;
            }
        }
    })
}

/// What pass 1 makes of one changed file.
enum Prepared {
    /// Not indexable now (binary, unreadable, vanished…), with the reason.
    Skip(String),
    /// Touched but byte-for-byte the same: only its record is refreshed.
    Unchanged(FileRow),
    Chunked {
        content_hash: String,
        lossy: bool,
        chunks: Vec<Chunk>,
    },
}

/// Reads and chunks one file (pure work, run in parallel by pass 1).
fn prepare(
    file: &FoundFile,
    known: &HashMap<String, FileRow>,
    unfinished: &HashSet<String>,
    options: &IndexOptions,
    tokens: &dyn TokenCounter,
) -> Prepared {
    let (text, lossy) = match load(file) {
        Load::Text { text, lossy } => (text, lossy),
        Load::Skip(reason) => return Prepared::Skip(reason),
    };
    let content_hash = hash_hex(text.as_bytes());
    if let Some(old) = known.get(&file.rel) {
        if old.content_hash == content_hash && !unfinished.contains(&file.rel) {
            return Prepared::Unchanged(old.clone());
        }
    }
    let chunks = quarry_chunk::chunk_source(Path::new(&file.rel), &text, &options.chunking, tokens);
    Prepared::Chunked {
        content_hash,
        lossy,
        chunks,
    }
}

fn chunk_row(root: &str, path: String, chunk: Chunk, content_hash: String) -> ChunkRow {
    let identity = format!(
        "{root}\0{path}\0{}\0{}\0{}\0{}\0{content_hash}",
        chunk.kind.as_str(),
        chunk.symbol,
        chunk.start_line,
        chunk.end_line
    );
    ChunkRow {
        chunk: StoredChunk {
            id: hash_hex(identity.as_bytes()),
            root: root.to_string(),
            path,
            language: chunk.language,
            kind: chunk.kind.as_str().to_string(),
            symbol: chunk.symbol,
            start_line: chunk.start_line,
            end_line: chunk.end_line,
            content_hash,
            text: chunk.text,
        },
        vector: Vec::new(),
    }
}

fn hash_hex(bytes: &[u8]) -> String {
    format!("{:032x}", xxh3_128(bytes))
}

enum Load {
    Text { text: String, lossy: bool },
    Skip(String),
}

/// Reads a file as text: binary files are skipped, invalid UTF-8 is kept
/// searchable with replacement characters.
fn load(file: &FoundFile) -> Load {
    let bytes = match std::fs::read(&file.abs) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Load::Skip("vanished before it could be read".into())
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Load::Skip("permission denied".into())
        }
        Err(e) => return Load::Skip(format!("unreadable: {e}")),
    };
    if bytes.len() as u64 > file.size.max(1) * 4 && bytes.len() > BINARY_SNIFF_BYTES {
        // Grew enormously between walk and read (a log being written):
        // leave it to the next run rather than index a moving target.
        return Load::Skip("changed size while being read".into());
    }
    if bytes[..bytes.len().min(BINARY_SNIFF_BYTES)].contains(&0) {
        return Load::Skip("binary file".into());
    }
    let (text, lossy) = match String::from_utf8(bytes) {
        Ok(text) => (text, false),
        Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
    };
    if let Some(kind) = data_file(&file.rel, &text) {
        return Load::Skip(format!("data, not code ({kind})"));
    }
    Load::Text { text, lossy }
}

/// Extensions of tabular data: never code, however they read.
const DATA_EXTENSIONS: &[&str] = &["csv", "tsv", "psv", "dat", "ndjson", "jsonl"];
/// Share of a file's visible characters that are digits above which a file
/// without a grammar is data (measurements, weather years, numeric tables).
const NUMERIC_SHARE: f64 = 0.5;

/// Whether a file is data rather than code or prose: a table by extension,
/// or, with no grammar, mostly numbers. Data would fill the index with
/// windows nobody searches for (pvlib's release holds 50,000 of them).
fn data_file(rel: &str, text: &str) -> Option<&'static str> {
    let path = std::path::Path::new(rel);
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if extension
        .as_deref()
        .is_some_and(|e| DATA_EXTENSIONS.contains(&e))
    {
        return Some("a table");
    }
    if quarry_chunk::detect_language(path, text.lines().next()).is_some() {
        return None;
    }
    let sample = text_prefix(text, BINARY_SNIFF_BYTES);
    let (mut visible, mut digits) = (0usize, 0usize);
    for c in sample.chars().filter(|c| !c.is_whitespace()) {
        visible += 1;
        digits += usize::from(c.is_ascii_digit());
    }
    (visible >= 200 && digits as f64 >= NUMERIC_SHARE * visible as f64).then_some("mostly numbers")
}

/// The first `max` bytes of `text`, cut at a character boundary.
fn text_prefix(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests;
