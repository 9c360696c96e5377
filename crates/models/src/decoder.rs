//! A decoder-only transformer for the Qwen2 and Qwen3 architectures: the
//! network under Qwen3-Reranker (and CoREB), ERank, CodeRankLLM,
//! Qwen3-Embedding and CodeR.
//!
//! Written here rather than taken from candle-transformers because those
//! models have no padding mask, so they cannot run a left-padded batch, and
//! keep their KV cache inside the model, which would make one loaded model
//! unusable from two searches at once. [`DecoderLm`] is immutable after
//! loading (`Send + Sync`); generation keeps its cache on the stack.

use crate::error::ModelError;
use crate::lora::LoraAdapter;
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::Linear;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Query rows per attention block: bounds the score matrix of long
/// sequences at `batch × heads × 256 × keys` instead of `keys²`.
const QUERY_BLOCK: usize = 256;

/// Padded tokens per forward pass at most in [`length_batches`] (a longer
/// sequence runs alone): bounds activation memory whatever the batch size.
const MAX_BATCH_TOKENS: usize = 16_384;

/// Additive mask for keys a query must not see. Finite (not −∞), so a row
/// whose keys are all masked (a padding query) softmaxes to a uniform
/// distribution instead of NaN; those rows are never read.
const MASKED: f32 = -1e9;

/// Which member of the family: decides the attention's biases and norms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arch {
    /// q/k/v projections with biases.
    Qwen2,
    /// RMSNorm of each query and key head before RoPE; biases per config.
    Qwen3,
}

/// The config.json fields this implementation reads.
#[derive(Debug, Deserialize)]
struct RawConfig {
    #[serde(default)]
    architectures: Vec<String>,
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    attention_bias: Option<bool>,
    rope_theta: Option<f64>,
    rope_parameters: Option<RopeParameters>,
    rope_scaling: Option<serde_json::Value>,
    rms_norm_eps: f64,
    tie_word_embeddings: Option<bool>,
    hidden_act: Option<String>,
    use_sliding_window: Option<bool>,
}

/// transformers 5 writes the RoPE base here instead of `rope_theta`.
#[derive(Debug, Deserialize)]
struct RopeParameters {
    rope_theta: Option<f64>,
    rope_type: Option<String>,
}

/// The model's shape, checked.
#[derive(Debug, Clone)]
struct Config {
    arch: Arch,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_layers: usize,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
    qkv_bias: bool,
    o_bias: bool,
    rope_theta: f64,
    rms_norm_eps: f32,
    tie_word_embeddings: bool,
}

