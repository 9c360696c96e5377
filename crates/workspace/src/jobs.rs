//! The indexing queue: one job at a time per process (writers take turns
//! anyway), each with live progress, cancellable, never blocking the caller.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quarry_index::{IndexProgress, IndexReport};
use quarry_store::{IndexMeta, Store};

use crate::{repo_name, Event, Problem, Repository, Workspace};

/// Where a repository stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RepoState {
    /// Waiting for another repository's indexing.
    Queued,
    /// Being indexed now.
    Indexing,
    /// Indexed; nothing running.
    UpToDate,
    /// The last run failed or was cancelled.
    Error,
}

/// How far a job has come.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Progress {
    /// `queued`, `waiting` (for another writer), `loading model`,
    /// `scanning`, `chunking`, `searchable`, `embedding` or `optimizing`.
    pub phase: String,
    /// Files read and chunked.
    pub files_done: usize,
    /// Files to read and chunk.
    pub files_total: usize,
    /// Chunks embedded.
    pub chunks_done: usize,
    /// Chunks to embed.
    pub chunks_total: usize,
    /// Seconds left in this phase, once a rate is known.
    pub eta_seconds: Option<f64>,
}

impl Progress {
    fn phase(phase: &str) -> Self {
        Progress {
            phase: phase.to_string(),
            files_done: 0,
            files_total: 0,
            chunks_done: 0,
            chunks_total: 0,
            eta_seconds: None,
        }
    }
}

/// A job's step, as sent to the window.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IndexEvent {
    /// The repository.
    pub root: String,
    /// The progress phase, or `done`, `cancelled`, `error`.
    pub phase: String,
    /// Counts, while running.
    pub progress: Option<Progress>,
    /// Why it stopped, for `cancelled` and `error`.
    pub error: Option<Problem>,
}

struct Job {
    state: RepoState,
    progress: Option<Progress>,
    error: Option<Problem>,
    cancel: Arc<AtomicBool>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<String>,
    running: Option<String>,
    worker: bool,
    /// Repositories with a job queued, running, or failed.
    jobs: BTreeMap<String, Job>,
}

/// The queue of one workspace.
#[derive(Default)]
pub(crate) struct Jobs {
    queue: Mutex<Queue>,
    finished: tokio::sync::Notify,
}

impl Jobs {
    fn with<T>(&self, f: impl FnOnce(&mut Queue) -> T) -> T {
        f(&mut self.queue.lock().expect("job queue"))
    }

    /// Sets the phase of `root`'s running job and tells the window.
    pub(crate) fn set_phase(&self, ws: &Workspace, root: &str, phase: &str) {
        self.report(ws, root, Progress::phase(phase));
    }

    fn report(&self, ws: &Workspace, root: &str, progress: Progress) {
        let sent = self.with(|q| {
            let job = q.jobs.get_mut(root)?;
            job.progress = Some(progress.clone());
            Some(())
        });
        if sent.is_some() {
            ws.emit(Event::Index(IndexEvent {
                root: root.to_string(),
                phase: progress.phase.clone(),
                progress: Some(progress),
                error: None,
            }));
        }
    }

    /// Stops `root`'s job: a queued one is dropped, a running one stops at
    /// its next batch.
    pub(crate) fn cancel(&self, root: &str) {
        self.with(|q| {
            q.waiting.retain(|r| r != root);
            if q.running.as_deref() == Some(root) {
                if let Some(job) = q.jobs.get(root) {
                    job.cancel.store(true, Ordering::Relaxed);
                }
            } else if q
                .jobs
                .get(root)
                .is_some_and(|j| j.state == RepoState::Queued)
            {
                q.jobs.remove(root);
            }
        });
    }

    /// Waits until no job of `root` runs.
    pub(crate) async fn wait_idle(&self, root: &str) {
        loop {
            let finished = self.finished.notified();
            if self.with(|q| q.running.as_deref() != Some(root)) {
                return;
            }
            finished.await;
        }
    }

    /// Drops what is remembered of `root`'s jobs (it was removed).
    pub(crate) fn forget(&self, root: &str) {
        self.with(|q| {
            q.waiting.retain(|r| r != root);
            q.jobs.remove(root);
        });
    }

