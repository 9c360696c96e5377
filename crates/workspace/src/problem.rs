//! Errors as a user reads them: what went wrong, and what to do about it.

use quarry_index::IndexError;
use quarry_models::ModelError;
use quarry_search::SearchError;
use quarry_store::StoreError;

/// A failure explained for a person, not a log: the desktop app shows
/// `message` with `hint` under it, the CLI prints both.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, thiserror::Error)]
#[error("{message}")]
pub struct Problem {
    /// What went wrong, in a sentence.
    pub message: String,
    /// What the user can do about it, when there is something.
    pub hint: Option<String>,
}

impl Problem {
    /// A problem with a hint.
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Problem {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// A problem with nothing for the user to do (a bug, or out of their hands).
    pub fn bare(message: impl Into<String>) -> Self {
        Problem {
            message: message.into(),
            hint: None,
        }
    }
}

/// True when `text` (an error message, possibly from deep inside a library
/// that only kept the text) says the disk is full.
fn says_disk_full(text: &str) -> bool {
    text.contains("No space left on device") || text.contains("os error 28")
}

const DISK_FULL_HINT: &str =
    "The disk is full. Free some space (or remove a large repository from Quarry) and try again; what was indexed so far is kept.";

/// The hint for an I/O error.
pub(crate) fn io_hint(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => {
            "Quarry is not allowed to access it: check the permissions.".into()
        }
        std::io::ErrorKind::NotFound => "It does not exist (any more).".into(),
        _ if says_disk_full(&e.to_string()) => DISK_FULL_HINT.into(),
        _ => "Check that the disk is available and try again.".into(),
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        let text = e.to_string();
        if says_disk_full(&text) {
            return Problem::new(
                format!("The index could not be written: {text}"),
                DISK_FULL_HINT,
            );
        }
        match e {
            StoreError::Missing { .. } => Problem::new(
                "Nothing is indexed yet.",
                "Add a repository to search it.",
            ),
            StoreError::NotAnIndex { dir, reason } => Problem::new(
                format!("{} is not a Quarry index ({reason}).", dir.display()),
                "Point Quarry at an empty directory or an existing index (QUARRY_DB).",
            ),
            StoreError::Damaged { dir, reason } => Problem::new(
                format!("The index at {} is damaged ({reason}).", dir.display()),
                "Rebuild it: remove the repositories and add them again, or run `quarry index --rebuild DIR`.",
            ),
            e @ (StoreError::ModelMismatch { .. } | StoreError::SchemaMismatch { .. }) => {
                Problem::new(
                    e.to_string(),
                    "Rebuild the index with `quarry index --rebuild DIR`.",
                )
            }
            StoreError::Io { path, source, .. } => Problem::new(
                format!("Cannot access {}: {source}", path.display()),
                io_hint(&source),
            ),
            other => Problem::bare(format!("The index failed: {other}")),
        }
    }
}

impl From<ModelError> for Problem {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::Unavailable(report) => Problem::new(
                format!(
                    "The search model {} could not be downloaded.",
                    report.model_id
                ),
                format!(
                    "Check the internet connection and restart Quarry, or install it by hand. {report}"
                ),
            ),
            ModelError::Checksum { .. } | ModelError::MissingFile { .. } => Problem::new(
                format!("The search model's files are damaged: {e}"),
                "Delete the model folder and restart Quarry to download it again.",
            ),
            ModelError::Io { path, source } => Problem::new(
                format!("Cannot access {}: {source}", path.display()),
                io_hint(&source),
            ),
            other => Problem::bare(format!("The search model failed: {other}")),
        }
    }
}

impl From<IndexError> for Problem {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::Root { path, reason } => Problem::new(
                format!("Cannot index {}: {reason}", path.display()),
                "Check that the folder exists and that you may read it.",
            ),
            IndexError::BadGlob { glob, reason } => Problem::new(
                format!("The exclude pattern `{glob}` is not valid: {reason}"),
                "Fix it in Settings.",
            ),
            IndexError::Store(e) => e.into(),
            IndexError::Model(e) => e.into(),
            IndexError::Cancelled => Problem::new(
                "Indexing was cancelled.",
                "What was indexed is kept and searchable; re-index to finish.",
            ),
        }
    }
}

impl From<SearchError> for Problem {
    fn from(e: SearchError) -> Self {
        match e {
            SearchError::Store(e) => e.into(),
            SearchError::Model(e) => e.into(),
            SearchError::EmptyQuery => {
                Problem::new("The query is empty.", "Type what to look for.")
            }
            SearchError::BadGlob { .. } => {
                Problem::new(e.to_string(), "Use a glob like `src/**/*.rs` or `tests/`.")
            }
            SearchError::UnknownRepo(_) => {
                Problem::new(e.to_string(), "Pick one of the indexed repositories.")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_recognised_wherever_the_message_comes_from() {
        let io = std::io::Error::from_raw_os_error(28);
        assert_eq!(io_hint(&io), DISK_FULL_HINT);
        let store = StoreError::Data("write failed: No space left on device".into());
        assert_eq!(Problem::from(store).hint.as_deref(), Some(DISK_FULL_HINT));
    }

    #[test]
    fn no_network_on_first_run_says_how_to_get_the_model() {
        let report = quarry_models::UnavailableReport {
            model_id: "org/model".into(),
            dir: "/home/u/.local/share/quarry/models/org/model".into(),
            files: vec![("model.safetensors".into(), None)],
            attempts: vec![quarry_models::FetchAttempt {
                source: "Hugging Face Hub".into(),
                reason: "connection refused".into(),
            }],
            pip_package: None,
        };
        let problem = Problem::from(ModelError::Unavailable(Box::new(report)));
        assert!(
            problem.message.contains("could not be downloaded"),
            "{problem:?}"
        );
        let hint = problem.hint.unwrap();
        assert!(hint.contains("internet connection"), "{hint}");
        assert!(hint.contains("model.safetensors"), "{hint}");
    }

    #[test]
    fn every_user_fixable_error_says_what_to_do() {
        let dir = std::path::PathBuf::from("/x");
        for problem in [
            Problem::from(StoreError::Missing { dir: dir.clone() }),
            Problem::from(StoreError::Damaged {
                dir: dir.clone(),
                reason: "r".into(),
            }),
            Problem::from(IndexError::Root {
                path: dir.clone(),
                reason: "Permission denied".into(),
            }),
            Problem::from(IndexError::Cancelled),
            Problem::from(SearchError::EmptyQuery),
            Problem::from(ModelError::MissingFile { path: dir.clone() }),
        ] {
            assert!(problem.hint.is_some(), "{problem:?}");
        }
    }
}