impl Config {
    fn read(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        let raw: RawConfig = serde_json::from_str(&text).map_err(|e| ModelError::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let arch = match (raw.model_type.as_deref(), raw.architectures.first()) {
            (Some("qwen3"), _) => Arch::Qwen3,
            (Some("qwen2"), _) => Arch::Qwen2,
            (None, Some(a)) if a == "Qwen3ForCausalLM" || a == "Qwen3Model" => Arch::Qwen3,
            (None, Some(a)) if a == "Qwen2ForCausalLM" || a == "Qwen2Model" => Arch::Qwen2,
            (model_type, architecture) => {
                return Err(ModelError::UnsupportedArchitecture {
                    path: path.to_path_buf(),
                    architecture: architecture
                        .map(String::as_str)
                        .or(model_type)
                        .unwrap_or("(none named)")
                        .to_string(),
                    supported: "Qwen2 and Qwen3 decoders (model_type qwen2, qwen3)".to_string(),
                })
            }
        };
        Self::from_raw(arch, raw).map_err(|message| ModelError::Config {
            path: path.to_path_buf(),
            message,
        })
    }

    fn from_raw(arch: Arch, raw: RawConfig) -> Result<Self, String> {
        if let Some(act) = &raw.hidden_act {
            if act != "silu" {
                return Err(format!("hidden_act {act} is not supported (only silu)"));
            }
        }
        if raw.use_sliding_window == Some(true) {
            return Err("sliding-window attention (use_sliding_window) is not supported".into());
        }
        let scaling = raw
            .rope_scaling
            .as_ref()
            .filter(|v| !v.is_null())
            .map(|v| {
                v.get("rope_type")
                    .or_else(|| v.get("type"))
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("unknown")
                    .to_string()
            })
            .or_else(|| {
                raw.rope_parameters
                    .as_ref()
                    .and_then(|p| p.rope_type.clone())
            });
        if let Some(kind) = scaling {
            if kind != "default" {
                return Err(format!(
                    "RoPE scaling {kind} is not supported (only the default rotary embedding)"
                ));
            }
        }
        let num_kv_heads = raw.num_key_value_heads.unwrap_or(raw.num_attention_heads);
        if raw.num_attention_heads == 0
            || num_kv_heads == 0
            || !raw.num_attention_heads.is_multiple_of(num_kv_heads)
        {
            return Err(format!(
                "{} attention heads cannot share {num_kv_heads} key/value heads",
                raw.num_attention_heads
            ));
        }
        let head_dim = match raw.head_dim {
            Some(d) => d,
            None if raw.hidden_size.is_multiple_of(raw.num_attention_heads) => {
                raw.hidden_size / raw.num_attention_heads
            }
            None => return Err("hidden_size is not a multiple of num_attention_heads".into()),
        };
        if !head_dim.is_multiple_of(2) || head_dim == 0 {
            return Err(format!("head_dim {head_dim} is odd; RoPE needs pairs"));
        }
        let attention_bias = raw.attention_bias.unwrap_or(false);
        let (qkv_bias, o_bias) = match arch {
            // Qwen2 always has q/k/v biases and never an output bias.
            Arch::Qwen2 => (true, false),
            Arch::Qwen3 => (attention_bias, attention_bias),
        };
        let rope_theta = raw
            .rope_theta
            .or_else(|| raw.rope_parameters.as_ref().and_then(|p| p.rope_theta))
            .unwrap_or(10_000.0);
        Ok(Self {
            arch,
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_layers: raw.num_hidden_layers,
            num_heads: raw.num_attention_heads,
            num_kv_heads,
            head_dim,
            qkv_bias,
            o_bias,
            rope_theta,
            rms_norm_eps: raw.rms_norm_eps as f32,
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(false),
        })
    }
}

/// Where the weights are read from while loading: the memory-mapped
/// checkpoint, the adapter merged into it, the target dtype and device.
struct WeightSource {
    files: MmapedSafetensors,
    /// `model.` for a causal LM checkpoint, empty for a bare `Qwen3Model` /
    /// `Qwen2Model` one (Qwen3-Embedding, CodeR).
    prefix: &'static str,
    adapter: Option<LoraAdapter>,
    dtype: DType,
    device: Device,
    dir: PathBuf,
}

impl WeightSource {
    fn open(
        dir: &Path,
        adapter: Option<LoraAdapter>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let files = weight_files(dir)?;
        // SAFETY: the mapped files are a model directory's checkpoint, which
        // Quarry installs by renaming complete files into place and never
        // writes afterwards; every tensor is copied out before `load` returns
        // and the map is dropped.
        let files = unsafe { MmapedSafetensors::multi(&files) }?;
        let prefix = if files.get("model.embed_tokens.weight").is_ok() {
            "model."
        } else {
            ""
        };
        Ok(Self {
            files,
            prefix,
            adapter,
            dtype,
            device: device.clone(),
            dir: dir.to_path_buf(),
        })
    }

    fn has(&self, name: &str) -> bool {
        self.files.get(name).is_ok()
    }

    /// The tensor `name` (without the `model.` prefix), checked against
    /// `shape`, with the adapter's update merged, in the model dtype.
    fn get(&mut self, name: &str, shape: &[usize]) -> Result<Tensor, ModelError> {
        self.get_named(&format!("{}{name}", self.prefix), name, shape)
    }

    /// As [`WeightSource::get`] for a tensor stored as `stored` and known to
    /// the adapter as `canonical` (the head lives outside `model.`).
    fn get_named(
        &mut self,
        stored: &str,
        canonical: &str,
        shape: &[usize],
    ) -> Result<Tensor, ModelError> {
        let tensor = self
            .files
            .load(stored, &Device::Cpu)
            .map_err(|e| ModelError::Config {
                path: self.dir.clone(),
                message: format!("weight {stored}: {e}"),
            })?;
        if tensor.dims() != shape {
            return Err(ModelError::Config {
                path: self.dir.clone(),
                message: format!(
                    "weight {stored} has shape {:?}, config.json implies {shape:?}",
                    tensor.dims()
                ),
            });
        }
        let tensor = match self.adapter.as_mut() {
            Some(adapter) => adapter.merge(canonical, tensor.to_dtype(DType::F32)?)?,
            None => tensor,
        };
        Ok(tensor.to_dtype(self.dtype)?.to_device(&self.device)?)
    }

