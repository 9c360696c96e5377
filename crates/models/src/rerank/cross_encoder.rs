//! Cross-encoder rerankers: the query and one document go through the
//! encoder together and a sequence-classification head turns the first
//! token into a relevance logit. Two layouts cover the cross-encoders users
//! ask for:
//!
//! * `BertForSequenceClassification` (ms-marco MiniLM): BERT, the pooler
//!   (dense + tanh on `[CLS]`), then `classifier`;
//! * `XLMRobertaForSequenceClassification` (bge-reranker-base, v2-m3): the
//!   same encoder layers, absolute positions counted from `padding_idx + 1`
//!   over non-pad tokens, then `classifier.dense` + tanh + `classifier.out_proj`
//!   on `<s>`.
//!
//! Both run on the crate's BERT encoder (candle-transformers' `BertEncoder`
//! layers; identical layers and tensor names). XLM-RoBERTa's position ids
//! are computed on the host from the token ids rather than inside the model
//! as candle's `XLMRobertaModel` does (a cumulative sum in the activation
//! dtype): exact in any dtype and visible in [`PairBatch`] for checking
//! against a reference.

use std::cmp::Reverse;
use std::fmt;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::{linear, Linear, VarBuilder};
use candle_transformers::models::bert;
use tokenizers::{
    Encoding, PostProcessor, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

use super::{RerankInput, Reranker};
use crate::bert::Bert;
use crate::device::{model_dtype, BatchLimits, EncoderShape};
use crate::error::ModelError;

/// Pairs and padded tokens (pairs × longest pair) per forward pass on the
/// CPU, so long documents do not blow up the attention matrices; GPUs size
/// batches from their free memory.
const CPU_LIMITS: BatchLimits = BatchLimits {
    max_rows: 32,
    max_tokens: 4096,
};

/// The `architectures` names [`CrossEncoder::load`] accepts, for error messages.
const SUPPORTED: &str = "BertForSequenceClassification, XLMRobertaForSequenceClassification";

/// Which sequence-classification layout a cross-encoder has; it decides the
/// tensor names, the head and how positions are numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrossEncoderArchitecture {
    /// `BertForSequenceClassification` (ms-marco MiniLM cross-encoders).
    Bert,
    /// `XLMRobertaForSequenceClassification` (bge-reranker-base / v2-m3).
    XlmRoberta,
}

impl CrossEncoderArchitecture {
    /// The name config.json's `architectures` uses, so messages and logs say
    /// what the checkpoint calls itself.
    pub fn config_name(self) -> &'static str {
        match self {
            CrossEncoderArchitecture::Bert => "BertForSequenceClassification",
            CrossEncoderArchitecture::XlmRoberta => "XLMRobertaForSequenceClassification",
        }
    }

    fn from_config_name(name: &str) -> Option<Self> {
        match name {
            "BertForSequenceClassification" => Some(CrossEncoderArchitecture::Bert),
            "XLMRobertaForSequenceClassification" => Some(CrossEncoderArchitecture::XlmRoberta),
            _ => None,
        }
    }
}

/// Exactly what the model reads for some (query, document) pairs, right-padded
/// to the longest pair: for checking tokenisation against a reference and for
/// debugging what a reranker saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairBatch {
    /// Token ids; pads are the config's `pad_token_id`.
    pub input_ids: Vec<Vec<u32>>,
    /// Segment ids: BERT's 0 for the query, 1 for the document, 0 on pads;
    /// all 0 for XLM-RoBERTa (one segment type).
    pub token_type_ids: Vec<Vec<u32>>,
    /// 1 on tokens, 0 on pads.
    pub attention_mask: Vec<Vec<u32>>,
    /// XLM-RoBERTa's position ids (`padding_idx + 1 + i` on tokens,
    /// `padding_idx` on pads), computed here and fed to the model; `None` for
    /// BERT, whose model numbers positions 0, 1, … itself.
    pub position_ids: Option<Vec<Vec<u32>>>,
}

