//! Qwen3-Reranker's pointwise yes/no judgement (0.6B/4B/8B, and
//! CoREB-Reranker: the 4B model with its LoRA adapter merged at load).
//!
//! Each document is judged alone: the model card's chat prompt asks whether
//! the document meets the query under a task instruction, and the score is
//! the probability of "yes" against "no" at the answer position. The prompt
//! and truncation follow the card token for token, because the model was
//! trained on exactly that text.

use super::{RerankInput, Reranker};
use crate::decoder::{length_batches, DecoderLm};
use crate::error::ModelError;
use candle_core::Device;
use std::path::Path;

/// The system turn and the opening of the user turn, before the body.
pub const PREFIX: &str = "<|im_start|>system\nJudge whether the Document meets the requirements \
based on the Query and the Instruct provided. Note that the answer can only be \"yes\" or \
\"no\".<|im_end|>\n<|im_start|>user\n";

/// The close of the user turn and an assistant turn with an empty thought,
/// after which the model answers "yes" or "no".
pub const SUFFIX: &str = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";

/// The user turn's text: instruction, query, document (the card's format).
pub fn body(instruction: &str, query: &str, document: &str) -> String {
    format!("<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}")
}

/// The whole prompt as text, untruncated: what the model reads when the
/// document fits.
pub fn prompt_text(instruction: &str, query: &str, document: &str) -> String {
    format!("{PREFIX}{}{SUFFIX}", body(instruction, query, document))
}

/// A Qwen3-Reranker-style model and how it is run.
#[derive(Debug)]
pub struct PointwiseReranker {
    name: String,
    lm: DecoderLm,
    prefix_ids: Vec<u32>,
    suffix_ids: Vec<u32>,
    yes_id: u32,
    no_id: u32,
    /// An instruction used instead of the task's own
    /// ([`super::RerankTask::instruction`]), for a model trained on other
    /// wording.
    pub instruction: Option<String>,
    /// The longest prompt in tokens; a longer document loses its end (8192,
    /// the card's length).
    pub max_length: usize,
    /// Prompts per forward pass (fewer when long: a batch also stays under
    /// a padded-token budget); they are sorted by length first, so a batch
    /// pads little.
    pub batch_size: usize,
}

impl PointwiseReranker {
    /// Loads the model in `dir`, merging the LoRA adapter in `adapter` when
    /// given (CoREB-Reranker); `name` is what timings and people see.
    pub fn load(
        name: impl Into<String>,
        dir: &Path,
        adapter: Option<&Path>,
        device: &Device,
    ) -> Result<Self, ModelError> {
        Self::new(name, DecoderLm::load(dir, adapter, device)?)
    }

    /// Wraps a loaded model; fails when "yes" or "no" is not one token of
    /// its vocabulary (then it is not a Qwen3-Reranker).
    pub fn new(name: impl Into<String>, lm: DecoderLm) -> Result<Self, ModelError> {
        let encode = |text: &str| -> Result<Vec<u32>, ModelError> {
            Ok(lm
                .tokenizer()
                .encode(text, false)
                .map_err(|e| ModelError::Tokenizer(e.to_string()))?
                .get_ids()
                .to_vec())
        };
        let prefix_ids = encode(PREFIX)?;
        let suffix_ids = encode(SUFFIX)?;
        let yes_id = lm.token_id("yes")?;
        let no_id = lm.token_id("no")?;
        Ok(Self {
            name: name.into(),
            lm,
            prefix_ids,
            suffix_ids,
            yes_id,
            no_id,
            instruction: None,
            max_length: 8192,
            batch_size: 8,
        })
    }

    /// The underlying model, for callers that need its logits or tokenizer.
    pub fn model(&self) -> &DecoderLm {
        &self.lm
    }

    /// The prompt's token ids: prefix, body cut to fit `max_length`, suffix.
    ///
    /// As the card does, the body is tokenized alone and its end is cut, so
    /// the document loses its tail; only a query that by itself overflows
    /// the budget is cut as well (logged by [`PointwiseReranker::score`]).
    pub fn prompt_ids(
        &self,
        instruction: &str,
        query: &str,
        document: &str,
    ) -> Result<Vec<u32>, ModelError> {
        Ok(self.prompt(instruction, query, document)?.0)
    }

    /// [`PointwiseReranker::prompt_ids`], and whether the cut reached into
    /// the instruction or query.
    fn prompt(
        &self,
        instruction: &str,
        query: &str,
        document: &str,
    ) -> Result<(Vec<u32>, bool), ModelError> {
        let fixed = self.prefix_ids.len() + self.suffix_ids.len();
        let room = self.max_length.checked_sub(fixed).filter(|r| *r > 0);
        let Some(room) = room else {
            return Err(ModelError::Rerank(format!(
                "max_length {} leaves no room for the query and document (the prompt's fixed \
                 part is {fixed} tokens)",
                self.max_length
            )));
        };
        let text = body(instruction, query, document);
        let encoding = self
            .lm
            .tokenizer()
            .encode(text.as_str(), false)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let mut body_ids = encoding.get_ids().to_vec();
        let mut query_cut = false;
        if body_ids.len() > room {
            let document_start = text.len() - document.len();
            let before_document = encoding
                .get_offsets()
                .iter()
                .take_while(|(start, _)| *start < document_start)
                .count();
            query_cut = room < before_document;
            body_ids.truncate(room);
        }
        let mut ids = Vec::with_capacity(fixed + body_ids.len());
        ids.extend_from_slice(&self.prefix_ids);
        ids.extend(body_ids);
        ids.extend_from_slice(&self.suffix_ids);
        Ok((ids, query_cut))
    }

    /// P("yes") for each document under `instruction`, in input order.
    pub fn score(
        &self,
        instruction: &str,
        query: &str,
        documents: &[&str],
    ) -> Result<Vec<f32>, ModelError> {
        let mut prompts = Vec::with_capacity(documents.len());
        let mut query_cut = false;
        for document in documents {
            let (ids, cut) = self.prompt(instruction, query, document)?;
            prompts.push(ids);
            query_cut |= cut;
        }
        if query_cut {
            tracing::warn!(
                reranker = %self.name,
                max_length = self.max_length,
                "the instruction and query alone exceed the reranker's max_length; the query is cut"
            );
        }
        let lengths: Vec<usize> = prompts.iter().map(Vec::len).collect();
        let batches = length_batches(&lengths, self.batch_size);
        let (yes, no) = (self.yes_id as usize, self.no_id as usize);
        let started = std::time::Instant::now();
        let mut scores = vec![0f32; prompts.len()];
        for batch in &batches {
            let ids: Vec<Vec<u32>> = batch.iter().map(|&i| prompts[i].clone()).collect();
            let logits: Vec<Vec<f32>> = self.lm.last_logits(&ids)?.to_vec2()?;
            for (&i, row) in batch.iter().zip(&logits) {
                // softmax([no, yes])[yes]
                scores[i] = 1.0 / (1.0 + (row[no] - row[yes]).exp());
            }
        }
        tracing::debug!(
            reranker = %self.name,
            documents = prompts.len(),
            batches = batches.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "pointwise scores"
        );
        Ok(scores)
    }
}

impl Reranker for PointwiseReranker {
    fn name(&self) -> &str {
        &self.name
    }

    fn rerank(&self, input: &RerankInput<'_>) -> Result<Vec<f32>, ModelError> {
        let instruction = self
            .instruction
            .as_deref()
            .unwrap_or(input.task.instruction());
        self.score(instruction, input.query, input.documents)
    }
}