    fn linear(
        &mut self,
        name: &str,
        out_dim: usize,
        in_dim: usize,
        bias: bool,
    ) -> Result<Linear, ModelError> {
        let weight = self.get(&format!("{name}.weight"), &[out_dim, in_dim])?;
        let bias = if bias {
            Some(self.get(&format!("{name}.bias"), &[out_dim])?)
        } else {
            None
        };
        Ok(Linear::new(weight, bias))
    }
}

/// The checkpoint's safetensors files: `model.safetensors`, else the shards
/// named by `model.safetensors.index.json`.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index_path = dir.join("model.safetensors.index.json");
    if !index_path.is_file() {
        return Err(ModelError::MissingFile { path: single });
    }
    let text = std::fs::read_to_string(&index_path).map_err(|e| ModelError::io(&index_path, e))?;
    let index: serde_json::Value = serde_json::from_str(&text).map_err(|e| ModelError::Config {
        path: index_path.clone(),
        message: e.to_string(),
    })?;
    let map = index
        .get("weight_map")
        .and_then(serde_json::Value::as_object)
        .ok_or_else(|| ModelError::Config {
            path: index_path.clone(),
            message: "no weight_map".into(),
        })?;
    let mut names: Vec<&str> = map.values().filter_map(serde_json::Value::as_str).collect();
    names.sort_unstable();
    names.dedup();
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(name);
        if !path.is_file() {
            return Err(ModelError::MissingFile { path });
        }
        files.push(path);
    }
    Ok(files)
}

