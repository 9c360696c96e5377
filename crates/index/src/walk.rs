//! Finding the files to index: a parallel walk that honours .gitignore,
//! .ignore, .quarryignore, git excludes and user globs, skips hidden files,
//! and reports (never fails on) what it cannot use.

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
    let mut builder = WalkBuilder::new(root);
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
            if meta.len() > max {
                push_skip(
                    result,
                    root,
                    entry.path(),
                    format!("larger than the {} byte limit ({} bytes)", max, meta.len()),
                );
                return WalkState::Continue;
            }
            let mtime_ns = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_nanos() as i64)
                .unwrap_or(0);
            let found = FoundFile {
                abs: entry.path().to_path_buf(),
                rel: relative(root, entry.path()),
                size: meta.len(),
                mtime_ns,
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
