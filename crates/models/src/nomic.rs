//! NomicBert sentence encoders: CodeRankEmbed (and nomic-embed-text), the
//! code embedder the research behind Quarry names. NomicBert is BERT with
//! rotary positions, a fused QKV projection and a SwiGLU MLP; the network is
//! candle-transformers' `nomic_bert::NomicBertModel`, which reads the
//! checkpoints' own tensor names and `config.json` format. What the weights do
//! not record — the query prefix and the pooling the model card prescribes —
//! is a [`NomicDescription`].

use std::cmp::Reverse;
use std::fmt;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::nomic_bert::{Config, NomicBertModel};
use tokenizers::{Encoding, PostProcessor, Tokenizer, TruncationParams};

use crate::device::{model_dtype, BatchLimits, EncoderShape};
use crate::error::ModelError;
use crate::wordpiece::WordPieceCounter;

/// Texts and padded tokens (texts × longest text) per forward pass on the
/// CPU; GPUs size batches from their free memory.
const CPU_LIMITS: BatchLimits = BatchLimits {
    max_rows: 32,
    max_tokens: 4096,
};

/// How token vectors become one text vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The first token's (`[CLS]`) vector: CodeRankEmbed's sentence-transformers
    /// pooling (`pooling_mode_cls_token`).
    Cls,
    /// The mean over real tokens: nomic-embed-text's pooling.
    Mean,
}

/// Whether a text is a search query or a document to be found: the model
/// card gives them different prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// What the user typed: gets the query prefix.
    Query,
    /// Code (or text) in the index: gets the document prefix.
    Document,
}

/// How a NomicBert checkpoint is meant to be used, per its model card: the
/// checkpoint files do not say it, and a wrong prefix or pooling silently
/// degrades retrieval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NomicDescription {
    /// Prepended to every query.
    pub query_prefix: &'static str,
    /// Prepended to every document.
    pub document_prefix: &'static str,
    /// How the token vectors are pooled into the text vector.
    pub pooling: Pooling,
}

impl NomicDescription {
    /// The prefix for texts of `kind`.
    pub fn prefix(&self, kind: TextKind) -> &'static str {
        match kind {
            TextKind::Query => self.query_prefix,
            TextKind::Document => self.document_prefix,
        }
    }
}

/// CodeRankEmbed (nomic-ai/CodeRankEmbed): queries carry the card's
/// instruction, code is embedded as it is, CLS pooling (its
/// `1_Pooling/config.json`).
pub const CODE_RANK_EMBED: NomicDescription = NomicDescription {
    query_prefix: "Represent this query for searching relevant code: ",
    document_prefix: "",
    pooling: Pooling::Cls,
};

/// Token ids of some texts exactly as the encoder reads them (prefix and
/// special tokens included), right-padded to the longest: for checking
/// tokenisation against a reference and for debugging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextBatch {
    /// Token ids; pads are `[PAD]`.
    pub input_ids: Vec<Vec<u32>>,
    /// All 0 for single texts (and on pads).
    pub token_type_ids: Vec<Vec<u32>>,
    /// 1 on tokens, 0 on pads.
    pub attention_mask: Vec<Vec<u32>>,
}

/// A NomicBert sentence encoder: prefix by text kind, truncation, batches
/// sorted by length with right padding and an attention mask, pooling per
/// the description, L2 normalisation. `Send + Sync`, so one loaded model
/// serves every thread.
pub struct NomicEmbedder {
    model: NomicBertModel,
    /// Truncates to `max_tokens`; never pads (batches are padded here).
    tokenizer: Tokenizer,
    /// Neither truncates nor pads: for counting tokens.
    counter: Tokenizer,
    /// Exact counts without the tokenizer for ASCII text (BERT WordPiece).
    fast_counter: Option<WordPieceCounter>,
    device: Device,
    limits: BatchLimits,
    description: NomicDescription,
    /// The model directory, for error messages.
    dir: PathBuf,
    dim: usize,
    max_tokens: usize,
    /// The longest sequence the rotary table holds.
    position_limit: usize,
    /// Tokens the single-text template adds (`[CLS]`, `[SEP]`).
    special_tokens: usize,
    pad_id: u32,
}