/// One transformer block's weights.
#[derive(Debug)]
struct Layer {
    input_norm: Tensor,
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    /// Qwen3's per-head norms.
    q_norm: Option<Tensor>,
    k_norm: Option<Tensor>,
    post_attention_norm: Tensor,
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl Layer {
    fn load(cfg: &Config, w: &mut WeightSource, i: usize) -> Result<Self, ModelError> {
        let p = format!("layers.{i}");
        let (h, d) = (cfg.hidden_size, cfg.head_dim);
        let (q_dim, kv_dim) = (cfg.num_heads * d, cfg.num_kv_heads * d);
        let (q_norm, k_norm) = match cfg.arch {
            Arch::Qwen3 => (
                Some(w.get(&format!("{p}.self_attn.q_norm.weight"), &[d])?),
                Some(w.get(&format!("{p}.self_attn.k_norm.weight"), &[d])?),
            ),
            Arch::Qwen2 => (None, None),
        };
        Ok(Self {
            input_norm: w.get(&format!("{p}.input_layernorm.weight"), &[h])?,
            q_proj: w.linear(&format!("{p}.self_attn.q_proj"), q_dim, h, cfg.qkv_bias)?,
            k_proj: w.linear(&format!("{p}.self_attn.k_proj"), kv_dim, h, cfg.qkv_bias)?,
            v_proj: w.linear(&format!("{p}.self_attn.v_proj"), kv_dim, h, cfg.qkv_bias)?,
            o_proj: w.linear(&format!("{p}.self_attn.o_proj"), h, q_dim, cfg.o_bias)?,
            q_norm,
            k_norm,
            post_attention_norm: w.get(&format!("{p}.post_attention_layernorm.weight"), &[h])?,
            gate_proj: w.linear(
                &format!("{p}.mlp.gate_proj"),
                cfg.intermediate_size,
                h,
                false,
            )?,
            up_proj: w.linear(&format!("{p}.mlp.up_proj"), cfg.intermediate_size, h, false)?,
            down_proj: w.linear(
                &format!("{p}.mlp.down_proj"),
                h,
                cfg.intermediate_size,
                false,
            )?,
        })
    }
}

/// A layer's keys and values so far, `[batch, kv_heads, seen, head_dim]`
/// each, RoPE applied.
type KvCache = Vec<Option<(Tensor, Tensor)>>;

/// A decoder-only language model (Qwen2 / Qwen3) with its tokenizer.
///
/// One type serves every decoder-based model Quarry runs: rerankers read the
/// last position's logits ([`DecoderLm::last_logits`]), embedders its hidden
/// state ([`DecoderLm::last_hidden`]) and generative rerankers decode
/// ([`DecoderLm::generate_greedy`]).
pub struct DecoderLm {
    cfg: Config,
    tokenizer: tokenizers::Tokenizer,
    device: Device,
    dtype: DType,
    embed_tokens: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    /// `[vocab, hidden]`; the embedding matrix itself when tied. None for a
    /// checkpoint stored without its head (embedding models).
    lm_head: Option<Tensor>,
    /// RoPE inverse frequencies, `[head_dim / 2]`, f32.
    inv_freq: Tensor,
}

impl std::fmt::Debug for DecoderLm {
    /// The shape, not the weights or the vocabulary.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecoderLm")
            .field("arch", &self.cfg.arch)
            .field("layers", &self.cfg.num_layers)
            .field("hidden_size", &self.cfg.hidden_size)
            .field("dtype", &self.dtype)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// Indices of sequences of `lengths` grouped for left-padded forward passes:
/// sorted by length so a batch pads little, at most `batch_size` sequences
/// and [`MAX_BATCH_TOKENS`] padded tokens per batch.
pub(crate) fn length_batches(lengths: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        // Sorted ascending, so this sequence sets the padded length.
        let padded = (current.len() + 1) * lengths[i];
        if !current.is_empty() && (current.len() >= batch_size.max(1) || padded > MAX_BATCH_TOKENS)
        {
            batches.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Greedy decoding's result: the new token ids and each one's probability at its step.
///
/// The probabilities are what ERank weighs its integer score by.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The generated ids, the stop id included when decoding stopped on one.
    pub ids: Vec<u32>,
    /// Softmax probability (over the whole vocabulary) of each chosen id.
    pub probs: Vec<f32>,
}

impl DecoderLm {
    /// Loads config.json, the weights and tokenizer.json from `dir`, merging the PEFT LoRA
    /// adapter in `adapter` (adapter_config.json + adapter_model.safetensors) when given.
    ///
    /// Weights are f32 on the CPU and bf16 on a GPU (logits and hidden states
    /// come back as f32 either way).
    pub fn load(dir: &Path, adapter: Option<&Path>, device: &Device) -> Result<Self, ModelError> {
        let dtype = if device.is_cpu() {
            DType::F32
        } else {
            DType::BF16
        };
        Self::load_as(dir, adapter, device, dtype)
    }

    /// [`DecoderLm::load`] with the weights in `dtype` (bf16 on the CPU lets
    /// a test run the GPU path's conversions).
    fn load_as(
        dir: &Path,
        adapter: Option<&Path>,
        device: &Device,
        dtype: DType,
    ) -> Result<Self, ModelError> {
        let cfg = Config::read(&dir.join("config.json"))?;
        let tokenizer_path = dir.join("tokenizer.json");
        if !tokenizer_path.is_file() {
            return Err(ModelError::MissingFile {
                path: tokenizer_path,
            });
        }
        let mut tokenizer = tokenizers::Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| ModelError::Tokenizer(format!("{}: {e}", tokenizer_path.display())))?;
        // Callers pad and truncate themselves (left padding, document-only
        // truncation); a tokenizer.json with either set would interfere.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;

        let adapter = adapter.map(LoraAdapter::load).transpose()?;
        let mut w = WeightSource::open(dir, adapter, dtype, device)?;
        let (vocab, hidden) = (cfg.vocab_size, cfg.hidden_size);
        let embed_tokens = w.get("embed_tokens.weight", &[vocab, hidden])?;
        let layers = (0..cfg.num_layers)
            .map(|i| Layer::load(&cfg, &mut w, i))
            .collect::<Result<Vec<_>, _>>()?;
        let norm = w.get("norm.weight", &[hidden])?;
        let lm_head = if cfg.tie_word_embeddings {
            Some(embed_tokens.clone())
        } else if w.has("lm_head.weight") {
            Some(w.get_named("lm_head.weight", "lm_head.weight", &[vocab, hidden])?)
        } else {
            None
        };
        let merged = match w.adapter.take() {
            Some(adapter) => adapter.finish()?,
            None => 0,
        };
        let half = cfg.head_dim / 2;
        let inv_freq: Vec<f32> = (0..half)
            .map(|i| (1.0 / cfg.rope_theta.powf(2.0 * i as f64 / cfg.head_dim as f64)) as f32)
            .collect();
        let inv_freq = Tensor::from_vec(inv_freq, half, device)?;
        tracing::info!(
            model = %dir.display(),
            arch = ?cfg.arch,
            layers = cfg.num_layers,
            hidden,
            ?dtype,
            lora_merged = merged,
            "loaded decoder"
        );
        Ok(Self {
            cfg,
            tokenizer,
            device: device.clone(),
            dtype,
            embed_tokens,
            layers,
            norm,
            lm_head,
            inv_freq,
        })
    }

    /// The model's tokenizer, for callers that build prompts (padding and
    /// truncation are off: callers decide both).
    pub fn tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.tokenizer
    }

