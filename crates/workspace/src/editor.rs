//! Opening a file at a line in the user's editor.
//!
//! The command is run directly, never through a shell, so nothing in a path
//! (an indexed repository's file names are untrusted) can inject commands.

use std::path::Path;

use crate::Problem;

/// Splits a command line into words: whitespace separates, single or double
/// quotes group (no escapes, no variables: this is not a shell).
pub fn split_command(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for ch in command.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(ch);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// True when `program` is an executable on `PATH`.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let candidate = dir.join(program);
            candidate.is_file() || candidate.with_extension("exe").is_file()
        })
    })
}

/// The system's "open with the default application" command.
fn system_opener() -> &'static str {
    if cfg!(target_os = "macos") {
        "open {path}"
    } else if cfg!(windows) {
        "explorer {path}"
    } else {
        "xdg-open {path}"
    }
}

/// The command used when the settings name none: VS Code's `code -g` when
/// it is installed, else `$VISUAL` / `$EDITOR` with `+line`, else the
/// system opener.
pub fn default_editor_command() -> String {
    if on_path("code") {
        return "code -g {path}:{line}".into();
    }
    for var in ["VISUAL", "EDITOR"] {
        if let Some(editor) = std::env::var(var).ok().filter(|v| !v.trim().is_empty()) {
            return format!("{editor} +{{line}} {{path}}");
        }
    }
    system_opener().into()
}

/// The program and arguments `template` gives for `path` at `line`. A
/// template that names neither placeholder gets the path appended.
pub fn editor_invocation(template: &str, path: &Path, line: u32) -> Vec<String> {
    let path = path.to_string_lossy();
    let mut words = split_command(template);
    if !template.contains("{path}") {
        words.push("{path}".into());
    }
    words
        .into_iter()
        .map(|w| {
            w.replace("{path}", &path)
                .replace("{line}", &line.to_string())
        })
        .collect()
}

/// Starts the editor on `path` at `line` and returns without waiting for it.
pub fn open_in_editor(template: &str, path: &Path, line: u32) -> Result<(), Problem> {
    let words = editor_invocation(template, path, line);
    let (program, args) = words
        .split_first()
        .ok_or_else(|| Problem::new("The editor command is empty", "Set one in Settings."))?;
    std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| {
            Problem::new(
                format!("Cannot start the editor `{program}`: {e}"),
                "Set the editor command in Settings, e.g. `code -g {path}:{line}`.",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_like_a_user_expects_without_a_shell() {
        assert_eq!(
            split_command(r#"  "/opt/My Editor/bin/ed" --goto '{path}:{line}' "#),
            ["/opt/My Editor/bin/ed", "--goto", "{path}:{line}"]
        );
        assert_eq!(split_command("a '' b"), ["a", "", "b"]);
        assert!(split_command("   ").is_empty());
    }

    #[test]
    fn placeholders_are_filled_and_a_path_never_becomes_several_words() {
        let path = Path::new("/repo/we ird; rm -rf ~/x.rs");
        assert_eq!(
            editor_invocation("code -g {path}:{line}", path, 42),
            ["code", "-g", "/repo/we ird; rm -rf ~/x.rs:42"]
        );
        assert_eq!(
            editor_invocation("subl", path, 3),
            ["subl", "/repo/we ird; rm -rf ~/x.rs"]
        );
    }

    #[test]
    fn a_missing_editor_is_a_problem_with_a_hint() {
        let problem =
            open_in_editor("/nonexistent/editor {path}", Path::new("/tmp/x"), 1).unwrap_err();
        assert!(problem.message.contains("/nonexistent/editor"));
        assert!(problem.hint.is_some());
    }
}
