//! Late interaction (ColBERT's MaxSim) over a sentence encoder's token
//! vectors: the second stage that can run with what this machine has, the
//! default embedder itself. Each query token is matched with its most
//! similar document token, and the matches are averaged, so a candidate
//! that covers every part of the query beats one close to it on the whole.
//! The result is blended with the first stage's score by z-scores.

use std::path::Path;

use candle_core::{Device, Tensor, D};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;
use tokenizers::{Tokenizer, TruncationParams};

use super::generative::hybrid_scores;
use super::{RerankInput, Reranker};
use crate::bert::Bert;
use crate::device::model_dtype;
use crate::error::ModelError;
use crate::openvino::{self, OpenVinoBert, Precision};

/// Documents per forward pass on candle.
const BATCH: usize = 16;

/// What computes the token vectors.
enum Engine {
    Candle { model: Bert, device: Device },
    OpenVino(OpenVinoBert),
}

/// MaxSim over a BERT encoder's L2-normalised token vectors.
pub struct MaxSimReranker {
    name: String,
    engine: Engine,
    tokenizer: Tokenizer,
    max_tokens: usize,
    /// Weight of the first stage's z-score in the blend (0: MaxSim alone).
    alpha: f32,
}

impl MaxSimReranker {
    /// Loads the BERT encoder in `dir` (config.json, model.safetensors,
    /// tokenizer.json) into candle on `device`, truncating texts at
    /// `max_tokens`.
    pub fn load(
        dir: &Path,
        device: Device,
        max_tokens: usize,
        alpha: f32,
    ) -> Result<Self, ModelError> {
        check_alpha(alpha)?;
        let config_path = dir.join("config.json");
        let text = std::fs::read(&config_path).map_err(|e| ModelError::io(&config_path, e))?;
        let config: Config = serde_json::from_slice(&text).map_err(|e| ModelError::Config {
            path: config_path.clone(),
            message: e.to_string(),
        })?;
        let weights_path = dir.join("model.safetensors");
        let weights = std::fs::read(&weights_path).map_err(|e| ModelError::io(&weights_path, e))?;
        // bf16 on capable GPUs; token vectors come back as f32 either way.
        let vb = VarBuilder::from_buffered_safetensors(weights, model_dtype(&device), &device)?;
        let model = Bert::load(vb, &config)?;
        Self::with_engine(dir, Engine::Candle { model, device }, max_tokens, alpha)
    }

    /// [`MaxSimReranker::load`] on OpenVINO's CPU runtime at `library` (the
    /// embedder's engine, about 9× candle on CPUs with bf16 instructions).
    pub fn load_openvino(
        library: &Path,
        dir: &Path,
        precision: Precision,
        max_tokens: usize,
        alpha: f32,
    ) -> Result<Self, ModelError> {
        check_alpha(alpha)?;
        let encoder =
            OpenVinoBert::load_tokens(library, dir, precision).map_err(ModelError::Runtime)?;
        Self::with_engine(dir, Engine::OpenVino(encoder), max_tokens, alpha)
    }

