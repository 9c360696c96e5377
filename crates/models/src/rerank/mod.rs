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