/// The loaded network of either layout.
enum Network {
    Bert {
        bert: Bert,
        pooler: Linear,
        classifier: Linear,
    },
    XlmRoberta {
        roberta: Bert,
        dense: Linear,
        out_proj: Linear,
    },
}

/// A cross-encoder reranker (BERT or XLM-RoBERTa sequence classifier).
///
/// Pairs are tokenised as (query, document) with the checkpoint's own
/// `tokenizer.json` pair template, cut longest-first to [`Self::max_length`]
/// tokens (as sentence-transformers' `CrossEncoder` does), sorted by length
/// and run in right-padded batches. The score is the logit of a one-label
/// head, or the positive logit minus the negative one of a two-label head.
pub struct CrossEncoder {
    name: String,
    /// The model directory, for error messages.
    dir: PathBuf,
    architecture: CrossEncoderArchitecture,
    network: Network,
    /// Truncates pairs to `max_length`; never pads (batches are padded here).
    tokenizer: Tokenizer,
    device: Device,
    limits: BatchLimits,
    max_length: usize,
    /// The longest sequence the position table holds.
    position_limit: usize,
    /// Tokens the pair template adds (`[CLS]`, `[SEP]`…).
    special_tokens: usize,
    num_labels: usize,
    pad_id: u32,
}

impl fmt::Debug for CrossEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrossEncoder")
            .field("name", &self.name)
            .field("architecture", &self.architecture)
            .field("max_length", &self.max_length)
            .field("num_labels", &self.num_labels)
            .field("device", &self.device)
            .finish()
    }
}

impl CrossEncoder {
    /// Loads a cross-encoder from a model directory (`config.json`,
    /// `model.safetensors`, `tokenizer.json`) onto `device`, in the device's
    /// precision ([`model_dtype`]).
    ///
    /// The layout comes from config.json's `architectures`; an unknown one is
    /// [`ModelError::UnsupportedArchitecture`], a missing file
    /// [`ModelError::MissingFile`]. The name defaults to the directory's name
    /// and the maximum length to what the position table holds (512 for the
    /// real models).
    pub fn load(dir: &Path, device: Device) -> Result<Self, ModelError> {
        let dtype = model_dtype(&device);
        Self::load_as(dir, device, dtype)
    }

