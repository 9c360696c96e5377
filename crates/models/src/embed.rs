use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;
use tokenizers::{Tokenizer, TruncationParams};

use crate::bert::Bert;
use crate::decoder_embed::{DecoderEmbedStyle, DecoderEmbedder};
use crate::device::{model_dtype, select_device, BatchLimits, DevicePreference, EncoderShape};
use crate::error::ModelError;
use crate::nomic::NomicEmbedder;
use crate::openvino::{runtime::find_runtime, OpenVinoBert, Precision};
use crate::spec::{ModelFamily, ModelSpec, QUERY_TASK};
use crate::wordpiece::WordPieceCounter;

/// Texts and padded tokens (batch size x longest sequence) per forward pass
/// for candle on the CPU; GPUs size batches from their free memory.
const CANDLE_CPU_LIMITS: BatchLimits = BatchLimits {
    max_rows: 32,
    max_tokens: 4096,
};

/// Which inference engine runs the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// A GPU through candle when built with one and available; else OpenVINO when
    /// its runtime is installed (faster on CPUs); else candle on the CPU.
    #[default]
    Auto,
    /// candle (pure Rust): CPU, or CUDA / Metal behind cargo features.
    Candle,
    /// OpenVINO's CPU runtime, loaded at run time (see `quarry models fetch`).
    OpenVino,
}

impl std::str::FromStr for Engine {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Engine::Auto),
            "candle" => Ok(Engine::Candle),
            "openvino" => Ok(Engine::OpenVino),
            other => Err(format!(
                "unknown engine {other:?} (expected auto, candle or openvino)"
            )),
        }
    }
}

/// How to run an [`Embedder`].
#[derive(Debug, Clone, Default)]
pub struct EmbedderOptions {
    pub engine: Engine,
    /// Device for candle.
    pub device: DevicePreference,
    /// Precision for OpenVINO.
    pub precision: Precision,
    /// Quarry home, where an installed OpenVINO runtime is looked for.
    pub home: std::path::PathBuf,
}

enum Backend {
    Candle {
        model: Bert,
        device: Device,
        limits: BatchLimits,
    },
    OpenVino(OpenVinoBert),
    /// CodeRankEmbed's NomicBert (candle).
    Nomic(Box<NomicEmbedder>),
    /// A decoder embedder: Qwen3-Embedding, CodeR / BGE-Coder (candle).
    Decoder(Box<DecoderEmbedder>),
}

/// A sentence encoder: BERT, mean pooling over the attention mask, L2 normalisation.
///
/// `Embedder` is `Send + Sync`, and cloning it is cheap (the model is shared),
/// so pipeline stages on other threads can own one.
#[derive(Clone)]
pub struct Embedder {
    spec: &'static ModelSpec,
    backend: Arc<Backend>,
    /// Truncates to `spec.max_tokens`, no padding.
    tokenizer: Arc<Tokenizer>,
    /// No truncation: for counting tokens.
    counter: Arc<Tokenizer>,
    /// Exact counts without the tokenizer for ASCII text, when the tokenizer
    /// is a BERT WordPiece one (the chunker counts every line of every file).
    fast_counter: Option<Arc<WordPieceCounter>>,
    /// What runs the model, for people: "candle cpu (2 threads)", "openvino 2026.4.1 cpu (bf16)".
    engine: String,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("model", &self.spec.id)
            .field("engine", &self.engine)
            .finish()
    }
}

impl Embedder {
    /// Loads the model from `dir` on the engine `opts` asks for.
    ///
    /// With [`Engine::Auto`], a failure of OpenVINO is logged and candle is used
    /// instead; with [`Engine::OpenVino`] it is an error.
    pub fn open(
        dir: &Path,
        spec: &'static ModelSpec,
        opts: &EmbedderOptions,
    ) -> Result<Self, ModelError> {
        let gpu_built = cfg!(any(feature = "cuda", feature = "metal"));
        if spec.family != ModelFamily::Bert && opts.engine == Engine::OpenVino {
            return Err(ModelError::Runtime(format!(
                "Quarry runs only BERT models on OpenVINO; {} runs on candle (QUARRY_ENGINE=auto)",
                spec.id
            )));
        }
        let try_openvino = spec.family == ModelFamily::Bert
            && match opts.engine {
                Engine::Candle => false,
                Engine::OpenVino => true,
                Engine::Auto => !(gpu_built && opts.device == DevicePreference::Auto),
            };
        if try_openvino {
            let runtime = find_runtime(&opts.home);
            let loaded = match &runtime {
                Some(lib) => OpenVinoBert::load(lib, dir, opts.precision),
                None => Err(
                    "the OpenVINO runtime is not installed (`quarry models fetch` installs it)"
                        .into(),
                ),
            };
            match loaded {
                Ok(ov) => {
                    let engine = ov.description().to_string();
                    return Self::with_backend(dir, spec, Backend::OpenVino(ov), engine);
                }
                Err(e) if opts.engine == Engine::OpenVino => return Err(ModelError::Runtime(e)),
                // Installed but broken: say so, since everything gets slower.
                Err(e) if runtime.is_some() => {
                    tracing::warn!("OpenVINO failed ({e}); using candle, which is slower")
                }
                Err(e) => tracing::info!("using candle: {e}"),
            }
        }
        let (device, description) = select_device(opts.device);
        let dtype = model_dtype(&device);
        let mut embedder = Self::load(dir, spec, device)?;
        embedder.engine = format!("candle {description}, {}", dtype.as_str());
        Ok(embedder)
    }