impl fmt::Debug for NomicEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NomicEmbedder")
            .field("dir", &self.dir)
            .field("description", &self.description)
            .field("dim", &self.dim)
            .field("max_tokens", &self.max_tokens)
            .field("device", &self.device)
            .finish()
    }
}

impl NomicEmbedder {
    /// Loads a NomicBert checkpoint (`config.json` in nomic's format,
    /// `model.safetensors` with the original tensor names, `tokenizer.json`)
    /// onto `device`, in the device's precision ([`model_dtype`]), described
    /// as [`CODE_RANK_EMBED`].
    ///
    /// Texts are cut at the trained length (`max_trained_positions`, at most
    /// `n_positions`): beyond it the rotary positions were never seen in
    /// training. Options of the architecture this encoder does not implement
    /// (GELU MLPs, partial or scaled rotary embeddings, parallel blocks) are
    /// [`ModelError::Config`] errors rather than wrong vectors.
    pub fn load(dir: &Path, device: Device) -> Result<Self, ModelError> {
        let dtype = model_dtype(&device);
        Self::load_as(dir, device, dtype)
    }

    /// [`NomicEmbedder::load`] in `dtype` (bf16 on the CPU runs the GPU
    /// path's conversions).
    pub fn load_as(dir: &Path, device: Device, dtype: DType) -> Result<Self, ModelError> {
        let config_path = dir.join("config.json");
        let raw: serde_json::Value = serde_json::from_slice(&read_model_file(&config_path)?)
            .map_err(|e| config_error(&config_path, e))?;
        check_config(&config_path, &raw)?;
        let config: Config =
            serde_json::from_value(raw.clone()).map_err(|e| config_error(&config_path, e))?;
        let position_limit = config.n_positions;
        let trained = raw["max_trained_positions"]
            .as_u64()
            .map_or(position_limit, |n| n as usize);

        let weights_path = dir.join("model.safetensors");
        let weights = read_model_file(&weights_path)?;
        let model = VarBuilder::from_buffered_safetensors(weights, dtype, &device)
            .and_then(|vb| NomicBertModel::load(vb, &config))
            .map_err(|e| config_error(&weights_path, format!("cannot load NomicBert: {e}")))?;

        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer_json = read_model_file(&tokenizer_path)?;
        let mut counter = Tokenizer::from_bytes(&tokenizer_json).map_err(|e| {
            ModelError::Tokenizer(format!("cannot load {}: {e}", tokenizer_path.display()))
        })?;
        counter.with_padding(None);
        counter
            .with_truncation(None)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let special_tokens = counter
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(false));
        // Pads are masked out, so any id in the vocabulary would do.
        let pad_id = counter.token_to_id("[PAD]").unwrap_or(0);

