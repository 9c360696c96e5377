//! `quarry-bench live DIR DB [--edits N] [--switch N] [--checkout REF]`: a
//! watched index under edits, as a user's editor makes them. Measures, in
//! one run, the time from saving a file to a search finding its new function
//! (p50/p95), the table versions and disk after the edits against a freshly
//! optimised index, the chunks embedded by a simulated branch switch and
//! back, and — when DIR is a git work tree and REF is given — a real
//! `git checkout REF`, back, and to REF again: files the watcher changed,
//! chunks embedded and seconds until the index was up to date. The index
//! uses an embedding cache of its own beside DB (`DB-embedding-cache`), as
//! a user's does. The tree's files (and branch) are restored at the end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use quarry_index::{IndexOptions, IndexReport};
use quarry_models::Embedder;
use quarry_store::{EmbeddingCache, IndexMeta, SearchFilter, Store};
use quarry_workspace::watch::{watch, WatchEvent, WatchOptions};

/// What to do besides indexing and watching.
pub struct Plan {
    /// Single-file edits, each waited for until searchable.
    pub edits: usize,
    /// Files in the simulated branch switch.
    pub switch: usize,
    /// A git ref to check out, back and again.
    pub checkout: Option<String>,
}

/// One real checkout, as the watcher followed it.
#[derive(Debug)]
struct Checkout {
    to: String,
    /// Watcher batches the checkout became.
    batches: usize,
    files_changed: usize,
    files_deleted: usize,
    embedded: usize,
    from_cache: usize,
    /// From `git checkout` starting to the last batch it caused.
    seconds: f64,
}

/// What the run measures.
#[derive(Debug, Default)]
struct Live {
    files: usize,
    chunks: usize,
    save_to_searchable_ms: Vec<f64>,
    fresh_versions: usize,
    fresh_bytes: u64,
    versions_after: usize,
    bytes_after: u64,
    optimizations: usize,
    switch_files: usize,
    switch_embedded: usize,
    switch_back_embedded: usize,
    checkouts: Vec<Checkout>,
}

