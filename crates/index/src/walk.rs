//! Finding the files to index: a parallel walk that honours .gitignore,
//! .ignore, .quarryignore, git excludes and user globs, skips hidden files,
//! and reports (never fails on) what it cannot use.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use ignore::overrides::OverrideBuilder;
use ignore::{WalkBuilder, WalkState};

use crate::{IndexError, IndexOptions, Skipped};

/// A file the walk found, with what is needed to tell if it changed.
#[derive(Debug, Clone)]
pub struct FoundFile {
    /// Absolute path.
    pub abs: PathBuf,
    /// Path relative to the root, `/`-separated.
    pub rel: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
}

/// What a walk returns: usable files and the ones it skipped, with reasons.
#[derive(Debug, Default)]
pub struct WalkResult {
    /// Files to consider, sorted by relative path.
    pub files: Vec<FoundFile>,
    /// Files or directories left out, with why.
    pub skipped: Vec<Skipped>,
}

/// Walks `root` in parallel.
pub fn walk(root: &Path, options: &IndexOptions) -> Result<WalkResult, IndexError> {
    walk_under(root, root, options)
}

/// The walker with Quarry's rules for a walk of `start` (`root` or a
/// directory under it; paths stay relative to `root`, and the ignore files
/// of `start`'s ancestors apply).
fn builder(root: &Path, start: &Path, options: &IndexOptions) -> Result<WalkBuilder, IndexError> {
    let mut builder = WalkBuilder::new(start);
    builder
        .hidden(true)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(true)
        .ignore(true)
        .parents(true)
        // .gitignore applies even to a tree that is not (yet) a git repository.
        .require_git(false)
        .follow_links(true)
        .add_custom_ignore_filename(".quarryignore")
        .threads(options.threads.max(1));
    if !options.exclude.is_empty() {
        let mut overrides = OverrideBuilder::new(root);
        for glob in &options.exclude {
            overrides
                .add(&format!("!{glob}"))
                .map_err(|e| IndexError::BadGlob {
                    glob: glob.clone(),
                    reason: e.to_string(),
                })?;
        }
        builder.overrides(overrides.build().map_err(|e| IndexError::BadGlob {
            glob: options.exclude.join(", "),
            reason: e.to_string(),
        })?);
    }
    Ok(builder)
}

/// Walks the directory `start` under `root` (a directory that appeared, or
/// was renamed into the tree): its files, relative to `root`.
pub fn walk_under(
    root: &Path,
    start: &Path,
    options: &IndexOptions,
) -> Result<WalkResult, IndexError> {
    let builder = builder(root, start, options)?;
    let result = Mutex::new(WalkResult::default());
    let max = options.max_file_size;
    builder.build_parallel().run(|| {
        let result = &result;
        Box::new(move |entry| {
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => {
                    let path = error_path(&err).unwrap_or_else(|| root.to_path_buf());
                    push_skip(result, root, &path, describe_walk_error(&err));
                    return WalkState::Continue;
                }
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return WalkState::Continue;
            }
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(err) => {
                    push_skip(result, root, entry.path(), describe_walk_error(&err));
                    return WalkState::Continue;
                }
            };
            let found = match found_file(root, entry.path(), &meta, max) {
                Ok(found) => found,
                Err(reason) => {
                    push_skip(result, root, entry.path(), reason);
                    return WalkState::Continue;
                }
            };
            result.lock().expect("walk result lock").files.push(found);
            WalkState::Continue
        })
    });
    let mut result = result.into_inner().expect("walk result lock");
    result.files.sort_by(|a, b| a.rel.cmp(&b.rel));
    // A file reached through two symlinked directories is indexed once.
    result.files.dedup_by(|a, b| a.rel == b.rel);
    result.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(result)
}

/// Tells whether single paths are part of the tree the walk sees, without
/// walking it: a path is when every component, from the root down, is
/// listed by a one-level walk of its parent with the same rules (ignore
/// files, hidden entries, excludes). Directory listings are cached, so a
/// burst of changes in one directory costs one listing.
pub struct PathFilter {
    root: PathBuf,
    options: IndexOptions,
    listed: HashMap<PathBuf, HashSet<OsString>>,
}