        NomicEmbedder {
            model,
            tokenizer: counter.clone(),
            counter,
            fast_counter: WordPieceCounter::from_tokenizer_json(&tokenizer_json),
            limits: BatchLimits::for_device(
                &device,
                EncoderShape {
                    hidden: config.n_embd,
                    intermediate: config.n_inner,
                    heads: config.n_head,
                    max_len: trained.min(position_limit),
                },
                dtype,
                CPU_LIMITS,
            ),
            device,
            description: CODE_RANK_EMBED,
            dir: dir.to_path_buf(),
            dim: config.n_embd,
            max_tokens: 0,
            position_limit,
            special_tokens,
            pad_id,
        }
        .with_max_tokens(trained.min(position_limit))
    }

    /// Texts and padded tokens per forward pass on this device.
    pub fn batch_limits(&self) -> BatchLimits {
        self.limits
    }

    /// Uses the checkpoint as another model card describes it (say
    /// nomic-embed-text's `search_query: ` / `search_document: ` and mean
    /// pooling).
    pub fn with_description(mut self, description: NomicDescription) -> Self {
        self.description = description;
        self
    }

    /// Sets the longest text in tokens (prefix and special tokens included);
    /// the end of longer texts is cut. Errors when the rotary table cannot
    /// hold `max_tokens` or when no text token would be left.
    pub fn with_max_tokens(mut self, max_tokens: usize) -> Result<Self, ModelError> {
        let least = self.special_tokens + 1;
        if max_tokens > self.position_limit || max_tokens < least {
            return Err(config_error(
                &self.dir,
                format!(
                    "max tokens {max_tokens} is outside {least}..={} (the model's positions)",
                    self.position_limit
                ),
            ));
        }
        self.tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        self.max_tokens = max_tokens;
        Ok(self)
    }

    /// How queries and documents are prefixed and pooled.
    pub fn description(&self) -> NomicDescription {
        self.description
    }

    /// Length of the vectors (the hidden size).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The longest text in tokens; longer texts are truncated to it.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Embeds search queries (with the query prefix); one L2-normalised
    /// vector per query, in input order.
    pub fn embed_queries(&self, queries: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.embed(queries, TextKind::Query)
    }

    /// Embeds documents (with the document prefix, none for CodeRankEmbed);
    /// one L2-normalised vector per document, in input order.
    pub fn embed_documents(&self, documents: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.embed(documents, TextKind::Document)
    }

    /// Number of tokens in `text` as it is (no prefix, no special tokens, no
    /// truncation), for cutting chunks to the model's window.
    pub fn count_tokens(&self, text: &str) -> usize {
        if let Some(count) = self.fast_counter.as_ref().and_then(|c| c.count(text)) {
            return count;
        }
        match self.counter.encode(text, false) {
            Ok(encoding) => encoding.len(),
            // Tokenising a &str does not fail in practice; a rough estimate
            // keeps the chunker going if it ever does.
            Err(_) => text.split_whitespace().count(),
        }
    }

    /// Tokenises texts of one kind as the encoder reads them, padded as one
    /// batch in input order.
    pub fn encode(&self, texts: &[&str], kind: TextKind) -> Result<TextBatch, ModelError> {
        let encodings = self.tokenize(texts, kind)?;
        let rows: Vec<&Encoding> = encodings.iter().collect();
        Ok(self.pad(&rows))
    }

    fn embed(&self, texts: &[&str], kind: TextKind) -> Result<Vec<Vec<f32>>, ModelError> {
        let encodings = self.tokenize(texts, kind)?;
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        // Longest first: the first batch shows the worst-case memory at once.
        order.sort_by_key(|&i| Reverse(encodings[i].len()));
        let mut out = vec![Vec::new(); encodings.len()];
        let mut start = 0;
        while start < order.len() {
            let longest = encodings[order[start]].len().max(1);
            let fit = self.limits.rows_for(longest);
            let end = (start + fit).min(order.len());
            let batch = &order[start..end];
            let rows: Vec<&Encoding> = batch.iter().map(|&i| &encodings[i]).collect();
            let vectors = self.forward(&self.pad(&rows))?;
            for (&i, vector) in batch.iter().zip(vectors) {
                out[i] = vector;
            }
            start = end;
        }
        Ok(out)
    }

    fn tokenize(&self, texts: &[&str], kind: TextKind) -> Result<Vec<Encoding>, ModelError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let prefix = self.description.prefix(kind);
        let inputs: Vec<String> = texts.iter().map(|t| format!("{prefix}{t}")).collect();
        self.tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| ModelError::Tokenizer(format!("cannot tokenise a text: {e}")))
    }

    /// Right-pads encodings to the longest one.
    fn pad(&self, rows: &[&Encoding]) -> TextBatch {
        let width = rows.iter().map(|e| e.len()).max().unwrap_or(0);
        let mut batch = TextBatch {
            input_ids: Vec::with_capacity(rows.len()),
            token_type_ids: Vec::with_capacity(rows.len()),
            attention_mask: Vec::with_capacity(rows.len()),
        };
        for encoding in rows {
            let mut ids = encoding.get_ids().to_vec();
            ids.resize(width, self.pad_id);
            let mut types = encoding.get_type_ids().to_vec();
            types.resize(width, 0);
            let mut mask = vec![1; encoding.len()];
            mask.resize(width, 0);
            batch.input_ids.push(ids);
            batch.token_type_ids.push(types);
            batch.attention_mask.push(mask);
        }
        batch
    }

    /// Pooled, L2-normalised vectors of one padded batch.
    fn forward(&self, batch: &TextBatch) -> Result<Vec<Vec<f32>>, ModelError> {
        let rows = batch.input_ids.len();
        let width = batch.input_ids.first().map_or(0, Vec::len);
        let tensor =
            |values: &[Vec<u32>]| Tensor::from_vec(values.concat(), (rows, width), &self.device);
        let ids = tensor(&batch.input_ids)?;
        let type_ids = tensor(&batch.token_type_ids)?;
        let mask = tensor(&batch.attention_mask)?;
        let hidden = self
            .model
            .forward(&ids, Some(&type_ids), Some(&mask))?
            .to_dtype(DType::F32)?; // (rows, width, dim)
        let pooled = match self.description.pooling {
            Pooling::Cls => hidden.i((.., 0))?.contiguous()?,
            Pooling::Mean => {
                let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (rows, width, 1)
                let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
                let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?;
                summed.broadcast_div(&counts)?
            }
        };
        let norm = pooled
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12f32, f32::MAX)?;
        Ok(pooled.broadcast_div(&norm)?.to_vec2::<f32>()?)
    }
}