    /// Loads the model files (config.json, model.safetensors, tokenizer.json) from
    /// `dir` into candle on `device`, in the device's precision
    /// ([`model_dtype`]: f32 on the CPU, bf16 on GPUs that have it).
    pub fn load(dir: &Path, spec: &'static ModelSpec, device: Device) -> Result<Self, ModelError> {
        let dtype = model_dtype(&device);
        Self::load_as(dir, spec, device, dtype)
    }

    /// [`Embedder::load`] in `dtype`: BERT models compute in it, other
    /// families keep their own choice. On the CPU, bf16 runs the GPU path's
    /// conversions (tests).
    pub fn load_as(
        dir: &Path,
        spec: &'static ModelSpec,
        device: Device,
        dtype: DType,
    ) -> Result<Self, ModelError> {
        match spec.family {
            ModelFamily::Bert => {}
            ModelFamily::CodeRankEmbed => {
                let nomic = NomicEmbedder::load(dir, device.clone())?;
                Self::check_dim(spec, nomic.dim())?;
                let engine = format!("candle {device:?}");
                return Self::with_backend(dir, spec, Backend::Nomic(Box::new(nomic)), engine);
            }
            ModelFamily::Qwen3Embedding | ModelFamily::BgeCoder => {
                let style = if spec.family == ModelFamily::Qwen3Embedding {
                    DecoderEmbedStyle::qwen3_embedding()
                } else {
                    DecoderEmbedStyle::bge_coder()
                };
                let decoder = DecoderEmbedder::load(dir, style, &device)?;
                Self::check_dim(spec, decoder.dimension())?;
                let engine = format!("candle {device:?}");
                return Self::with_backend(dir, spec, Backend::Decoder(Box::new(decoder)), engine);
            }
        }
        let config_path = dir.join("config.json");
        let config_bytes =
            std::fs::read(&config_path).map_err(|e| ModelError::io(&config_path, e))?;
        let config: Config =
            serde_json::from_slice(&config_bytes).map_err(|e| ModelError::Config {
                path: config_path.clone(),
                message: e.to_string(),
            })?;

        let weights_path = dir.join("model.safetensors");
        let weights = std::fs::read(&weights_path).map_err(|e| ModelError::io(&weights_path, e))?;
        let vb = VarBuilder::from_buffered_safetensors(weights, dtype, &device)?;
        let model = Bert::load(vb, &config)?;
        let shape = EncoderShape {
            hidden: config.hidden_size,
            intermediate: config.intermediate_size,
            heads: config.num_attention_heads,
            max_len: spec.max_tokens,
        };
        let limits = BatchLimits::for_device(&device, shape, dtype, CANDLE_CPU_LIMITS);
        let engine = format!("candle {device:?}, {}", dtype.as_str());
        let backend = Backend::Candle {
            model,
            device,
            limits,
        };
        Self::with_backend(dir, spec, backend, engine)
    }

    /// A model whose vectors are not as wide as its description says would
    /// write vectors the index cannot hold.
    fn check_dim(spec: &ModelSpec, dim: usize) -> Result<(), ModelError> {
        if dim == spec.dim {
            return Ok(());
        }
        Err(ModelError::Config {
            path: std::path::PathBuf::from(spec.id),
            message: format!("the model makes {dim}-d vectors, not {}", spec.dim),
        })
    }

