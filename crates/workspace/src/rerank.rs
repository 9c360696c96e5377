//! The second stage: which reranker a search uses, fetched and loaded.
//!
//! A choice is `none`, `default` (this machine's: a GPU build with a GPU
//! reranks with Qwen3-Reranker-0.6B; on the CPU no reranker has yet
//! measured better than the first stage here, so none), a known
//! reranker's id, or a model directory.

use std::path::{Path, PathBuf};

use quarry_models::rerank::{
    find_reranker, known_rerankers, load_reranker, Reranker, RerankerKind,
};
use quarry_models::{
    ensure_model_with, model_dir, select_device, DevicePreference, FetchEvent, FetchOptions,
};

use crate::Problem;

/// The reranker a GPU build uses by default.
pub const GPU_DEFAULT_RERANKER: &str = "Qwen/Qwen3-Reranker-0.6B";
/// First-stage hits a reranker reads by default: more on a GPU, where
/// each costs little.
pub const DEFAULT_DEPTH_GPU: usize = 100;
pub const DEFAULT_DEPTH_CPU: usize = 30;

/// A loaded reranker and the hits it reads.
pub struct LoadedReranker {
    pub reranker: Box<dyn Reranker>,
    pub depth: usize,
    /// Where it runs, for people ("cpu (2 threads)", "cuda:0").
    pub device: String,
}

/// What `default` means on this machine: the GPU default when this build
/// has GPU support and the preference allows it, else none.
pub fn machine_default(device: DevicePreference) -> &'static str {
    if quarry_models::gpu_support_built() && device == DevicePreference::Auto {
        GPU_DEFAULT_RERANKER
    } else {
        "none"
    }
}

/// Resolves `choice` (`none`, `default`, a known id or a directory) and
/// loads it; `None` for no second stage. `kind` overrides what a
/// directory's files say; `depth` overrides the device's default.
pub fn load(
    home: &Path,
    choice: &str,
    kind: Option<RerankerKind>,
    depth: Option<usize>,
    device: DevicePreference,
    on_fetch: &mut dyn FnMut(FetchEvent),
) -> Result<Option<LoadedReranker>, Problem> {
    let choice = match choice.trim() {
        "default" | "" => machine_default(device),
        other => other,
    };
    if choice.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let (candle_device, description) = select_device(device);
    let on_gpu = !candle_device.is_cpu();
    let path = PathBuf::from(choice);
    let (name, dir, kind) = if path.is_dir() {
        let name = path
            .file_name()
            .map_or_else(|| choice.to_string(), |n| n.to_string_lossy().into_owned());
        (name, path, kind)
    } else if let Some(known) = find_reranker(choice) {
        let spec = known.files();
        let dir = match model_dir(home, &spec) {
            // Placed by hand (sharded weights, or an offline machine).
            dir if dir.join("config.json").is_file() => dir,
            _ => ensure_model_with(
                home,
                &spec,
                &FetchOptions {
                    try_pip: false,
                    ..FetchOptions::default()
                },
                on_fetch,
            )?,
        };
        (known.id.to_string(), dir, Some(kind.unwrap_or(known.kind)))
    } else {
        let known: Vec<&str> = known_rerankers().iter().map(|r| r.id).collect();
        return Err(Problem::new(
            format!("Unknown reranker `{choice}`: not a known model and not a directory"),
            format!(
                "Use none, default, one of {}, or the path of a model directory.",
                known.join(", ")
            ),
        ));
    };
    let reranker = load_reranker(&name, &dir, kind, None, &candle_device).map_err(|e| {
        let problem = Problem::from(e);
        Problem::new(
            format!(
                "Cannot load the reranker {name} from {}: {}",
                dir.display(),
                problem.message
            ),
            problem.hint.unwrap_or_else(|| {
                "Check the model directory's files, or choose --rerank none.".into()
            }),
        )
    })?;
    let depth = depth.unwrap_or(if on_gpu {
        DEFAULT_DEPTH_GPU
    } else {
        DEFAULT_DEPTH_CPU
    });
    Ok(Some(LoadedReranker {
        reranker,
        depth,
        device: description,
    }))
}
