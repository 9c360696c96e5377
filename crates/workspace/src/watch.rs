//! Following file changes: a recursive watcher per root, changes gathered
//! into batches (a `git checkout` touching a thousand files, or a formatter
//! run, is one batch), ignored paths dropped before any work, and each
//! batch brought into the index with [`quarry_index::index_paths`]. The
//! store is compacted on a schedule, not per batch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};
use quarry_index::{walk::PathFilter, IndexOptions, IndexReport};
use quarry_models::Embedder;
use quarry_store::{Store, WriterLock};

use crate::Problem;

/// Files whose change alters what is ignored: the root is walked again.
const IGNORE_FILES: &[&str] = &[".gitignore", ".ignore", ".quarryignore"];

/// How a watcher groups and schedules its work.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Indexing options (excludes, size limit).
    pub index: IndexOptions,
    /// A batch closes after this long without a new change...
    pub quiet: Duration,
    /// ...or this long after its first change, whichever comes first.
    pub max_wait: Duration,
    /// Compact and prune the store after this many batches, once the tree
    /// has been quiet for `optimize_pause` (compaction holds up the next
    /// batch, so it waits for a pause in the typing)...
    pub optimize_every: usize,
    /// ...the pause a due compaction waits for...
    pub optimize_pause: Duration,
    /// ...or after this long without changes, when there were some.
    pub optimize_when_idle: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            index: IndexOptions::default(),
            quiet: Duration::from_millis(150),
            max_wait: Duration::from_secs(2),
            optimize_every: 8,
            optimize_pause: Duration::from_secs(2),
            optimize_when_idle: Duration::from_secs(30),
        }
    }
}

/// What one batch did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WatchBatch {
    /// The root the changes were under.
    pub root: String,
    /// Changed paths the file system reported that the index cares about.
    pub paths: usize,
    /// True when ignore rules changed and the whole root was checked again.
    pub full: bool,
    /// What indexing them did.
    pub report: IndexReport,
}

/// What a watcher reports as it goes.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    /// Watching has started; changes from now on are seen.
    Ready,
    /// Another process held the index's writer lock; the batch waited for it.
    Waited,
    /// A batch was indexed.
    Batch(WatchBatch),
    /// A batch failed; watching goes on (the next change retries it).
    Failed { root: String, problem: Problem },
    /// The store was compacted and old versions pruned.
    Optimized { seconds: f64 },
}

/// Watches `roots` (indexed directories) until `stop` is set, keeping
/// `store` up to date. Every batch takes the index's writer lock for its
/// duration only, so other writers interleave.
pub async fn watch(
    store: &Store,
    embedder: &Embedder,
    roots: &[PathBuf],
    options: &WatchOptions,
    stop: Arc<AtomicBool>,
    on_event: &mut (dyn FnMut(WatchEvent) + Send),
) -> Result<(), Problem> {
    let roots: Vec<PathBuf> = roots
        .iter()
        .map(|r| quarry_index::canonical_root(r).map_err(Problem::from))
        .collect::<Result<_, _>>()?;
    let db = store
        .dir()
        .canonicalize()
        .unwrap_or_else(|_| store.dir().to_path_buf());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = tx.send(event);
    })
    .map_err(|e| cannot_watch("the repositories", e))?;
    for root in &roots {
        watcher
            .watch(root, RecursiveMode::Recursive)
            .map_err(|e| cannot_watch(&root.to_string_lossy(), e))?;
    }
    on_event(WatchEvent::Ready);

    let mut since_optimize = 0usize;
    let mut last_batch = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let first = match tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => break,
            Err(_) => {
                let quiet = last_batch.elapsed();
                let due = (since_optimize >= options.optimize_every
                    && quiet >= options.optimize_pause)
                    || (since_optimize > 0 && quiet >= options.optimize_when_idle);
                if due {
                    optimize(store, options, on_event).await?;
                    since_optimize = 0;
                }
                continue;
            }
        };
        // Edits without a pause still get compacted now and then, so
        // versions stay bounded.
        if since_optimize >= 4 * options.optimize_every {
            optimize(store, options, on_event).await?;
            since_optimize = 0;
        }
        let mut batch = Batch::default();
        batch.add(first, &roots, &db);
        let opened = Instant::now();
        while opened.elapsed() < options.max_wait {
            match tokio::time::timeout(options.quiet, rx.recv()).await {
                Ok(Some(event)) => batch.add(event, &roots, &db),
                _ => break,
            }
        }
        for (root, paths) in batch.paths {
            let full = batch.rescan.contains(&root)
                || paths.iter().any(|p| {
                    p.file_name()
                        .is_some_and(|n| IGNORE_FILES.iter().any(|f| n == *f))
                });
            let root_path = &roots[root];
            let wanted: Vec<PathBuf> = if full {
                Vec::new()
            } else {
                let mut filter = PathFilter::new(root_path, &options.index);
                paths.into_iter().filter(|p| filter.includes(p)).collect()
            };
            if !full && wanted.is_empty() {
                continue;
            }
            match index_batch(store, embedder, root_path, &wanted, full, options, on_event).await {
                Ok(report) => on_event(WatchEvent::Batch(WatchBatch {
                    root: report.root.clone(),
                    paths: wanted.len(),
                    full,
                    report,
                })),
                Err(problem) => on_event(WatchEvent::Failed {
                    root: root_path.to_string_lossy().into_owned(),
                    problem,
                }),
            }
            since_optimize += 1;
            last_batch = Instant::now();
        }
    }
    Ok(())
}