    /// Puts job states onto the index's list; repositories known only to
    /// the queue (not indexed yet, or failed before writing anything) are
    /// added.
    pub(crate) fn overlay(&self, repos: &mut Vec<Repository>) {
        self.with(|q| {
            for (root, job) in &q.jobs {
                let repo = match repos.iter_mut().find(|r| &r.root == root) {
                    Some(repo) => repo,
                    None => {
                        repos.push(Repository {
                            root: root.clone(),
                            name: repo_name(root),
                            files: 0,
                            chunks: 0,
                            pending: 0,
                            last_indexed: None,
                            state: job.state,
                            progress: None,
                            error: None,
                        });
                        repos.last_mut().expect("just pushed")
                    }
                };
                repo.state = job.state;
                repo.progress = job.progress.clone();
                repo.error = job.error.clone();
            }
        });
    }
}

/// Queues `root`; starts the worker when idle. False when a job of `root`
/// is already queued or running.
pub(crate) fn enqueue(ws: &Arc<Workspace>, root: &str) -> bool {
    let start_worker = ws.jobs.with(|q| {
        if q.jobs
            .get(root)
            .is_some_and(|j| matches!(j.state, RepoState::Queued | RepoState::Indexing))
        {
            return None;
        }
        q.jobs.insert(
            root.to_string(),
            Job {
                state: RepoState::Queued,
                progress: Some(Progress::phase("queued")),
                error: None,
                cancel: Arc::new(AtomicBool::new(false)),
            },
        );
        q.waiting.push_back(root.to_string());
        Some(!std::mem::replace(&mut q.worker, true))
    });
    match start_worker {
        None => false,
        Some(start) => {
            ws.jobs.set_phase(ws, root, "queued");
            if start {
                tokio::spawn(work(Arc::clone(ws)));
            }
            true
        }
    }
}

/// Runs queued jobs one after the other until the queue is empty.
async fn work(ws: Arc<Workspace>) {
    loop {
        let next = ws.jobs.with(|q| {
            let Some(root) = q.waiting.pop_front() else {
                q.worker = false;
                return None;
            };
            let job = q.jobs.get_mut(&root)?;
            job.state = RepoState::Indexing;
            q.running = Some(root.clone());
            Some((root, Arc::clone(&job.cancel)))
        });
        let Some((root, cancel)) = next else {
            if ws.jobs.with(|q| q.worker) {
                continue;
            }
            // The queue is done: watch what it indexed.
            ws.restart_watcher().await;
            return;
        };
        ws.emit(Event::RepositoriesChanged);
        let result = run(&ws, &root, cancel).await;
        let event = ws.jobs.with(|q| {
            q.running = None;
            match result {
                Ok(report) => {
                    tracing::info!(root, files = report.files_changed, "indexed");
                    q.jobs.remove(&root);
                    ("done", None)
                }
                Err(problem) => {
                    let phase = if problem == Problem::from(quarry_index::IndexError::Cancelled) {
                        "cancelled"
                    } else {
                        "error"
                    };
                    if let Some(job) = q.jobs.get_mut(&root) {
                        job.state = RepoState::Error;
                        job.progress = None;
                        job.error = Some(problem.clone());
                    }
                    (phase, Some(problem))
                }
            }
        });
        ws.jobs.finished.notify_waiters();
        ws.emit(Event::Index(IndexEvent {
            root: root.clone(),
            phase: event.0.to_string(),
            progress: None,
            error: event.1,
        }));
        ws.emit(Event::RepositoriesChanged);
    }
}