    /// The device the weights live on, for callers that build tensors.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The width of [`DecoderLm::last_hidden`]'s vectors (an embedder's dimension).
    pub fn hidden_size(&self) -> usize {
        self.cfg.hidden_size
    }

    /// The id of `token`, which must be one token of the vocabulary (e.g. "yes").
    ///
    /// Spelled as the vocabulary spells it: Qwen's byte-level tokens mark a
    /// leading space as `Ġ`.
    pub fn token_id(&self, token: &str) -> Result<u32, ModelError> {
        self.tokenizer.token_to_id(token).ok_or_else(|| {
            ModelError::Tokenizer(format!("{token:?} is not one token of the vocabulary"))
        })
    }

    /// Logits at each sequence's last position, the batch left-padded internally: [batch, vocab], f32.
    pub fn last_logits(&self, batch: &[Vec<u32>]) -> Result<Tensor, ModelError> {
        let hidden = self.last_positions(batch)?;
        self.logits(&hidden)
    }

    /// The final-norm hidden state at each sequence's last token (last-token pooling): [batch, hidden], f32.
    pub fn last_hidden(&self, batch: &[Vec<u32>]) -> Result<Tensor, ModelError> {
        Ok(self.last_positions(batch)?.to_dtype(DType::F32)?)
    }

    /// Greedy decoding with a KV cache: up to `max_new` tokens after `prompt`, stopping after any id in `stop`.
    ///
    /// Ties go to the lowest id, as `argmax` does in the reference
    /// implementations.
    pub fn generate_greedy(
        &self,
        prompt: &[u32],
        max_new: usize,
        stop: &[u32],
    ) -> Result<Generated, ModelError> {
        if prompt.is_empty() {
            return Err(ModelError::Decoder(
                "cannot generate from an empty prompt".into(),
            ));
        }
        let mut out = Generated {
            ids: Vec::with_capacity(max_new),
            probs: Vec::with_capacity(max_new),
        };
        if max_new == 0 {
            return Ok(out);
        }
        let mut cache: KvCache = vec![None; self.layers.len()];
        let input = Tensor::new(prompt, &self.device)?.unsqueeze(0)?;
        let mut hidden = self.forward(&input, None, 0, Some(&mut cache))?;
        let mut seen = prompt.len();
        loop {
            let last = hidden.narrow(1, hidden.dim(1)? - 1, 1)?.squeeze(1)?;
            let logits: Vec<f32> = self.logits(&last)?.squeeze(0)?.to_vec1()?;
            let (id, prob) = argmax_with_prob(&logits);
            out.ids.push(id);
            out.probs.push(prob);
            if stop.contains(&id) || out.ids.len() == max_new {
                return Ok(out);
            }
            let input = Tensor::new(&[id], &self.device)?.unsqueeze(0)?;
            hidden = self.forward(&input, None, seen, Some(&mut cache))?;
            seen += 1;
        }
    }

