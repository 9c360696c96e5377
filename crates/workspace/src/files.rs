//! Reading indexed files for the window: only inside indexed roots, and
//! always as highlighted text.

use std::path::{Component, Path, PathBuf};

use quarry_chunk::Token;

use crate::Problem;

/// Largest file a preview reads.
pub const MAX_PREVIEW_BYTES: u64 = 16 * 1024 * 1024;
/// Most context lines a preview adds on each side.
pub const MAX_CONTEXT_LINES: u32 = 2_000;

/// Resolves `rel_path` under the indexed root `root` and makes sure the
/// result stays inside it: no absolute paths, no `..`, and no symlink that
/// leads out (the canonical path must still start with the canonical root).
pub fn resolve_inside(root: &str, rel_path: &str) -> Result<PathBuf, Problem> {
    let outside = || {
        Problem::new(
            format!("{rel_path} is not inside the repository {root}."),
            "Only files of indexed repositories can be opened.",
        )
    };
    let rel = Path::new(rel_path);
    if rel_path.is_empty()
        || rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(outside());
    }
    let gone = |e: std::io::Error| {
        Problem::new(
            format!("Cannot open {rel_path} in {root}: {e}"),
            "The file may have been moved or deleted since it was indexed; re-index the repository.",
        )
    };
    let root = Path::new(root).canonicalize().map_err(gone)?;
    let path = root.join(rel).canonicalize().map_err(gone)?;
    if !path.starts_with(&root) {
        return Err(outside());
    }
    Ok(path)
}

/// Lines of a file around a range, highlighted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Preview {
    /// 1-based line number of `lines[0]`.
    pub first_line: u32,
    /// The lines, as tokens.
    pub lines: Vec<Vec<Token>>,
    /// Lines in the whole file.
    pub total_lines: u32,
}

/// Reads `path` (already resolved by [`resolve_inside`]) and returns lines
/// `start_line - context ..= end_line + context`, clamped to the file.
pub fn preview(
    path: &Path,
    start_line: u32,
    end_line: u32,
    context: u32,
) -> Result<Preview, Problem> {
    let cannot = |e: std::io::Error| {
        Problem::new(
            format!("Cannot read {}: {e}", path.display()),
            crate::problem::io_hint(&e),
        )
    };
    let size = std::fs::metadata(path).map_err(cannot)?.len();
    if size > MAX_PREVIEW_BYTES {
        return Err(Problem::new(
            format!(
                "{} is too large to preview ({} MB).",
                path.display(),
                size / 1_000_000
            ),
            "Open it in the editor instead.",
        ));
    }
    let bytes = std::fs::read(path).map_err(cannot)?;
    let text = String::from_utf8_lossy(&bytes);
    let first = text.lines().next();
    let language = quarry_chunk::detect_language(path, first).unwrap_or("text");
    let total_lines = text.lines().count() as u32;
    let context = context.min(MAX_CONTEXT_LINES);
    let from = start_line.saturating_sub(context).max(1);
    let to = end_line
        .max(start_line)
        .saturating_add(context)
        .min(total_lines);
    // The whole file when it is small enough, so the window is highlighted
    // with its real surroundings; else just the window.
    let lines = if text.len() <= quarry_chunk::MAX_HIGHLIGHT_BYTES {
        let mut all = quarry_chunk::highlight(language, &text);
        all.truncate(to as usize);
        all.split_off((from as usize - 1).min(all.len()))
    } else {
        let window: Vec<&str> = text
            .lines()
            .skip(from as usize - 1)
            .take((to + 1).saturating_sub(from) as usize)
            .collect();
        quarry_chunk::highlight(language, &window.join("\n"))
    };
    Ok(Preview {
        first_line: from,
        lines,
        total_lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(lines: &[Vec<Token>]) -> Vec<String> {
        lines
            .iter()
            .map(|l| l.iter().map(|t| t.text.as_str()).collect())
            .collect()
    }

    #[test]
    fn previews_clamp_to_the_file_and_keep_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.py");
        let body: String = (1..=20).map(|i| format!("x{i} = {i}\n")).collect();
        std::fs::write(&file, body).unwrap();
        let p = preview(&file, 5, 6, 2).unwrap();
        assert_eq!(p.first_line, 3);
        assert_eq!(p.total_lines, 20);
        assert_eq!(
            text_of(&p.lines),
            ["x3 = 3", "x4 = 4", "x5 = 5", "x6 = 6", "x7 = 7", "x8 = 8"]
        );
        let p = preview(&file, 1, 2, 50).unwrap();
        assert_eq!((p.first_line, p.lines.len()), (1, 20));
        // A range past the end (the file shrank since indexing) is clamped.
        let p = preview(&file, 40, 45, 1).unwrap();
        assert!(p.lines.is_empty());
    }

    #[test]
    fn paths_that_leave_the_root_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(root.join("src/ok.rs"), "fn ok() {}").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
        let root_str = root.to_str().unwrap();
        assert!(resolve_inside(root_str, "src/ok.rs").is_ok());
        assert!(resolve_inside(root_str, "./src/ok.rs").is_ok());
        for bad in ["../secret.txt", "src/../../secret.txt", "/etc/passwd", ""] {
            let problem = resolve_inside(root_str, bad).unwrap_err();
            assert!(problem.message.contains("not inside"), "{bad}: {problem:?}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("src/link.txt"))
                .unwrap();
            std::os::unix::fs::symlink(dir.path(), root.join("up")).unwrap();
            for bad in ["src/link.txt", "up/secret.txt"] {
                let problem = resolve_inside(root_str, bad).unwrap_err();
                assert!(problem.message.contains("not inside"), "{bad}: {problem:?}");
            }
        }
        let gone = resolve_inside(root_str, "src/vanished.rs").unwrap_err();
        assert!(gone.hint.unwrap().contains("re-index"));
    }
}
