//! Second-stage rerankers: given a query and the first stage's candidates,
//! a better relevance score for each. Every architecture the research
//! behind Quarry names sits behind one trait, so search runs any of them
//! the same way, on the GPU when there is one:
//!
//! * [`cross_encoder`]: BERT and XLM-RoBERTa sequence classifiers
//!   (ms-marco MiniLM, bge-reranker-base / v2-m3);
//! * [`pointwise`]: Qwen3-Reranker's yes/no judgement (and CoREB-Reranker,
//!   its 4B model with a LoRA adapter merged at load time);
//! * [`generative`]: ERank's integer score, blended with the first stage's;
//! * [`listwise`]: CodeRankLLM's sliding-window permutation.

pub mod cross_encoder;
pub mod generative;
pub mod late_interaction;
pub mod listwise;
pub mod pointwise;

use crate::error::ModelError;

/// What the query is, so instruction-following rerankers are told the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RerankTask {
    /// A description in words of the code wanted.
    TextToCode,
    /// A snippet: similar code wanted.
    CodeToCode,
    /// An issue report: the code to change wanted.
    IssueToCode,
}

impl RerankTask {
    /// The task instruction given to instruction-following rerankers and
    /// embedders (Qwen3-Reranker's `<Instruct>`, Qwen3-Embedding's and
    /// BGE-Coder's task line).
    pub fn instruction(self) -> &'static str {
        match self {
            RerankTask::TextToCode => {
                "Given a description of what code does, retrieve the code that does it"
            }
            RerankTask::CodeToCode => {
                "Given a code snippet, retrieve code that is similar to it or does the same"
            }
            RerankTask::IssueToCode => {
                "Given a GitHub issue, retrieve the functions that must be changed to resolve it"
            }
        }
    }
}

/// One reranking call: the query and the first stage's candidates.
#[derive(Debug, Clone, Copy)]
pub struct RerankInput<'a> {
    pub task: RerankTask,
    pub query: &'a str,
    /// Candidate texts, best first by the first stage.
    pub documents: &'a [&'a str],
    /// The first stage's score of each document (same order; higher is
    /// better), for rerankers that blend them in (ERank).
    pub first_stage: &'a [f32],
}

/// A second-stage scorer. `Send + Sync`, so one loaded model serves every
/// search of a long-lived process.
pub trait Reranker: Send + Sync {
    /// The model's name, for people and timings.
    fn name(&self) -> &str;

    /// One score per document, in input order, higher meaning more
    /// relevant. Scores compare within one call only.
    fn rerank(&self, input: &RerankInput<'_>) -> Result<Vec<f32>, ModelError>;
}

/// How a reranker reads its candidates; the architectures of one kind
/// share a loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RerankerKind {
    /// A sequence classifier over (query, document) pairs.
    CrossEncoder,
    /// Qwen3-Reranker's yes/no judgement of each document.
    Pointwise,
    /// ERank: an integer score written per document.
    Generative,
    /// CodeRankLLM: a permutation of a window of documents.
    Listwise,
}

impl std::str::FromStr for RerankerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "cross-encoder" | "crossencoder" => Ok(RerankerKind::CrossEncoder),
            "pointwise" => Ok(RerankerKind::Pointwise),
            "generative" | "erank" => Ok(RerankerKind::Generative),
            "listwise" => Ok(RerankerKind::Listwise),
            other => Err(format!(
                "unknown reranker kind {other:?} (expected cross-encoder, pointwise, generative or listwise)"
            )),
        }
    }
}

/// A reranker the research behind Quarry names, by its Hugging Face id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownReranker {
    /// Hugging Face repository id.
    pub id: &'static str,
    pub kind: RerankerKind,
}

/// LoRA adapters (CoREB-Reranker over Qwen3-Reranker-4B) load from a local
/// directory: [`load_reranker`] merges them into the base model.
static KNOWN_RERANKERS: [KnownReranker; 8] = [
    KnownReranker {
        id: "cross-encoder/ms-marco-MiniLM-L-6-v2",
        kind: RerankerKind::CrossEncoder,
    },
    KnownReranker {
        id: "BAAI/bge-reranker-base",
        kind: RerankerKind::CrossEncoder,
    },
    KnownReranker {
        id: "BAAI/bge-reranker-v2-m3",
        kind: RerankerKind::CrossEncoder,
    },
    KnownReranker {
        id: "Qwen/Qwen3-Reranker-0.6B",
        kind: RerankerKind::Pointwise,
    },
    KnownReranker {
        id: "Qwen/Qwen3-Reranker-4B",
        kind: RerankerKind::Pointwise,
    },
    KnownReranker {
        id: "Qwen/Qwen3-Reranker-8B",
        kind: RerankerKind::Pointwise,
    },
    KnownReranker {
        id: "Alibaba-NLP/ERank-4B",
        kind: RerankerKind::Generative,
    },
    KnownReranker {
        id: "nomic-ai/CodeRankLLM",
        kind: RerankerKind::Listwise,
    },
];