fn cannot_watch(what: &str, e: notify::Error) -> Problem {
    Problem::new(
        format!("Cannot watch {what} for changes: {e}"),
        "On Linux, the limit of watched directories may be too low: raise fs.inotify.max_user_watches (sysctl).",
    )
}

/// Changed paths gathered for one batch, per root.
#[derive(Default)]
struct Batch {
    paths: BTreeMap<usize, BTreeSet<PathBuf>>,
    /// Roots whose events were lost (the OS queue overflowed): checked whole.
    rescan: BTreeSet<usize>,
}

impl Batch {
    fn add(&mut self, event: notify::Result<notify::Event>, roots: &[PathBuf], db: &Path) {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!("file watcher error: {e}; checking every root again");
                self.rescan.extend(0..roots.len());
                return;
            }
        };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        let rescan = event.need_rescan();
        if rescan && event.paths.is_empty() {
            self.rescan.extend(0..roots.len());
        }
        for path in event.paths {
            if path.starts_with(db) {
                continue;
            }
            if let Some(root) = roots.iter().position(|r| path.starts_with(r)) {
                if rescan {
                    self.rescan.insert(root);
                }
                self.paths.entry(root).or_default().insert(path);
            }
        }
    }
}

/// Indexes one batch under the writer lock.
async fn index_batch(
    store: &Store,
    embedder: &Embedder,
    root: &Path,
    paths: &[PathBuf],
    full: bool,
    options: &WatchOptions,
    on_event: &mut (dyn FnMut(WatchEvent) + Send),
) -> Result<IndexReport, Problem> {
    let _lock = lock(store, on_event).await?;
    let report = if full {
        quarry_index::index_root(store, embedder, root, &options.index, &mut |_| {}).await
    } else {
        quarry_index::index_paths(store, embedder, root, paths, &options.index, &mut |_| {}).await
    };
    report.map_err(Problem::from)
}

/// Takes the writer lock without blocking the runtime.
async fn lock(
    store: &Store,
    on_event: &mut (dyn FnMut(WatchEvent) + Send),
) -> Result<WriterLock, Problem> {
    let dir = store.dir().to_path_buf();
    let (waiting_tx, waiting_rx) = std::sync::mpsc::channel();
    let task = tokio::task::spawn_blocking(move || {
        WriterLock::acquire(&dir, || {
            let _ = waiting_tx.send(());
        })
    });
    let lock = task
        .await
        .map_err(|e| Problem::bare(format!("The lock task failed: {e}")))?;
    if waiting_rx.try_recv().is_ok() {
        on_event(WatchEvent::Waited);
    }
    lock.map_err(Problem::from)
}

async fn optimize(
    store: &Store,
    options: &WatchOptions,
    on_event: &mut (dyn FnMut(WatchEvent) + Send),
) -> Result<(), Problem> {
    let started = Instant::now();
    let lock = lock(store, on_event).await?;
    store.optimize().await?;
    drop(lock);
    quarry_index::maintain_cache(&options.index).await;
    on_event(WatchEvent::Optimized {
        seconds: started.elapsed().as_secs_f64(),
    });
    Ok(())
}