    /// `hidden` `[batch, hidden]` → logits `[batch, vocab]`, f32.
    fn logits(&self, hidden: &Tensor) -> Result<Tensor, ModelError> {
        let head = self.lm_head.as_ref().ok_or_else(|| {
            ModelError::Decoder(
                "this checkpoint has no lm_head (an embedding model): it gives hidden \
                 states, not logits"
                    .into(),
            )
        })?;
        Ok(hidden.matmul(&head.t()?)?.to_dtype(DType::F32)?)
    }

    /// Runs a left-padded batch and returns the final-norm hidden state at
    /// the last position: `[batch, hidden]` in the model dtype.
    fn last_positions(&self, batch: &[Vec<u32>]) -> Result<Tensor, ModelError> {
        if batch.is_empty() {
            return Ok(Tensor::zeros(
                (0, self.cfg.hidden_size),
                self.dtype,
                &self.device,
            )?);
        }
        if batch.iter().any(Vec::is_empty) {
            return Err(ModelError::Decoder(
                "an empty token sequence has no last position".into(),
            ));
        }
        let len = batch.iter().map(Vec::len).max().unwrap_or(0);
        // Any id works for padding: padded keys are masked and padded
        // queries never read.
        let mut ids = Vec::with_capacity(batch.len() * len);
        let mut key_mask = Vec::with_capacity(batch.len() * len);
        for seq in batch {
            let pad = len - seq.len();
            ids.extend(std::iter::repeat_n(0u32, pad).chain(seq.iter().copied()));
            key_mask.extend(
                std::iter::repeat_n(MASKED, pad).chain(std::iter::repeat_n(0.0, seq.len())),
            );
        }
        let input = Tensor::from_vec(ids, (batch.len(), len), &self.device)?;
        let padded = batch.iter().any(|s| s.len() < len);
        let key_mask = if padded {
            Some(Tensor::from_vec(
                key_mask,
                (batch.len(), 1, 1, len),
                &self.device,
            )?)
        } else {
            None
        };
        let hidden = self.forward(&input, key_mask.as_ref(), 0, None)?;
        Ok(hidden.narrow(1, len - 1, 1)?.squeeze(1)?)
    }

    /// The transformer: ids `[batch, len]` at positions `offset..offset+len`
    /// → final-norm hidden states `[batch, len, hidden]`.
    ///
    /// `key_mask` (`[batch, 1, 1, len]`, f32, 0 or [`MASKED`]) hides padding;
    /// every row gets the same positions, which is exact for left padding
    /// because RoPE scores depend only on the distance between positions.
    /// With `cache`, keys and values are appended to it and attention covers
    /// everything cached.
    fn forward(
        &self,
        input: &Tensor,
        key_mask: Option<&Tensor>,
        offset: usize,
        mut cache: Option<&mut KvCache>,
    ) -> Result<Tensor, ModelError> {
        let (b, l) = input.dims2()?;
        let (cos, sin) = self.rope_tables(offset, l)?;
        let mut x = self.embed_tokens.index_select(&input.flatten_all()?, 0)?;
        x = x.reshape((b, l, self.cfg.hidden_size))?;
        for (i, layer) in self.layers.iter().enumerate() {
            let slot = cache.as_mut().map(|c| &mut c[i]);
            let h = rms_norm(&x, &layer.input_norm, self.cfg.rms_norm_eps)?;
            let h = self.attention(layer, &h, &cos, &sin, key_mask, offset, slot)?;
            x = (x + h)?;
            let h = rms_norm(&x, &layer.post_attention_norm, self.cfg.rms_norm_eps)?;
            let gate = candle_nn::ops::silu(&layer.gate_proj.forward(&h)?)?;
            let h = layer
                .down_proj
                .forward(&(gate * layer.up_proj.forward(&h)?)?)?;
            x = (x + h)?;
        }
        Ok(rms_norm(&x, &self.norm, self.cfg.rms_norm_eps)?)
    }