/// Rejects NomicBert options candle's `NomicBertModel` would silently get
/// wrong: it always builds a SwiGLU MLP, rotates the whole head, never scales
/// the rotary base and runs blocks sequentially.
fn check_config(path: &Path, config: &serde_json::Value) -> Result<(), ModelError> {
    let architecture = config["architectures"]
        .as_array()
        .and_then(|names| names.first())
        .and_then(|name| name.as_str())
        .ok_or_else(|| config_error(path, "no `architectures` entry (expected NomicBertModel)"))?;
    if architecture != "NomicBertModel" {
        return Err(ModelError::UnsupportedArchitecture {
            path: path.to_path_buf(),
            architecture: architecture.to_string(),
            supported: "NomicBertModel".to_string(),
        });
    }
    let unsupported = if config["activation_function"]
        .as_str()
        .is_some_and(|a| a != "swiglu")
    {
        Some("activation_function other than swiglu")
    } else if config["rotary_emb_fraction"]
        .as_f64()
        .is_some_and(|f| f != 1.0)
    {
        Some("rotary_emb_fraction other than 1.0")
    } else if !config["rotary_scaling_factor"].is_null() {
        Some("rotary_scaling_factor (dynamic NTK scaling)")
    } else if config["parallel_block"].as_bool() == Some(true) {
        Some("parallel_block")
    } else {
        None
    };
    match unsupported {
        Some(option) => Err(config_error(
            path,
            format!("NomicBert option not implemented: {option}"),
        )),
        None => Ok(()),
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
    use serde_json::json;

    #[test]
    fn nomic_embedder_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<NomicEmbedder>();
    }

    #[test]
    fn code_rank_embed_prefixes_queries_only() {
        assert_eq!(
            CODE_RANK_EMBED.prefix(TextKind::Query),
            "Represent this query for searching relevant code: "
        );
        assert_eq!(CODE_RANK_EMBED.prefix(TextKind::Document), "");
        assert_eq!(CODE_RANK_EMBED.pooling, Pooling::Cls);
    }

    #[test]
    fn config_check_rejects_what_candle_would_get_wrong() {
        let path = Path::new("config.json");
        let base = json!({
            "architectures": ["NomicBertModel"],
            "activation_function": "swiglu",
            "rotary_emb_fraction": 1.0,
            "rotary_scaling_factor": null,
            "parallel_block": false
        });
        assert!(check_config(path, &base).is_ok());
        for (key, value) in [
            ("activation_function", json!("gelu")),
            ("rotary_emb_fraction", json!(0.5)),
            ("rotary_scaling_factor", json!(2.0)),
            ("parallel_block", json!(true)),
        ] {
            let mut config = base.clone();
            config[key] = value;
            assert!(
                matches!(check_config(path, &config), Err(ModelError::Config { .. })),
                "{key} accepted"
            );
        }
        let mut other = base.clone();
        other["architectures"] = json!(["BertModel"]);
        assert!(matches!(
            check_config(path, &other),
            Err(ModelError::UnsupportedArchitecture { .. })
        ));
    }
}