/// Runs the bench (see the module docs).
pub async fn run(embedder: &Embedder, tree: &Path, db: &Path, plan: &Plan) -> Result<()> {
    let (edits, switch) = (plan.edits, plan.switch);
    let tree = tree
        .canonicalize()
        .with_context(|| tree.display().to_string())?;
    let start_ref = match &plan.checkout {
        Some(_) => Some(git_head(&tree)?),
        None => None,
    };
    let meta = IndexMeta::new(embedder.model_id(), embedder.dim());
    let store = Arc::new(Store::open_or_create(db, &meta).await?);
    let cache_dir = PathBuf::from(format!("{}-embedding-cache", db.display()));
    let options = IndexOptions {
        embedding_cache: Some(Arc::new(
            EmbeddingCache::open(&cache_dir, &meta.model, meta.dim).await?,
        )),
        ..IndexOptions::default()
    };
    eprintln!(
        "indexing {} (incremental if {} has it)",
        tree.display(),
        db.display()
    );
    let full = quarry_index::index_root(&store, embedder, &tree, &options, &mut |_| {}).await?;
    store.optimize().await?;
    let fresh = store.status().await?;
    let mut live = Live {
        files: full.files_scanned,
        chunks: full.chunks_total,
        fresh_versions: fresh.versions,
        fresh_bytes: fresh.bytes,
        ..Live::default()
    };
    let targets = python_files(&tree)?;
    if targets.is_empty() {
        bail!("no Python files to edit under {}", tree.display());
    }

    let batches: Arc<Mutex<Vec<(Instant, IndexReport)>>> = Arc::default();
    let optimizations = Arc::new(Mutex::new(0usize));
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let watcher = {
        let (store, embedder, tree) = (Arc::clone(&store), embedder.clone(), tree.clone());
        let watch_options = WatchOptions {
            index: options.clone(),
            ..WatchOptions::default()
        };
        let (batches, optimizations, stop) = (batches.clone(), optimizations.clone(), stop.clone());
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            let mut on_event = |event: WatchEvent| match event {
                WatchEvent::Ready => {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                }
                WatchEvent::Batch(b) => batches.lock().unwrap().push((Instant::now(), b.report)),
                WatchEvent::Optimized { .. } => *optimizations.lock().unwrap() += 1,
                WatchEvent::Failed { problem, .. } => eprintln!("batch failed: {problem}"),
                WatchEvent::Waited => {}
            };
            watch(
                &store,
                &embedder,
                &[tree],
                &watch_options,
                stop,
                &mut on_event,
            )
            .await
        })
    };
    ready_rx.await.context("the watcher did not start")?;

    let mut originals = Restore::default();
    let filter = SearchFilter::default();
    for i in 0..edits {
        let file = &targets[i % targets.len()];
        let original = match originals.0.get(file) {
            Some(bytes) => bytes.clone(),
            None => {
                let bytes = std::fs::read(file)?;
                originals.0.insert(file.clone(), bytes.clone());
                bytes
            }
        };
        let probe = format!("quarry_live_probe_{i}");
        let mut edited = original.clone();
        edited.extend_from_slice(
            format!("\n\ndef {probe}(value):\n    return value + {i}\n").as_bytes(),
        );
        std::fs::write(file, edited)?;
        let saved = Instant::now();
        loop {
            let hits = store.text_search(&probe, 1, &filter).await?;
            if hits.first().is_some_and(|(c, _)| c.symbol == probe) {
                break;
            }
            if saved.elapsed() > Duration::from_secs(120) {
                bail!("{probe} never became searchable");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        live.save_to_searchable_ms
            .push(saved.elapsed().as_secs_f64() * 1000.0);
        if (i + 1) % 100 == 0 {
            eprintln!("{} edits", i + 1);
        }
    }
    let edited = originals.0.len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    batches.lock().unwrap().clear();
    originals.restore()?;
    settle(&batches, edited).await?;

    // A branch switch: `switch` files each get a changed function, then
    // the switch back restores them.
    let switched: Vec<PathBuf> = targets.iter().rev().take(switch).cloned().collect();
    let mut before = Restore::default();
    for file in &switched {
        let bytes = std::fs::read(file)?;
        let mut edited = bytes.clone();
        edited.extend_from_slice(b"\n\ndef quarry_branch_only(value):\n    return value * 2\n");
        std::fs::write(file, edited)?;
        before.0.insert(file.clone(), bytes);
    }
    live.switch_files = switched.len();
    live.switch_embedded = settle(&batches, switched.len())
        .await?
        .iter()
        .map(|(_, r)| r.chunks_embedded)
        .sum();
    before.restore()?;
    live.switch_back_embedded = settle(&batches, switched.len())
        .await?
        .iter()
        .map(|(_, r)| r.chunks_embedded)
        .sum();

    if let (Some(target), Some(start)) = (&plan.checkout, &start_ref) {
        let back = Branch {
            tree: tree.clone(),
            to: start.clone(),
        };
        for to in [target, start, target, start] {
            let checkout = check_out(&tree, to, &batches).await?;
            eprintln!("{checkout:?}");
            live.checkouts.push(checkout);
        }
        drop(back);
    }

    // Let the schedule compact what the edits left (it does after idle time
    // or every few batches), then read versions and disk.
    tokio::time::sleep(WatchOptions::default().optimize_when_idle + Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    watcher.await??;
    let after = store.status().await?;
    live.versions_after = after.versions;
    live.bytes_after = after.bytes;
    live.optimizations = *optimizations.lock().unwrap();
    print(&tree, &live);
    Ok(())
}

/// Checks out `to` in the git work tree `tree` while the watcher runs,
/// and waits until the index has caught up: the watcher's batches account
/// for every file git changed that the index holds or the walk would take,
/// or nothing more arrives for a while (files the walk skips, such as
/// binaries, are in git's list but in no batch).
async fn check_out(
    tree: &Path,
    to: &str,
    batches: &Mutex<Vec<(Instant, IndexReport)>>,
) -> Result<Checkout> {
    let from = git(tree, &["rev-parse", "HEAD"])?;
    let changed = git(tree, &["diff", "--name-only", "--no-renames", &from, to])?;
    let expected = changed.lines().filter(|l| !l.is_empty()).count();
    batches.lock().unwrap().clear();
    let started = Instant::now();
    git(tree, &["checkout", "-q", to])?;
    let quiet_for = Duration::from_secs(8);
    let reports = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let seen = batches.lock().unwrap();
        let accounted: usize = seen
            .iter()
            .map(|(_, r)| r.files_changed + r.files_deleted + r.skipped.len())
            .sum();
        let last = seen.last().map_or(started, |(at, _)| *at);
        if accounted >= expected || (!seen.is_empty() && last.elapsed() >= quiet_for) {
            drop(seen);
            break std::mem::take(&mut *batches.lock().unwrap());
        }
        if started.elapsed() > Duration::from_secs(3600) {
            bail!("the watcher did not catch up with `git checkout {to}`");
        }
    };
    let last = reports.last().map_or(started, |(at, _)| *at);
    Ok(Checkout {
        to: to.to_string(),
        batches: reports.len(),
        files_changed: reports.iter().map(|(_, r)| r.files_changed).sum(),
        files_deleted: reports.iter().map(|(_, r)| r.files_deleted).sum(),
        embedded: reports.iter().map(|(_, r)| r.chunks_embedded).sum(),
        from_cache: reports.iter().map(|(_, r)| r.chunks_from_cache).sum(),
        seconds: last.duration_since(started).as_secs_f64(),
    })
}

/// The branch (or commit) checked out in `tree`.
fn git_head(tree: &Path) -> Result<String> {
    if !git(tree, &["status", "--porcelain", "--untracked-files=no"])?.is_empty() {
        bail!(
            "{} has uncommitted changes; the bench checks out other refs",
            tree.display()
        );
    }
    git(tree, &["symbolic-ref", "--short", "-q", "HEAD"])
        .or_else(|_| git(tree, &["rev-parse", "HEAD"]))
}

/// Runs git in `tree`, returning its trimmed output.
fn git(tree: &Path, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(tree)
        .args(args)
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Checks the branch the bench started on out again when dropped, so a
/// failed run leaves the work tree as found.
struct Branch {
    tree: PathBuf,
    to: String,
}

impl Drop for Branch {
    fn drop(&mut self) {
        if let Err(e) = git(&self.tree, &["checkout", "-q", &self.to]) {
            eprintln!("could not check {} out again: {e}", self.to);
        }
    }
}

/// Waits until the watcher's batches since the last call have changed
/// `files` files, and returns them.
async fn settle(
    batches: &Mutex<Vec<(Instant, IndexReport)>>,
    files: usize,
) -> Result<Vec<(Instant, IndexReport)>> {
    let started = Instant::now();
    loop {
        let changed: usize = batches
            .lock()
            .unwrap()
            .iter()
            .map(|(_, r)| r.files_changed)
            .sum();
        if changed >= files {
            return Ok(std::mem::take(&mut *batches.lock().unwrap()));
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the watcher reported {changed} of {files} changed files");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Original contents of edited files, written back by `restore` or, if
/// the bench fails half-way, when dropped: the tree is left as found.
#[derive(Default)]
struct Restore(BTreeMap<PathBuf, Vec<u8>>);

impl Restore {
    fn restore(&mut self) -> Result<()> {
        for (file, bytes) in std::mem::take(&mut self.0) {
            std::fs::write(file, bytes)?;
        }
        Ok(())
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            eprintln!("could not restore an edited file: {e}");
        }
    }
}

/// The tree's Python files as the walk sees them, sorted.
fn python_files(tree: &Path) -> Result<Vec<PathBuf>> {
    let walked = quarry_index::walk::walk(tree, &IndexOptions::default())?;
    Ok(walked
        .files
        .into_iter()
        .filter(|f| f.rel.ends_with(".py"))
        .map(|f| f.abs)
        .collect())
}

fn print(tree: &Path, live: &Live) {
    let mut ms = live.save_to_searchable_ms.clone();
    ms.sort_by(f64::total_cmp);
    println!(
        "\n{}: {} files, {} chunks; {} single-file edits, each waited for until searchable\n",
        tree.display(),
        live.files,
        live.chunks,
        ms.len()
    );
    println!("| save → searchable p50 | p95 | max | versions fresh → after | disk fresh → after (MB) | disk ratio | compactions | branch switch: files, chunks embedded | switch back: chunks embedded |");
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {:.0} ms | {:.0} ms | {:.0} ms | {} → {} | {:.1} → {:.1} | {:.2}× | {} | {}, {} | {} |",
        crate::percentile(&ms, 0.5),
        crate::percentile(&ms, 0.95),
        ms.last().copied().unwrap_or(0.0),
        live.fresh_versions,
        live.versions_after,
        live.fresh_bytes as f64 / 1e6,
        live.bytes_after as f64 / 1e6,
        live.bytes_after as f64 / live.fresh_bytes.max(1) as f64,
        live.optimizations,
        live.switch_files,
        live.switch_embedded,
        live.switch_back_embedded,
    );
    if live.checkouts.is_empty() {
        return;
    }
    println!("\n| git checkout | batches | files changed | files deleted | chunks embedded | vectors from the cache | until up to date |");
    println!("|---|---|---|---|---|---|---|");
    for c in &live.checkouts {
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.1} s |",
            c.to, c.batches, c.files_changed, c.files_deleted, c.embedded, c.from_cache, c.seconds
        );
    }
}
