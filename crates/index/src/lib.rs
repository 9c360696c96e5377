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
use quarry_store::{ChunkRow, FileRow, Store, StoredChunk};
use xxhash_rust::xxh3::xxh3_128;

use walk::FoundFile;

/// Default largest file that is indexed: 1 MiB. Larger files are almost
/// always generated or data, and are reported as skipped.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1024 * 1024;
/// Files per pipeline batch: chunked together, embedded together, and
/// written in one set of commits.
const FILES_PER_BATCH: usize = 256;
/// Chunks embedded between two progress events.
const EMBED_SLICE: usize = 64;
/// Chunks embedded before their files' rows are rewritten complete: large
/// enough to keep writes few, small enough that dense search fills in steadily.
const EMBED_GROUP: usize = 512;
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
    /// Chunks embedded during this run.
    pub chunks_embedded: usize,
    /// Chunks of changed files whose text was unchanged: their stored
    /// vectors were kept instead of embedding them again.
    pub chunks_reused: usize,
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

/// A changed file's rows between the two passes of [`index_root`]: written
/// with the vectors already known, then completed once the rest are embedded.
struct FileWork {
    file: FileRow,
    rows: Vec<ChunkRow>,
    /// Text to embed for each row whose vector is still missing.
    to_embed: Vec<(usize, String)>,
}