impl PathFilter {
    /// A filter for `root` (canonical) with the run's options.
    pub fn new(root: &Path, options: &IndexOptions) -> Self {
        PathFilter {
            root: root.to_path_buf(),
            options: options.clone(),
            listed: HashMap::new(),
        }
    }

    /// True when the walk would reach `path` (which need not exist: a
    /// deleted path is "included" when its place is).
    pub fn includes(&mut self, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return false;
        };
        let mut dir = self.root.clone();
        for component in rel.components() {
            let name = component.as_os_str();
            if !self.listing(&dir).contains(name) && !self.would_list(&dir, name) {
                return false;
            }
            dir.push(name);
        }
        true
    }

    /// The names a one-level walk of `dir` yields.
    fn listing(&mut self, dir: &Path) -> &HashSet<OsString> {
        if !self.listed.contains_key(dir) {
            let names = builder(&self.root, dir, &self.options)
                .map(|mut b| {
                    b.max_depth(Some(1));
                    b.build()
                        .flatten()
                        .filter(|e| e.depth() == 1)
                        .map(|e| e.file_name().to_os_string())
                        .collect()
                })
                .unwrap_or_default();
            self.listed.insert(dir.to_path_buf(), names);
        }
        &self.listed[dir]
    }

    /// For a name that is not on disk (deleted): whether the rules would
    /// let it be listed. Hidden names never are; otherwise the ignore
    /// files decide, which needs the entry to exist, so a vanished path is
    /// judged by its parent only.
    fn would_list(&self, dir: &Path, name: &std::ffi::OsStr) -> bool {
        !dir.join(name).exists() && !name.to_string_lossy().starts_with('.')
    }

    /// Forgets cached listings (ignore files changed).
    pub fn clear(&mut self) {
        self.listed.clear();
    }
}

/// A file the walk accepts, or why it is skipped.
fn found_file(
    root: &Path,
    path: &Path,
    meta: &std::fs::Metadata,
    max: u64,
) -> Result<FoundFile, String> {
    if meta.len() > max {
        return Err(format!(
            "larger than the {} byte limit ({} bytes)",
            max,
            meta.len()
        ));
    }
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    Ok(FoundFile {
        abs: path.to_path_buf(),
        rel: relative(root, path),
        size: meta.len(),
        mtime_ns,
    })
}

/// One file as the walk would report it (the caller has checked the
/// ignore rules with [`PathFilter`]).
pub fn walk_file(root: &Path, path: &Path, options: &IndexOptions) -> WalkResult {
    let mut result = WalkResult::default();
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => match found_file(root, path, &meta, options.max_file_size) {
            Ok(found) => result.files.push(found),
            Err(reason) => result.skipped.push(Skipped {
                path: relative(root, path),
                reason,
            }),
        },
        Ok(_) => {}
        Err(err) => result.skipped.push(Skipped {
            path: relative(root, path),
            reason: match err.kind() {
                std::io::ErrorKind::PermissionDenied => "permission denied".into(),
                _ => err.to_string(),
            },
        }),
    }
    result
}

fn push_skip(result: &Mutex<WalkResult>, root: &Path, path: &Path, reason: String) {
    tracing::debug!(path = %path.display(), %reason, "skipped");
    result
        .lock()
        .expect("walk result lock")
        .skipped
        .push(Skipped {
            path: relative(root, path),
            reason,
        });
}

/// `path` relative to `root`, `/`-separated, for storage and display.
pub fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

fn error_path(err: &ignore::Error) -> Option<PathBuf> {
    match err {
        ignore::Error::WithPath { path, .. } => Some(path.clone()),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        ignore::Error::Loop { child, .. } => Some(child.clone()),
        ignore::Error::Partial(errs) => errs.iter().find_map(error_path),
        _ => None,
    }
}

fn describe_walk_error(err: &ignore::Error) -> String {
    match err {
        ignore::Error::Loop { ancestor, .. } => {
            format!("symlink loop back to {}", ancestor.display())
        }
        ignore::Error::WithPath { err, .. }
        | ignore::Error::WithDepth { err, .. }
        | ignore::Error::WithLineNumber { err, .. } => describe_walk_error(err),
        ignore::Error::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
            "permission denied".to_string()
        }
        ignore::Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            "vanished while walking".to_string()
        }
        other => other.to_string(),
    }
}