    /// [`CrossEncoder::load`] in `dtype` (bf16 on the CPU runs the GPU
    /// path's conversions).
    pub fn load_as(dir: &Path, device: Device, dtype: DType) -> Result<Self, ModelError> {
        let config_path = dir.join("config.json");
        let config: serde_json::Value = serde_json::from_slice(&read_model_file(&config_path)?)
            .map_err(|e| config_error(&config_path, e))?;
        let architecture = architecture_of(&config_path, &config)?;
        let num_labels = num_labels_of(&config_path, &config)?;
        let bert_config: bert::Config =
            serde_json::from_value(config).map_err(|e| config_error(&config_path, e))?;
        let pad_id = u32::try_from(bert_config.pad_token_id)
            .map_err(|e| config_error(&config_path, format!("pad_token_id: {e}")))?;
        let position_limit = match architecture {
            CrossEncoderArchitecture::Bert => bert_config.max_position_embeddings,
            // Positions start after padding_idx, so the first pad_id + 1 rows
            // of the table are never used by tokens.
            CrossEncoderArchitecture::XlmRoberta => bert_config
                .max_position_embeddings
                .saturating_sub(bert_config.pad_token_id + 1),
        };

        let weights_path = dir.join("model.safetensors");
        let weights = read_model_file(&weights_path)?;
        let network = load_network(
            architecture,
            weights,
            &bert_config,
            num_labels,
            &device,
            dtype,
        )
        .map_err(|e| ModelError::Config {
            path: weights_path.clone(),
            message: format!(
                "cannot load the {} weights: {e}",
                architecture.config_name()
            ),
        })?;

        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer =
            Tokenizer::from_bytes(read_model_file(&tokenizer_path)?).map_err(|e| {
                ModelError::Tokenizer(format!("cannot load {}: {e}", tokenizer_path.display()))
            })?;
        tokenizer.with_padding(None);
        let special_tokens = tokenizer
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(true));

        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| architecture.config_name().to_string());
        CrossEncoder {
            name,
            dir: dir.to_path_buf(),
            architecture,
            network,
            tokenizer,
            limits: BatchLimits::for_device(
                &device,
                EncoderShape {
                    hidden: bert_config.hidden_size,
                    intermediate: bert_config.intermediate_size,
                    heads: bert_config.num_attention_heads,
                    max_len: position_limit,
                },
                dtype,
                CPU_LIMITS,
            ),
            device,
            max_length: position_limit,
            position_limit,
            special_tokens,
            num_labels,
            pad_id,
        }
        .with_max_length(position_limit)
    }

    /// Renames the reranker: a model loaded from a cache snapshot directory
    /// would otherwise be named after a commit hash.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the longest pair in tokens (special tokens included); longer pairs
    /// lose tokens from the longer text first. Shorter windows trade quality
    /// for speed. Errors when the position table cannot hold `max_length` or
    /// when it leaves no room for a token of each text.
    pub fn with_max_length(mut self, max_length: usize) -> Result<Self, ModelError> {
        let least = self.special_tokens + 2;
        if max_length > self.position_limit || max_length < least {
            return Err(ModelError::Config {
                path: self.dir.clone(),
                message: format!(
                    "max length {max_length} is outside {least}..={} (the model's positions)",
                    self.position_limit
                ),
            });
        }
        self.tokenizer
            .with_truncation(Some(TruncationParams {
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        self.max_length = max_length;
        Ok(self)
    }

    /// The longest pair in tokens; longer pairs are truncated to it.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The checkpoint's layout, for people and logs.
    pub fn architecture(&self) -> CrossEncoderArchitecture {
        self.architecture
    }

    /// Tokenises (query, document) pairs as the model reads them, padded as
    /// one batch in input order.
    pub fn inputs(&self, pairs: &[(&str, &str)]) -> Result<PairBatch, ModelError> {
        let encodings = self.encode(pairs)?;
        let rows: Vec<&Encoding> = encodings.iter().collect();
        Ok(self.pad(&rows))
    }

    /// One relevance score per (query, document) pair, in input order. Pairs
    /// may have different queries; scores are comparable across pairs.
    pub fn score_pairs(&self, pairs: &[(&str, &str)]) -> Result<Vec<f32>, ModelError> {
        let encodings = self.encode(pairs)?;
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        // Longest first: the first batch shows the worst-case memory at once.
        order.sort_by_key(|&i| Reverse(encodings[i].len()));
        let mut scores = vec![0.0; encodings.len()];
        let mut start = 0;
        while start < order.len() {
            let longest = encodings[order[start]].len().max(1);
            let fit = self.limits.rows_for(longest);
            let end = (start + fit).min(order.len());
            let batch = &order[start..end];
            let rows: Vec<&Encoding> = batch.iter().map(|&i| &encodings[i]).collect();
            let got = self.forward(&self.pad(&rows))?;
            for (&i, score) in batch.iter().zip(got) {
                scores[i] = score;
            }
            start = end;
        }
        Ok(scores)
    }

    fn encode(&self, pairs: &[(&str, &str)]) -> Result<Vec<Encoding>, ModelError> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        self.tokenizer
            .encode_batch(pairs.to_vec(), true)
            .map_err(|e| ModelError::Tokenizer(format!("cannot tokenise a pair: {e}")))
    }

    /// Right-pads encodings to the longest one.
    fn pad(&self, rows: &[&Encoding]) -> PairBatch {
        let width = rows.iter().map(|e| e.len()).max().unwrap_or(0);
        let roberta = self.architecture == CrossEncoderArchitecture::XlmRoberta;
        let mut batch = PairBatch {
            input_ids: Vec::with_capacity(rows.len()),
            token_type_ids: Vec::with_capacity(rows.len()),
            attention_mask: Vec::with_capacity(rows.len()),
            position_ids: roberta.then(|| Vec::with_capacity(rows.len())),
        };
        for encoding in rows {
            let len = encoding.len();
            let mut ids = encoding.get_ids().to_vec();
            ids.resize(width, self.pad_id);
            let mut types = if roberta {
                vec![0; len]
            } else {
                encoding.get_type_ids().to_vec()
            };
            types.resize(width, 0);
            let mut mask = vec![1; len];
            mask.resize(width, 0);
            if let Some(positions) = batch.position_ids.as_mut() {
                positions.push(roberta_positions(&ids, self.pad_id));
            }
            batch.input_ids.push(ids);
            batch.token_type_ids.push(types);
            batch.attention_mask.push(mask);
        }
        batch
    }

    /// Scores one padded batch.
    fn forward(&self, batch: &PairBatch) -> Result<Vec<f32>, ModelError> {
        let rows = batch.input_ids.len();
        let width = batch.input_ids.first().map_or(0, Vec::len);
        let tensor =
            |values: &[Vec<u32>]| Tensor::from_vec(values.concat(), (rows, width), &self.device);
        let ids = tensor(&batch.input_ids)?;
        let type_ids = tensor(&batch.token_type_ids)?;
        let mask = tensor(&batch.attention_mask)?;
        let logits = match &self.network {
            Network::Bert {
                bert,
                pooler,
                classifier,
            } => {
                let hidden = bert.forward(&ids, &type_ids, &mask)?;
                let first = hidden.i((.., 0))?.contiguous()?;
                classifier.forward(&pooler.forward(&first)?.tanh()?)?
            }
            Network::XlmRoberta {
                roberta,
                dense,
                out_proj,
            } => {
                let positions = batch.position_ids.as_deref().ok_or_else(|| {
                    candle_core::Error::Msg("an XLM-RoBERTa batch needs position ids".into())
                })?;
                let hidden = roberta
                    .embeddings()
                    .forward(&ids, &type_ids, &tensor(positions)?)?;
                let hidden = roberta.encode(&hidden, &mask)?;
                let first = hidden.i((.., 0))?.contiguous()?;
                out_proj.forward(&dense.forward(&first)?.tanh()?)?
            }
        };
        let logits = logits.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        Ok(logits
            .iter()
            .map(|row| score_from_logits(row, self.num_labels))
            .collect())
    }
}

impl Reranker for CrossEncoder {
    fn name(&self) -> &str {
        &self.name
    }

    fn rerank(&self, input: &RerankInput<'_>) -> Result<Vec<f32>, ModelError> {
        let pairs: Vec<(&str, &str)> = input
            .documents
            .iter()
            .map(|&document| (input.query, document))
            .collect();
        self.score_pairs(&pairs)
    }
}

fn load_network(
    architecture: CrossEncoderArchitecture,
    weights: Vec<u8>,
    config: &bert::Config,
    num_labels: usize,
    device: &Device,
    dtype: DType,
) -> candle_core::Result<Network> {
    let vb = VarBuilder::from_buffered_safetensors(weights, dtype, device)?;
    let hidden = config.hidden_size;
    Ok(match architecture {
        CrossEncoderArchitecture::Bert => Network::Bert {
            bert: Bert::load(vb.pp("bert"), config)?,
            pooler: linear(hidden, hidden, vb.pp("bert.pooler.dense"))?,
            classifier: linear(hidden, num_labels, vb.pp("classifier"))?,
        },
        CrossEncoderArchitecture::XlmRoberta => Network::XlmRoberta {
            roberta: Bert::load(vb.pp("roberta"), config)?,
            dense: linear(hidden, hidden, vb.pp("classifier.dense"))?,
            out_proj: linear(hidden, num_labels, vb.pp("classifier.out_proj"))?,
        },
    })
}

/// RoBERTa's position ids (transformers' `create_position_ids_from_input_ids`):
/// tokens count up from `pad_id + 1`, pads stay at `pad_id`.
fn roberta_positions(ids: &[u32], pad_id: u32) -> Vec<u32> {
    let mut seen = 0;
    ids.iter()
        .map(|&id| {
            if id == pad_id {
                pad_id
            } else {
                seen += 1;
                pad_id + seen
            }
        })
        .collect()
}

/// A one-label head's logit, or a two-label head's positive minus negative
/// logit (label 1 is "relevant").
fn score_from_logits(row: &[f32], num_labels: usize) -> f32 {
    match (num_labels, row) {
        (2, [negative, positive]) => positive - negative,
        (_, [logit, ..]) => *logit,
        (_, []) => f32::NAN,
    }
}

/// The layout config.json's `architectures` names.
fn architecture_of(
    path: &Path,
    config: &serde_json::Value,
) -> Result<CrossEncoderArchitecture, ModelError> {
    let name = config["architectures"]
        .as_array()
        .and_then(|names| names.first())
        .and_then(|name| name.as_str())
        .ok_or_else(|| {
            config_error(
                path,
                format!("no `architectures` entry (a cross-encoder is one of {SUPPORTED})"),
            )
        })?;
    CrossEncoderArchitecture::from_config_name(name).ok_or_else(|| {
        ModelError::UnsupportedArchitecture {
            path: path.to_path_buf(),
            architecture: name.to_string(),
            supported: SUPPORTED.to_string(),
        }
    })
}

/// Labels of the classification head: `num_labels`, else the size of
/// `id2label`, else transformers' default of 2. A relevance head has 1 or 2.
fn num_labels_of(path: &Path, config: &serde_json::Value) -> Result<usize, ModelError> {
    let labels = config["num_labels"]
        .as_u64()
        .map(|n| n as usize)
        .or_else(|| config["id2label"].as_object().map(|m| m.len()))
        .unwrap_or(2);
    if labels == 1 || labels == 2 {
        Ok(labels)
    } else {
        Err(config_error(
            path,
            format!(
                "{labels} labels: a relevance cross-encoder has 1 (a score) or 2 (not relevant, relevant)"
            ),
        ))
    }
}

fn config_error(path: &Path, message: impl fmt::Display) -> ModelError {
    ModelError::Config {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Reads a file of a model directory; a missing one is [`ModelError::MissingFile`].
fn read_model_file(path: &Path) -> Result<Vec<u8>, ModelError> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ModelError::MissingFile {
            path: path.to_path_buf(),
        },
        _ => ModelError::io(path, e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_encoder_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<CrossEncoder>();
    }

    #[test]
    fn roberta_positions_skip_pads() {
        assert_eq!(roberta_positions(&[0, 7, 2, 1, 1], 1), vec![2, 3, 4, 1, 1]);
        assert_eq!(roberta_positions(&[], 1), Vec::<u32>::new());
    }

    #[test]
    fn two_label_heads_score_positive_minus_negative() {
        assert_eq!(score_from_logits(&[0.25], 1), 0.25);
        assert_eq!(score_from_logits(&[1.0, 3.5], 2), 2.5);
        assert!(score_from_logits(&[], 1).is_nan());
    }

    #[test]
    fn labels_come_from_num_labels_then_id2label() {
        let path = Path::new("config.json");
        let labels = |v: serde_json::Value| num_labels_of(path, &v);
        assert_eq!(labels(serde_json::json!({"num_labels": 1})).ok(), Some(1));
        assert_eq!(
            labels(serde_json::json!({"id2label": {"0": "LABEL_0"}})).ok(),
            Some(1)
        );
        assert_eq!(labels(serde_json::json!({})).ok(), Some(2));
        assert!(matches!(
            labels(serde_json::json!({"num_labels": 3})),
            Err(ModelError::Config { .. })
        ));
    }
}