/// Indexes `dir` into `store`: only files that are new or changed since the
/// last run are chunked and embedded; rows of deleted files are removed.
///
/// Two passes, so a new repository is searchable within seconds:
/// 1. walk, read, chunk and write every changed file's chunks, with the
///    vectors already known (same text embedded before) and the rest left
///    empty, then make sure the full-text index exists: the text side is
///    complete ([`IndexProgress::Searchable`]);
/// 2. embed the missing vectors, longest work last, and rewrite those files'
///    rows complete; dense search sees each file as soon as its rows land.
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

    let known = store.files_under(&root).await?;
    let unfinished = store.files_with_pending_chunks(&root).await?;
    let present: HashSet<&str> = walked.files.iter().map(|f| f.rel.as_str()).collect();
    let mut deleted: Vec<String> = known
        .keys()
        .filter(|p| !present.contains(p.as_str()))
        // A file skipped now (too large, unreadable) is no longer indexed.
        .cloned()
        .collect();
    let changed: Vec<&FoundFile> = walked
        .files
        .iter()
        .filter(|f| match known.get(&f.rel) {
            Some(row) => {
                row.size != f.size || row.mtime_ns != f.mtime_ns || unfinished.contains(&f.rel)
            }
            None => true,
        })
        .collect();
    let bytes_total: u64 = changed.iter().map(|f| f.size).sum();
    on_progress(IndexProgress::Scanned {
        files: walked.files.len(),
        changed: changed.len(),
        bytes: bytes_total,
    });

    // Pass 1: text.
    let tokens = ModelTokens(embedder);
    let mut work: Vec<FileWork> = Vec::new();
    let mut files_done = 0;
    let mut bytes_done = 0;
    for batch in changed.chunks(FILES_PER_BATCH) {
        options.check_cancelled()?;
        let mut batch_work = Vec::new();
        let mut touched = Vec::new();
        // Reading, hashing and chunking run on every core; results keep file order.
        let prepared = par_map(batch, |file| {
            prepare(file, &known, &unfinished, options, &tokens)
        });
        for (file, outcome) in batch.iter().zip(prepared) {
            files_done += 1;
            bytes_done += file.size;
            match outcome {
                Prepared::Skip(reason) => {
                    // Whatever it held before is no longer indexed.
                    if known.contains_key(&file.rel) {
                        deleted.push(file.rel.clone());
                    }
                    report.skipped.push(Skipped {
                        path: file.rel.clone(),
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
                    batch_work.push((
                        FileRow {
                            root: root.clone(),
                            path: file.rel.clone(),
                            size: file.size,
                            mtime_ns: file.mtime_ns,
                            content_hash,
                            chunks: chunks.len() as u32,
                        },
                        chunks,
                    ));
                }
            }
        }
        report.files_changed += batch_work.len();

        // Chunks of edited files whose text is unchanged keep their vectors.
        let previously_indexed: Vec<String> = batch_work
            .iter()
            .map(|(f, _)| f.path.clone())
            .filter(|p| known.contains_key(p))
            .collect();
        let stored = store.vectors_by_hash(&root, &previously_indexed).await?;
        let mut paths = Vec::new();
        let mut file_rows = Vec::new();
        let mut rows = Vec::new();
        for (file, chunks) in batch_work {
            let mut item = FileWork {
                file,
                rows: Vec::with_capacity(chunks.len()),
                to_embed: Vec::new(),
            };
            for chunk in chunks {
                let hash = hash_hex(chunk.embed_text.as_bytes());
                let vector = match stored.get(&hash) {
                    Some(v) => {
                        report.chunks_reused += 1;
                        v.clone()
                    }
                    None => {
                        item.to_embed
                            .push((item.rows.len(), chunk.embed_text.clone()));
                        Vec::new()
                    }
                };
                item.rows.push(chunk_row(
                    &root,
                    item.file.path.clone(),
                    chunk,
                    hash,
                    vector,
                ));
            }
            paths.push(item.file.path.clone());
            file_rows.push(item.file.clone());
            rows.extend(item.rows.iter().cloned());
            if !item.to_embed.is_empty() {
                work.push(item);
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
        on_progress(IndexProgress::Chunked {
            files_done,
            files_total: changed.len(),
            bytes_done,
            bytes_total,
        });
    }
    if !deleted.is_empty() {
        deleted.sort();
        deleted.dedup();
        report.files_deleted = deleted.len();
        store.replace_files(&root, &deleted, &[], &[]).await?;
    }
    store.ensure_text_index().await?;
    let chunks_to_embed: usize = work.iter().map(|w| w.to_embed.len()).sum();
    report.searchable_seconds = started.elapsed().as_secs_f64();
    on_progress(IndexProgress::Searchable {
        chunks_pending: chunks_to_embed,
    });

    // Pass 2: vectors, a group of files at a time.
    if options.text_only {
        work.clear();
    }
    let mut start = 0;
    while start < work.len() {
        options.check_cancelled()?;
        let mut end = start;
        let mut texts = 0;
        while end < work.len() && (end == start || texts + work[end].to_embed.len() <= EMBED_GROUP)
        {
            texts += work[end].to_embed.len();
            end += 1;
        }
        let group = &mut work[start..end];
        // Identical texts (repeated code in a file) are embedded once. The
        // vectors live only until the group is written, so memory stays flat.
        let mut unique: Vec<(String, &str)> = Vec::new();
        let mut seen = HashSet::new();
        for item in group.iter() {
            for (_, text) in &item.to_embed {
                let hash = hash_hex(text.as_bytes());
                if seen.insert(hash.clone()) {
                    unique.push((hash, text.as_str()));
                }
            }
        }
        let mut group_vectors: HashMap<String, Vec<f32>> = HashMap::new();
        let embedded_before = report.chunks_embedded;
        for slice in unique.chunks(EMBED_SLICE) {
            let slice_texts: Vec<&str> = slice.iter().map(|(_, t)| *t).collect();
            for ((hash, _), vector) in slice.iter().zip(embedder.embed(&slice_texts)?) {
                group_vectors.insert(hash.clone(), vector);
            }
            report.chunks_embedded += slice.len();
            on_progress(IndexProgress::Embedded {
                chunks_done: report.chunks_embedded,
                chunks_total: chunks_to_embed,
            });
        }
        let newly = report.chunks_embedded - embedded_before;
        // Texts that were duplicates of one embedded in this group count as reused.
        report.chunks_reused += texts - newly;
        let mut paths = Vec::new();
        let mut file_rows = Vec::new();
        let mut rows = Vec::new();
        for item in group.iter_mut() {
            for (i, text) in item.to_embed.drain(..) {
                let hash = hash_hex(text.as_bytes());
                item.rows[i].vector = group_vectors.get(&hash).cloned().unwrap_or_default();
            }
            paths.push(item.file.path.clone());
            file_rows.push(item.file.clone());
            rows.append(&mut item.rows);
        }
        store
            .replace_files(&root, &paths, &file_rows, &rows)
            .await?;
        start = end;
    }

    options.check_cancelled()?;
    on_progress(IndexProgress::Optimizing);
    store.optimize().await?;
    let status = store.status().await?;
    report.chunks_total = status
        .roots
        .iter()
        .find(|r| r.root == root)
        .map_or(0, |r| r.chunks);
    report.chunks_pending = store.pending_chunks(Some(&root)).await?;
    report.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
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

/// `items.map(f)` on all cores, results in input order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len())
        .max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        done.push((i, f(item)));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

fn chunk_row(
    root: &str,
    path: String,
    chunk: Chunk,
    content_hash: String,
    vector: Vec<f32>,
) -> ChunkRow {
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
        vector,
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
    match String::from_utf8(bytes) {
        Ok(text) => Load::Text { text, lossy: false },
        Err(e) => Load::Text {
            text: String::from_utf8_lossy(e.as_bytes()).into_owned(),
            lossy: true,
        },
    }
}

#[cfg(test)]
mod tests;