impl KnownReranker {
    /// Its files, for fetching and finding them like an embedding model's
    /// (`<models>/<owner>--<name>/`); single-file weights, so a sharded
    /// checkpoint is placed there by hand.
    pub fn files(&self) -> crate::ModelSpec {
        crate::ModelSpec {
            id: self.id,
            dim: 0,
            max_tokens: 0,
            files: &["config.json", "model.safetensors", "tokenizer.json"],
            sha256: &[],
            pip_package: None,
            family: crate::ModelFamily::Bert,
        }
    }
}

/// Every reranker Quarry knows by name.
pub fn known_rerankers() -> &'static [KnownReranker] {
    &KNOWN_RERANKERS
}

/// Looks a reranker up by id (case-insensitive; the name without owner
/// also matches).
pub fn find_reranker(id: &str) -> Option<&'static KnownReranker> {
    let id = id.trim();
    KNOWN_RERANKERS.iter().find(|r| {
        r.id.eq_ignore_ascii_case(id)
            || r.id
                .rsplit('/')
                .next()
                .is_some_and(|name| name.eq_ignore_ascii_case(id))
    })
}

/// What a model directory holds, judged from its files: a classifier's
/// `architectures`, an adapter's `adapter_config.json`, or a decoder whose
/// use its name tells (ERank, CodeRankLLM; else Qwen3-Reranker's yes/no).
pub fn detect_kind(dir: &std::path::Path) -> Result<RerankerKind, ModelError> {
    if dir.join("adapter_config.json").is_file() {
        return Ok(RerankerKind::Pointwise);
    }
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|_| ModelError::MissingFile {
        path: config_path.clone(),
    })?;
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ModelError::Config {
            path: config_path.clone(),
            message: e.to_string(),
        })?;
    let architecture = config["architectures"][0].as_str().unwrap_or_default();
    if architecture.ends_with("ForSequenceClassification") {
        return Ok(RerankerKind::CrossEncoder);
    }
    if architecture.ends_with("ForCausalLM") {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        return Ok(if name.contains("erank") {
            RerankerKind::Generative
        } else if name.contains("coderankllm") || name.contains("listwise") {
            RerankerKind::Listwise
        } else {
            RerankerKind::Pointwise
        });
    }
    Err(ModelError::Config {
        path: config_path,
        message: format!(
            "`{architecture}` is not a reranker Quarry runs (sequence classifiers, Qwen2/Qwen3 decoders, or a LoRA adapter)"
        ),
    })
}

/// Loads the reranker in `dir` as `kind` (detected when `None`) on
/// `device`. An adapter directory is merged into its base model, found at
/// `base` or else at the adapter config's `base_model_name_or_path`
/// (relative to the adapter directory).
pub fn load_reranker(
    name: &str,
    dir: &std::path::Path,
    kind: Option<RerankerKind>,
    base: Option<&std::path::Path>,
    device: &candle_core::Device,
) -> Result<Box<dyn Reranker>, ModelError> {
    let kind = match kind {
        Some(kind) => kind,
        None => detect_kind(dir)?,
    };
    let adapter = dir.join("adapter_config.json").is_file().then_some(dir);
    let model_dir = match (adapter, base) {
        (None, _) => dir.to_path_buf(),
        (Some(_), Some(base)) => base.to_path_buf(),
        (Some(adapter), None) => adapter_base(adapter)?,
    };
    Ok(match kind {
        RerankerKind::CrossEncoder => {
            Box::new(cross_encoder::CrossEncoder::load(dir, device.clone())?.with_name(name))
        }
        RerankerKind::Pointwise => Box::new(pointwise::PointwiseReranker::load(
            name, &model_dir, adapter, device,
        )?),
        RerankerKind::Generative => Box::new(generative::GenerativeReranker::load(
            &model_dir,
            adapter,
            device,
            name,
            generative::GenerativeOptions::default(),
        )?),
        RerankerKind::Listwise => Box::new(listwise::ListwiseReranker::load(
            &model_dir,
            adapter,
            device,
            name,
            listwise::ListwiseOptions::default(),
        )?),
    })
}

/// The base model directory an adapter names (`base_model_name_or_path`),
/// relative to the adapter when not absolute.
fn adapter_base(adapter: &std::path::Path) -> Result<std::path::PathBuf, ModelError> {
    let path = adapter.join("adapter_config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ModelError::Config {
            path: path.clone(),
            message: e.to_string(),
        })?;
    let base = config["base_model_name_or_path"]
        .as_str()
        .unwrap_or_default();
    let candidate = adapter.join(base);
    if base.is_empty() || !candidate.join("config.json").is_file() {
        return Err(ModelError::Config {
            path,
            message: format!(
                "the adapter's base model `{base}` is not a directory next to it; give the base model's directory"
            ),
        });
    }
    Ok(candidate)
}
