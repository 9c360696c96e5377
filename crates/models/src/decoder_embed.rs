//! Decoder embedders: Qwen3-Embedding and CodeR / BGE-Code-v1 (Qwen2).
//!
//! Both are a [`DecoderLm`] read at the last token (last-token pooling) and
//! L2-normalised; they differ only in how a query is phrased and whether a
//! token closes every text, which [`DecoderEmbedStyle`] holds so a new model
//! of the kind is a description, not code.

use crate::decoder::{length_batches, DecoderLm};
use crate::error::ModelError;
use candle_core::{Device, D};
use std::path::Path;

/// How a decoder embedder family formats its inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderEmbedStyle {
    /// The query template, with `{task}` and `{query}` placeholders;
    /// documents are embedded as they are.
    pub query_format: String,
    /// A token appended to every text after tokenisation: Qwen3-Embedding
    /// was trained with `<|endoftext|>` closing each input (its current
    /// tokenizer.json appends it; older copies and the fixture do not, so
    /// Quarry appends it itself and never lets the tokenizer do it).
    pub append_token: Option<String>,
}

impl DecoderEmbedStyle {
    /// Qwen3-Embedding (0.6B/4B/8B), as its model card formats inputs.
    pub fn qwen3_embedding() -> Self {
        Self {
            query_format: "Instruct: {task}\nQuery:{query}".to_string(),
            append_token: Some("<|endoftext|>".to_string()),
        }
    }

    /// CodeR / BGE-Code-v1 (Qwen2), as FlagEmbedding's BGE_Coder formats
    /// inputs: nothing appended.
    pub fn bge_coder() -> Self {
        Self {
            query_format: "<instruct>{task}\n<query>{query}".to_string(),
            append_token: None,
        }
    }

    /// The text a query is embedded as.
    pub fn format_query(&self, task: &str, query: &str) -> String {
        // One pass, so a task containing "{query}" is not expanded twice.
        let mut out = String::with_capacity(self.query_format.len() + task.len() + query.len());
        let mut rest = self.query_format.as_str();
        while let Some(at) = rest.find('{') {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            if let Some(after) = tail.strip_prefix("{task}") {
                out.push_str(task);
                rest = after;
            } else if let Some(after) = tail.strip_prefix("{query}") {
                out.push_str(query);
                rest = after;
            } else {
                out.push('{');
                rest = &tail[1..];
            }
        }
        out.push_str(rest);
        out
    }
}

/// A decoder embedder: L2-normalised last-token hidden states.
#[derive(Debug)]
pub struct DecoderEmbedder {
    lm: DecoderLm,
    style: DecoderEmbedStyle,
    append_id: Option<u32>,
    /// The longest input in tokens, the appended token included; a longer
    /// text loses its end (8192, the Qwen3-Embedding card's length).
    pub max_length: usize,
    /// Texts per forward pass (fewer when long: a batch also stays under a
    /// padded-token budget); texts are sorted by length first, so a batch
    /// pads little.
    pub batch_size: usize,
}

impl DecoderEmbedder {
    /// Loads the model in `dir` (config.json, weights, tokenizer.json) to
    /// embed in `style`.
    pub fn load(dir: &Path, style: DecoderEmbedStyle, device: &Device) -> Result<Self, ModelError> {
        Self::new(DecoderLm::load(dir, None, device)?, style)
    }

    /// Wraps a loaded model; fails when the style's appended token is not in
    /// its vocabulary.
    pub fn new(lm: DecoderLm, style: DecoderEmbedStyle) -> Result<Self, ModelError> {
        let append_id = style
            .append_token
            .as_deref()
            .map(|t| lm.token_id(t))
            .transpose()?;
        Ok(Self {
            lm,
            style,
            append_id,
            max_length: 8192,
            batch_size: 16,
        })
    }

    /// The vectors' length.
    pub fn dimension(&self) -> usize {
        self.lm.hidden_size()
    }

    /// The token ids `text` is embedded as: truncated to `max_length`, the
    /// style's token appended.
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let encoding = self
            .lm
            .tokenizer()
            .encode(text, false)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let mut ids = encoding.get_ids().to_vec();
        let room = self
            .max_length
            .saturating_sub(usize::from(self.append_id.is_some()))
            .max(1);
        ids.truncate(room);
        ids.extend(self.append_id);
        Ok(ids)
    }

    /// Embeds queries for `task` (an instruction such as
    /// [`crate::rerank::RerankTask::instruction`]), in input order.
    pub fn embed_queries(&self, task: &str, queries: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        let texts: Vec<String> = queries
            .iter()
            .map(|q| self.style.format_query(task, q))
            .collect();
        self.embed_texts(&texts)
    }

    /// Embeds documents (code) as they are, in input order.
    pub fn embed_documents(&self, documents: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.embed_texts(documents)
    }

    fn embed_texts<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>, ModelError> {
        let ids = texts
            .iter()
            .map(|t| {
                if t.as_ref().is_empty() && self.append_id.is_none() {
                    // No token to pool: embed a lone space rather than fail the batch.
                    self.token_ids(" ")
                } else {
                    self.token_ids(t.as_ref())
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let lengths: Vec<usize> = ids.iter().map(Vec::len).collect();
        let mut out = vec![Vec::new(); ids.len()];
        for batch in length_batches(&lengths, self.batch_size) {
            let seqs: Vec<Vec<u32>> = batch.iter().map(|&i| ids[i].clone()).collect();
            let hidden = self.lm.last_hidden(&seqs)?;
            let norm = hidden
                .sqr()?
                .sum_keepdim(D::Minus1)?
                .sqrt()?
                .clamp(1e-12, f64::MAX)?;
            let vectors: Vec<Vec<f32>> = hidden.broadcast_div(&norm)?.to_vec2()?;
            for (&i, v) in batch.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_formats_fill_both_placeholders_once() {
        assert_eq!(
            DecoderEmbedStyle::qwen3_embedding().format_query("find code", "read a file"),
            "Instruct: find code\nQuery:read a file"
        );
        assert_eq!(
            DecoderEmbedStyle::bge_coder().format_query("t {query}", "q"),
            "<instruct>t {query}\n<query>q"
        );
    }
}
