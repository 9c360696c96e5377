//! Late interaction (ColBERT's MaxSim) over a sentence encoder's token
//! vectors: the second stage that can run with what this machine has, the
//! default embedder itself. Each query token is matched with its most
//! similar document token, and the matches are averaged, so a candidate
//! that covers every part of the query beats one close to it on the whole.
//! The result is blended with the first stage's score by z-scores.

use std::path::Path;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Tokenizer, TruncationParams};

use super::generative::hybrid_scores;
use super::{RerankInput, Reranker};
use crate::error::ModelError;

/// Documents per forward pass.
const BATCH: usize = 16;

/// MaxSim over a BERT encoder's L2-normalised token vectors.
pub struct MaxSimReranker {
    name: String,
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    /// Weight of the first stage's z-score in the blend (0: MaxSim alone).
    alpha: f32,
}

impl MaxSimReranker {
    /// Loads the BERT encoder in `dir` (config.json, model.safetensors,
    /// tokenizer.json), truncating texts at `max_tokens`.
    pub fn load(
        dir: &Path,
        device: Device,
        max_tokens: usize,
        alpha: f32,
    ) -> Result<Self, ModelError> {
        if !(0.0..=1.0).contains(&alpha) {
            return Err(ModelError::Rerank(format!(
                "the first stage's weight must be within 0..=1, got {alpha}"
            )));
        }
        let config_path = dir.join("config.json");
        let text = std::fs::read(&config_path).map_err(|e| ModelError::io(&config_path, e))?;
        let config: Config = serde_json::from_slice(&text).map_err(|e| ModelError::Config {
            path: config_path.clone(),
            message: e.to_string(),
        })?;
        let weights_path = dir.join("model.safetensors");
        let weights = std::fs::read(&weights_path).map_err(|e| ModelError::io(&weights_path, e))?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)?;
        let model = BertModel::load(vb, &config)?;
        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| {
            ModelError::Tokenizer(format!("cannot load {}: {e}", tokenizer_path.display()))
        })?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens.max(4),
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
            model,
            tokenizer,
            device,
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
        let mut out: Vec<Option<Tensor>> = vec![None; texts.len()];
        for batch in order.chunks(BATCH) {
            let len = batch
                .iter()
                .map(|&i| encodings[i].get_ids().len())
                .max()
                .unwrap_or(1)
                .max(1);
            let mut ids = vec![0u32; batch.len() * len];
            let mut mask = vec![0u32; batch.len() * len];
            for (row, &i) in batch.iter().enumerate() {
                let row_ids = encodings[i].get_ids();
                ids[row * len..row * len + row_ids.len()].copy_from_slice(row_ids);
                mask[row * len..row * len + row_ids.len()].fill(1);
            }
            let ids = Tensor::from_vec(ids, (batch.len(), len), &self.device)?;
            let mask = Tensor::from_vec(mask, (batch.len(), len), &self.device)?;
            let hidden = self
                .model
                .forward(&ids, &ids.zeros_like()?, Some(&mask))?
                .to_dtype(DType::F32)?;
            let norms = hidden
                .sqr()?
                .sum_keepdim(D::Minus1)?
                .sqrt()?
                .clamp(1e-12f32, f32::MAX)?;
            let unit = hidden.broadcast_div(&norms)?;
            for (row, &i) in batch.iter().enumerate() {
                let keep: Vec<u32> = encodings[i]
                    .get_special_tokens_mask()
                    .iter()
                    .enumerate()
                    .filter(|(_, special)| **special == 0)
                    .map(|(t, _)| t as u32)
                    .collect();
                let tokens = unit.get(row)?;
                out[i] = Some(if keep.is_empty() {
                    tokens.narrow(0, 0, 1)?
                } else {
                    let keep = Tensor::from_vec(keep.clone(), keep.len(), &self.device)?;
                    tokens.index_select(&keep, 0)?
                });
            }
        }
        Ok(out.into_iter().flatten().collect())
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