    fn with_backend(
        dir: &Path,
        spec: &'static ModelSpec,
        backend: Backend,
        engine: String,
    ) -> Result<Self, ModelError> {
        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer_json =
            std::fs::read(&tokenizer_path).map_err(|e| ModelError::io(&tokenizer_path, e))?;
        let mut counter = Tokenizer::from_bytes(&tokenizer_json).map_err(|e| {
            ModelError::Tokenizer(format!("cannot load {}: {e}", tokenizer_path.display()))
        })?;
        let fast_counter = WordPieceCounter::from_tokenizer_json(&tokenizer_json).map(Arc::new);
        counter.with_padding(None);
        counter
            .with_truncation(None)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let mut tokenizer = counter.clone();
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: spec.max_tokens,
                ..Default::default()
            }))
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;

        Ok(Embedder {
            spec,
            backend: Arc::new(backend),
            tokenizer: Arc::new(tokenizer),
            counter: Arc::new(counter),
            fast_counter,
            engine,
        })
    }

    pub fn model_id(&self) -> &str {
        self.spec.id
    }

    pub fn dim(&self) -> usize {
        self.spec.dim
    }

    pub fn max_tokens(&self) -> usize {
        self.spec.max_tokens
    }

    /// What runs the model, e.g. "openvino 2026.4.1 cpu (auto precision)" or "candle cpu (2 threads)".
    pub fn engine(&self) -> &str {
        &self.engine
    }

    /// Embeds texts; returns one L2-normalised vector per input, in input order.
    ///
    /// Inputs are truncated to [`Self::max_tokens`] tokens, sorted by length and
    /// batched so that little padding is needed.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        match &*self.backend {
            Backend::Nomic(nomic) => return nomic.embed_documents(texts),
            Backend::Decoder(decoder) => return decoder.embed_documents(texts),
            Backend::Candle { .. } | Backend::OpenVino(_) => {}
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        // Longest first: the first batch shows the worst-case memory right away.
        order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].get_ids().len()));

        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        let mut start = 0;
        while start < order.len() {
            let longest = encodings[order[start]].get_ids().len().max(1);
            let width = self.padded_width(longest);
            let fit = self.batch_limits().rows_for(width);
            let end = (start + fit).min(order.len());
            let batch = &order[start..end];
            let rows: Vec<&[u32]> = batch.iter().map(|&i| encodings[i].get_ids()).collect();
            let vectors = self.forward(&rows, width)?;
            for (&i, v) in batch.iter().zip(vectors) {
                out[i] = v;
            }
            start = end;
        }
        Ok(out)
    }

    /// The width a batch whose longest text has `longest` tokens is padded
    /// to: on OpenVINO a multiple of 16 tokens (it keeps kernels and buffers
    /// per input shape, so few widths keep its memory flat); candle keeps
    /// nothing per shape and pads to the longest.
    pub fn padded_width(&self, longest: usize) -> usize {
        match *self.backend {
            Backend::OpenVino(_) => crate::openvino::padded_width(longest, self.spec.max_tokens),
            _ => longest,
        }
    }

    /// Batching of [`Self::embed`]: at most this many texts and padded
    /// tokens per forward pass.
    pub fn batch_limits(&self) -> BatchLimits {
        match &*self.backend {
            Backend::Candle { limits, .. } => *limits,
            Backend::Nomic(nomic) => nomic.batch_limits(),
            Backend::Decoder(_) => CANDLE_CPU_LIMITS,
            Backend::OpenVino(_) => crate::openvino::BATCH_LIMITS,
        }
    }

    /// Embeds search queries as the model wants them: BERT as they are,
    /// CodeRankEmbed with its query prefix, decoder embedders with their
    /// instruction ([`QUERY_TASK`]). Documents go through [`Self::embed`].
    pub fn embed_queries(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        match &*self.backend {
            Backend::Nomic(nomic) => nomic.embed_queries(texts),
            Backend::Decoder(decoder) => decoder.embed_queries(QUERY_TASK, texts),
            Backend::Candle { .. } | Backend::OpenVino(_) => self.embed(texts),
        }
    }

    /// Embeds one search query (see [`Self::embed_queries`]).
    pub fn embed_query(&self, text: &str) -> Result<Vec<f32>, ModelError> {
        Ok(self.embed_queries(&[text])?.pop().unwrap_or_default())
    }

    /// Number of wordpiece tokens in `text`, without special tokens and without truncation.
    pub fn count_tokens(&self, text: &str) -> usize {
        if let Some(count) = self.fast_counter.as_ref().and_then(|c| c.count(text)) {
            return count;
        }
        match self.counter.encode(text, false) {
            Ok(enc) => enc.get_ids().len(),
            // Tokenisation of a &str does not fail in practice; fall back to a rough estimate.
            Err(_) => text.split_whitespace().count(),
        }
    }

    /// One forward pass over a batch of token id rows (padded to `len`).
    fn forward(&self, rows: &[&[u32]], len: usize) -> Result<Vec<Vec<f32>>, ModelError> {
        match &*self.backend {
            Backend::OpenVino(ov) => ov.forward(rows, len).map_err(ModelError::Runtime),
            Backend::Candle { model, device, .. } => Self::forward_candle(model, device, rows, len),
            // Never reached: these embed through their own methods.
            Backend::Nomic(_) | Backend::Decoder(_) => Err(ModelError::Runtime(
                "token rows are only run through BERT backends".into(),
            )),
        }
    }

    fn forward_candle(
        model: &Bert,
        device: &Device,
        rows: &[&[u32]],
        len: usize,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let (hidden, mask) = model.forward_rows(rows, len, device)?; // (b, len, dim)
        let mask_f = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (b, len, 1)
        let summed = hidden.broadcast_mul(&mask_f)?.sum(1)?; // (b, dim)
        let counts = mask_f.sum(1)?.clamp(1e-9f32, f32::MAX)?; // (b, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12f32, f32::MAX)?;
        let normed = mean.broadcast_div(&norm)?;
        Ok(normed.to_vec2::<f32>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedder_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Embedder>();
    }
}