    fn with_engine(
        dir: &Path,
        engine: Engine,
        max_tokens: usize,
        alpha: f32,
    ) -> Result<Self, ModelError> {
        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| {
            ModelError::Tokenizer(format!("cannot load {}: {e}", tokenizer_path.display()))
        })?;
        let max_tokens = max_tokens.max(4);
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let name = format!(
            "maxsim ({})",
            dir.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        );
        Ok(Self {
            name,
            engine,
            tokenizer,
            max_tokens,
            alpha,
        })
    }

    /// Unit token vectors of `texts` (special tokens left out), one
    /// `[tokens, dim]` tensor per text, in input order.
    fn token_vectors(&self, texts: &[&str]) -> Result<Vec<Tensor>, ModelError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].get_ids().len()));
        // Positions of the tokens that are not special ([CLS], [SEP]); the
        // first position when a text has nothing else.
        let kept = |i: usize| -> Vec<u32> {
            let keep: Vec<u32> = encodings[i]
                .get_special_tokens_mask()
                .iter()
                .enumerate()
                .filter(|(_, special)| **special == 0)
                .map(|(t, _)| t as u32)
                .collect();
            if keep.is_empty() {
                vec![0]
            } else {
                keep
            }
        };
        let mut out: Vec<Option<Tensor>> = vec![None; texts.len()];
        let mut start = 0;
        while start < order.len() {
            let longest = encodings[order[start]].get_ids().len().max(1);
            let (width, rows) = match &self.engine {
                Engine::Candle { .. } => (longest, BATCH),
                Engine::OpenVino(_) => {
                    // Few widths and the embedder's batch sizes (see there).
                    let width = openvino::padded_width(longest, self.max_tokens);
                    (width, openvino::BATCH_LIMITS.rows_for(width))
                }
            };
            let batch = &order[start..(start + rows).min(order.len())];
            start += batch.len();
            let ids: Vec<&[u32]> = batch.iter().map(|&i| encodings[i].get_ids()).collect();
            let vectors = self.encode(&ids, width)?;
            for (&i, tokens) in batch.iter().zip(vectors) {
                let keep = kept(i);
                let keep = Tensor::from_vec(keep.clone(), keep.len(), tokens.device())?;
                out[i] = Some(tokens.index_select(&keep, 0)?);
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Unit vectors of every position of `rows` padded to `width`: one
    /// `[width, dim]` f32 tensor per row.
    fn encode(&self, rows: &[&[u32]], width: usize) -> Result<Vec<Tensor>, ModelError> {
        match &self.engine {
            Engine::OpenVino(encoder) => {
                let dim = encoder.dim();
                encoder
                    .forward(rows, width)
                    .map_err(ModelError::Runtime)?
                    .into_iter()
                    .map(|values| Ok(Tensor::from_vec(values, (width, dim), &Device::Cpu)?))
                    .collect()
            }
            Engine::Candle { model, device } => {
                let (hidden, _) = model.forward_rows(rows, width, device)?;
                let norms = hidden
                    .sqr()?
                    .sum_keepdim(D::Minus1)?
                    .sqrt()?
                    .clamp(1e-12f32, f32::MAX)?;
                let unit = hidden.broadcast_div(&norms)?;
                (0..rows.len()).map(|row| Ok(unit.get(row)?)).collect()
            }
        }
    }

    /// MaxSim of `query` against each document: the mean over query
    /// tokens of the best cosine with any document token (−1 to 1).
    pub fn maxsim(&self, query: &str, documents: &[&str]) -> Result<Vec<f32>, ModelError> {
        if documents.is_empty() {
            return Ok(Vec::new());
        }
        let query = self
            .token_vectors(&[query])?
            .pop()
            .ok_or_else(|| ModelError::Rerank("the query has no tokens".into()))?;
        let documents = self.token_vectors(documents)?;
        documents
            .iter()
            .map(|doc| {
                let sims = query.matmul(&doc.t()?)?; // [query tokens, doc tokens]
                Ok(sims.max(D::Minus1)?.mean_all()?.to_scalar::<f32>()?)
            })
            .collect()
    }
}

impl Reranker for MaxSimReranker {
    fn name(&self) -> &str {
        &self.name
    }

    fn rerank(&self, input: &RerankInput<'_>) -> Result<Vec<f32>, ModelError> {
        let maxsim = self.maxsim(input.query, input.documents)?;
        if self.alpha == 0.0 || input.first_stage.is_empty() {
            return Ok(maxsim);
        }
        hybrid_scores(input.first_stage, &maxsim, self.alpha)
    }
}

/// The first stage's weight must be a share.
fn check_alpha(alpha: f32) -> Result<(), ModelError> {
    if (0.0..=1.0).contains(&alpha) {
        return Ok(());
    }
    Err(ModelError::Rerank(format!(
        "the first stage's weight must be within 0..=1, got {alpha}"
    )))
}