/// One indexing run of `root`.
async fn run(
    ws: &Arc<Workspace>,
    root: &str,
    cancel: Arc<AtomicBool>,
) -> Result<IndexReport, Problem> {
    if ws.model.ready().is_err() {
        ws.jobs.set_phase(ws, root, "loading model");
    }
    let embedder = ws.model.wait_ready().await?;
    let _lock = ws.lock_for_writing(Some(root)).await?;
    if cancel.load(Ordering::Relaxed) {
        return Err(quarry_index::IndexError::Cancelled.into());
    }
    let meta = IndexMeta::new(embedder.model_id(), embedder.dim());
    let store = {
        let mut slot = ws.store.lock().await;
        let store = match slot.as_ref() {
            Some(store) => Arc::clone(store),
            None => {
                let store = Arc::new(Store::open_or_create(&ws.locations.db, &meta).await?);
                *slot = Some(Arc::clone(&store));
                store
            }
        };
        if store.check_model(&meta).is_err() {
            // The settings chose another model: the index follows.
            ws.jobs.set_phase(ws, root, "switching model");
            let switched = ws.locations.switch_index_model(&store, &meta).await?;
            let switched = Arc::new(switched);
            *slot = Some(Arc::clone(&switched));
            switched
        } else {
            store
        }
    };
    let options = quarry_index::IndexOptions {
        cancel: Some(cancel),
        ..ws.index_options(&embedder).await
    };
    let mut tracker = Tracker::new(ws, root);
    let mut on_progress = |event: IndexProgress| tracker.on(event);
    let report = quarry_index::index_root(
        &store,
        &embedder,
        Path::new(root),
        &options,
        &mut on_progress,
    )
    .await?;
    Ok(report)
}

/// Turns the indexer's events into [`Progress`] with rates and ETAs, sent
/// at most ten times a second (and at every phase change).
struct Tracker<'a> {
    ws: &'a Workspace,
    root: &'a str,
    progress: Progress,
    phase_started: Instant,
    last_sent: Option<Instant>,
}

impl<'a> Tracker<'a> {
    fn new(ws: &'a Workspace, root: &'a str) -> Self {
        Tracker {
            ws,
            root,
            progress: Progress::phase("scanning"),
            phase_started: Instant::now(),
            last_sent: None,
        }
    }

    fn on(&mut self, event: IndexProgress) {
        let before = self.progress.phase.clone();
        let p = &mut self.progress;
        match event {
            IndexProgress::Scanned { changed, .. } => {
                p.phase = "chunking".into();
                p.files_total = changed;
            }
            IndexProgress::Chunked {
                files_done,
                files_total,
                bytes_done,
                bytes_total,
            } => {
                p.phase = "chunking".into();
                p.files_done = files_done;
                p.files_total = files_total;
                p.eta_seconds = eta(
                    self.phase_started.elapsed(),
                    bytes_done as f64,
                    bytes_total as f64,
                );
            }
            IndexProgress::Searchable { chunks_pending } => {
                p.phase = "searchable".into();
                p.files_done = p.files_total;
                p.chunks_total = chunks_pending;
                p.eta_seconds = None;
                // The chunks are in the index: let lists show the counts.
                self.ws.emit(Event::RepositoriesChanged);
            }
            IndexProgress::Embedded {
                chunks_done,
                chunks_total,
            } => {
                p.phase = "embedding".into();
                p.chunks_done = chunks_done;
                p.chunks_total = chunks_total;
                p.eta_seconds = eta(
                    self.phase_started.elapsed(),
                    chunks_done as f64,
                    chunks_total as f64,
                );
            }
            IndexProgress::Optimizing => {
                p.phase = "optimizing".into();
                p.eta_seconds = None;
            }
        }
        let changed_phase = self.progress.phase != before;
        if changed_phase {
            self.phase_started = Instant::now();
        }
        let due = self
            .last_sent
            .is_none_or(|at| at.elapsed() >= Duration::from_millis(100));
        if changed_phase || due {
            self.last_sent = Some(Instant::now());
            self.ws
                .jobs
                .report(self.ws, self.root, self.progress.clone());
        }
    }
}

/// Seconds left at the rate so far; `None` until there is a rate.
fn eta(elapsed: Duration, done: f64, total: f64) -> Option<f64> {
    let secs = elapsed.as_secs_f64();
    (done > 0.0 && secs > 0.5 && total >= done).then(|| (total - done) * secs / done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_needs_a_rate_and_scales_with_what_is_left() {
        assert_eq!(eta(Duration::from_secs(10), 0.0, 100.0), None);
        assert_eq!(eta(Duration::from_millis(100), 5.0, 100.0), None);
        assert_eq!(eta(Duration::from_secs(10), 25.0, 100.0), Some(30.0));
        assert_eq!(eta(Duration::from_secs(10), 100.0, 100.0), Some(0.0));
    }
}