    /// cos and sin for positions `offset..offset+len`: `[len, head_dim / 2]`.
    fn rope_tables(&self, offset: usize, len: usize) -> candle_core::Result<(Tensor, Tensor)> {
        let positions = Tensor::arange(offset as u32, (offset + len) as u32, &self.device)?
            .to_dtype(DType::F32)?
            .reshape((len, 1))?;
        let freqs = positions.broadcast_mul(&self.inv_freq.unsqueeze(0)?)?;
        Ok((
            freqs.cos()?.to_dtype(self.dtype)?,
            freqs.sin()?.to_dtype(self.dtype)?,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        layer: &Layer,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        key_mask: Option<&Tensor>,
        offset: usize,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> candle_core::Result<Tensor> {
        let cfg = &self.cfg;
        let (b, l, _) = x.dims3()?;
        let (h, kvh, d) = (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
        let q = layer.q_proj.forward(x)?.reshape((b, l, h, d))?;
        let k = layer.k_proj.forward(x)?.reshape((b, l, kvh, d))?;
        let v = layer.v_proj.forward(x)?.reshape((b, l, kvh, d))?;
        let q = match &layer.q_norm {
            Some(w) => rms_norm(&q, w, cfg.rms_norm_eps)?,
            None => q,
        };
        let k = match &layer.k_norm {
            Some(w) => rms_norm(&k, w, cfg.rms_norm_eps)?,
            None => k,
        };
        let q = candle_nn::rotary_emb::rope(&q.transpose(1, 2)?.contiguous()?, cos, sin)?;
        let k = candle_nn::rotary_emb::rope(&k.transpose(1, 2)?.contiguous()?, cos, sin)?;
        let v = v.transpose(1, 2)?.contiguous()?;
        let (k, v) = match cache {
            Some(slot) => {
                let (k, v) = match slot.take() {
                    Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
                    None => (k, v),
                };
                *slot = Some((k.clone(), v.clone()));
                (k, v)
            }
            None => (k, v),
        };
        let groups = h / kvh;
        let k = candle_transformers::utils::repeat_kv(k, groups)?.contiguous()?;
        let v = candle_transformers::utils::repeat_kv(v, groups)?.contiguous()?;
        let kt = k.t()?;
        let keys = k.dim(2)?;
        let scale = 1.0 / (d as f64).sqrt();
        let mut blocks = Vec::with_capacity(l.div_ceil(QUERY_BLOCK));
        for start in (0..l).step_by(QUERY_BLOCK) {
            let rows = QUERY_BLOCK.min(l - start);
            let qb = q.narrow(2, start, rows)?;
            let mut scores = (qb.matmul(&kt)? * scale)?.to_dtype(DType::F32)?;
            // Query `start + i` sits at position `offset + start + i` and sees keys up to it.
            let first = offset + start;
            if first + 1 < keys {
                let causal: Vec<f32> = (0..rows)
                    .flat_map(|i| (0..keys).map(move |j| if j > first + i { MASKED } else { 0.0 }))
                    .collect();
                let causal = Tensor::from_vec(causal, (1, 1, rows, keys), x.device())?;
                scores = scores.broadcast_add(&causal)?;
            }
            if let Some(mask) = key_mask {
                scores = scores.broadcast_add(mask)?;
            }
            let probs = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(self.dtype)?;
            blocks.push(probs.matmul(&v)?);
        }
        let ctx = Tensor::cat(&blocks, 2)?;
        layer
            .o_proj
            .forward(&ctx.transpose(1, 2)?.reshape((b, l, h * d))?)
    }
}

/// RMSNorm over the last dimension, computed in f32 as the reference does.
fn rms_norm(x: &Tensor, weight: &Tensor, eps: f32) -> candle_core::Result<Tensor> {
    let dtype = x.dtype();
    let x = x.contiguous()?;
    if dtype == DType::F32 {
        return candle_nn::ops::rms_norm(&x, weight, eps);
    }
    let w = weight.to_dtype(DType::F32)?;
    candle_nn::ops::rms_norm(&x.to_dtype(DType::F32)?, &w, eps)?.to_dtype(dtype)
}

/// The first index of the largest logit and its softmax probability.
fn argmax_with_prob(logits: &[f32]) -> (u32, f32) {
    let mut best = 0usize;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    let max = logits.get(best).copied().unwrap_or(0.0);
    let sum: f64 = logits.iter().map(|&v| ((v - max) as f64).exp()).sum();
    (best as u32, (1.0 / sum) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `json` as config.json would be.
    fn parse(json: serde_json::Value) -> Result<Config, ModelError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, json.to_string()).unwrap();
        Config::read(&path)
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "model_type": "qwen2", "vocab_size": 10, "hidden_size": 8,
            "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
            "num_key_value_heads": 1, "rms_norm_eps": 1e-6
        })
    }

    #[test]
    fn qwen2_config_defaults_to_biased_qkv_and_derived_head_dim() {
        let cfg = parse(base()).unwrap();
        assert_eq!(cfg.arch, Arch::Qwen2);
        assert_eq!(cfg.head_dim, 4);
        assert!(cfg.qkv_bias && !cfg.o_bias);
        assert_eq!(cfg.rope_theta, 10_000.0);
    }

    #[test]
    fn qwen3_config_reads_explicit_head_dim_and_rope_parameters() {
        let mut json = base();
        json["model_type"] = "qwen3".into();
        json["head_dim"] = 6.into();
        json["rope_parameters"] = serde_json::json!({"rope_theta": 5.0, "rope_type": "default"});
        let cfg = parse(json).unwrap();
        assert_eq!(cfg.arch, Arch::Qwen3);
        assert_eq!(cfg.head_dim, 6);
        assert!(!cfg.qkv_bias);
        assert_eq!(cfg.rope_theta, 5.0);
    }

    #[test]
    fn unsupported_configs_are_refused_with_the_reason() {
        for (key, value, word) in [
            (
                "model_type",
                serde_json::json!("qwen3_moe"),
                "qwen3_moe is not supported",
            ),
            ("hidden_act", serde_json::json!("gelu"), "gelu"),
            ("use_sliding_window", serde_json::json!(true), "sliding"),
            (
                "rope_scaling",
                serde_json::json!({"type": "yarn", "factor": 4.0}),
                "yarn",
            ),
            (
                "num_key_value_heads",
                serde_json::json!(3),
                "key/value heads",
            ),
        ] {
            let mut json = base();
            json[key] = value;
            let err = parse(json).unwrap_err().to_string();
            assert!(err.contains(word), "{key}: {err}");
        }
    }

    #[test]
    fn bf16_weights_as_on_a_gpu_give_f32_logits_close_to_f32_weights() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny/qwen3");
        let f32_lm = DecoderLm::load_as(&dir, None, &Device::Cpu, DType::F32).unwrap();
        let bf16_lm = DecoderLm::load_as(&dir, None, &Device::Cpu, DType::BF16).unwrap();
        // Two lengths, so the padded path runs too.
        let batch = vec![vec![321, 82, 88, 270, 68, 76, 198], vec![40, 77, 307]];
        let want: Vec<Vec<f32>> = f32_lm.last_logits(&batch).unwrap().to_vec2().unwrap();
        let got = bf16_lm.last_logits(&batch).unwrap();
        assert_eq!(got.dtype(), DType::F32);
        let got: Vec<Vec<f32>> = got.to_vec2().unwrap();
        let worst = got
            .iter()
            .flatten()
            .zip(want.iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 0.1, "bf16 drifts by {worst}");
        let hidden = bf16_lm.last_hidden(&batch).unwrap();
        assert_eq!((hidden.dtype(), hidden.dims()), (DType::F32, &[2, 32][..]));
        let generated = bf16_lm.generate_greedy(&batch[0], 3, &[]).unwrap();
        assert_eq!(generated.ids.len(), 3);
    }

    #[test]
    fn length_batches_sort_cap_the_count_and_the_padded_tokens() {
        assert_eq!(
            length_batches(&[5, 1, 3, 2, 4], 2),
            vec![vec![1, 3], vec![2, 4], vec![0]]
        );
        let long = MAX_BATCH_TOKENS / 2 + 1;
        // Two long sequences would exceed the token budget: one each.
        assert_eq!(
            length_batches(&[long, 10, long], 8),
            vec![vec![1], vec![0], vec![2]]
        );
        assert!(length_batches(&[], 8).is_empty());
    }

    #[test]
    fn argmax_takes_the_first_of_equal_logits_and_its_probability() {
        let (id, p) = argmax_with_prob(&[0.0, 2.0, 2.0, 1.0]);
        assert_eq!(id, 1);
        let expected = 1.0 / (2.0 + (-2.0f64).exp() + (-1.0f64).exp());
        assert!((p as f64 - expected).abs() < 1e-6);
    }
}
