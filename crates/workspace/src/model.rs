//! The embedding model, fetched on first run and loaded once per process.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quarry_models::{
    ensure_model, ensure_runtime, find_runtime, resolve_model, runtime_spec, DevicePreference,
    Embedder, EmbedderOptions, Engine, FetchEvent, ModelSpec,
};

use crate::{Event, Problem, Workspace};

/// Where the model is: shown as a banner while it is not ready.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelState {
    /// `checking`, `downloading`, `verifying`, `loading`, `ready` or `error`.
    pub phase: &'static str,
    /// The model id.
    pub model: String,
    /// Bytes fetched so far (while downloading).
    pub done: u64,
    /// Bytes to fetch, when known.
    pub total: Option<u64>,
    /// Where it is fetched from.
    pub source: Option<String>,
    /// The engine and device once loaded ("openvino cpu", "candle cpu").
    pub device: Option<String>,
    /// Why it failed.
    pub error: Option<Problem>,
}

/// The engine from `$QUARRY_ENGINE` (auto, candle or openvino; default auto).
pub fn engine_from_env() -> Result<Engine, Problem> {
    match std::env::var("QUARRY_ENGINE") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse::<Engine>().map_err(|e| {
            Problem::new(
                format!("QUARRY_ENGINE: {e}"),
                "Set it to auto, candle or openvino, or unset it.",
            )
        }),
        _ => Ok(Engine::Auto),
    }
}

/// Makes sure `spec` is installed under `home` (fetching it on first use,
/// reporting through `on_fetch`) and loads it on `device`.
pub fn load_embedder(
    home: &Path,
    spec: &'static ModelSpec,
    device: DevicePreference,
    on_fetch: &mut dyn FnMut(FetchEvent),
) -> Result<Embedder, Problem> {
    let dir = ensure_model(home, spec, on_fetch)?;
    open_embedder(home, &dir, spec, device)
}

/// Loads an installed model with the engine `$QUARRY_ENGINE` asks for.
fn open_embedder(
    home: &Path,
    dir: &Path,
    spec: &'static ModelSpec,
    device: DevicePreference,
) -> Result<Embedder, Problem> {
    let options = EmbedderOptions {
        engine: engine_from_env()?,
        device,
        home: home.to_path_buf(),
        ..EmbedderOptions::default()
    };
    let embedder = Embedder::open(dir, spec, &options).map_err(Problem::from)?;
    tracing::info!(engine = %embedder.engine(), "loaded {}", spec.id);
    Ok(embedder)
}

/// The model of one workspace: its state, and the embedder once loaded.
pub(crate) struct ModelSlot {
    state: Mutex<ModelState>,
    embedder: Mutex<Option<Embedder>>,
    changed: tokio::sync::watch::Sender<()>,
}

impl ModelState {
    /// The state of `model` before anything is known about it.
    fn checking(model: &str) -> Self {
        ModelState {
            phase: "checking",
            model: model.to_string(),
            done: 0,
            total: None,
            source: None,
            device: None,
            error: None,
        }
    }
}

impl ModelSlot {
    pub(crate) fn new(model: &str) -> Self {
        ModelSlot {
            state: Mutex::new(ModelState::checking(model)),
            embedder: Mutex::new(None),
            changed: tokio::sync::watch::channel(()).0,
        }
    }

    /// Forgets the loaded model for `model` (not loaded yet); the caller
    /// starts loading it.
    pub(crate) fn reset(&self, model: &str) {
        *self.embedder.lock().expect("embedder") = None;
        *self.state.lock().expect("model state") = ModelState::checking(model);
        self.changed.send_replace(());
    }

    pub(crate) fn state(&self) -> ModelState {
        self.state.lock().expect("model state").clone()
    }

    fn update(&self, ws: &Workspace, f: impl FnOnce(&mut ModelState)) {
        let state = {
            let mut state = self.state.lock().expect("model state");
            f(&mut state);
            state.clone()
        };
        self.changed.send_replace(());
        ws.emit(Event::Model(state));
    }

    /// The embedder, or why there is none yet.
    pub(crate) fn ready(&self) -> Result<Embedder, Problem> {
        if let Some(embedder) = self.embedder.lock().expect("embedder").clone() {
            return Ok(embedder);
        }
        let state = self.state();
        if let Some(error) = state.error {
            return Err(error);
        }
        let doing = match (state.phase, state.total) {
            ("downloading", Some(total)) if total > 0 => format!(
                "still downloading ({} of {} MB)",
                state.done / 1_000_000,
                total / 1_000_000
            ),
            ("downloading", _) => "still downloading".into(),
            _ => "still loading".into(),
        };
        Err(Problem::new(
            format!("The search model {} is {doing}.", state.model),
            "Search works as soon as it is ready; everything else can be used meanwhile.",
        ))
    }

    /// Waits until the model is ready or has failed.
    pub(crate) async fn wait_ready(&self) -> Result<Embedder, Problem> {
        let mut changes = self.changed.subscribe();
        loop {
            match self.ready() {
                Ok(embedder) => return Ok(embedder),
                Err(_) if self.state().error.is_none() => {}
                Err(problem) => return Err(problem),
            }
            if changes.changed().await.is_err() {
                return self.ready();
            }
        }
    }
}

/// Fetches (first run) and loads the model on a blocking thread, reporting
/// every step as [`Event::Model`].
pub(crate) fn start_loading(ws: &Arc<Workspace>) {
    let ws = Arc::clone(ws);
    tokio::task::spawn_blocking(move || {
        let slot = &ws.model;
        let model = slot.state().model;
        let result = match resolve_model(&model) {
            Err(e) => Err(Problem::new(
                format!("The index uses the model `{model}`, which cannot be used here: {e}"),
                "Rebuild the index with `quarry index --rebuild DIR`.",
            )),
            Ok(spec) => load(&ws, spec),
        };
        match result {
            // A model chosen since this load started replaces it.
            Ok(_) if slot.state().model != model => {}
            Ok(embedder) => {
                let device = embedder.engine().to_string();
                *slot.embedder.lock().expect("embedder") = Some(embedder);
                slot.update(&ws, |s| {
                    s.phase = "ready";
                    s.device = Some(device);
                });
            }
            Err(problem) => {
                tracing::warn!("model unavailable: {problem}");
                slot.update(&ws, |s| {
                    s.phase = "error";
                    s.error = Some(problem);
                })
            }
        }
    });
}

fn load(ws: &Workspace, spec: &'static ModelSpec) -> Result<Embedder, Problem> {
    let slot = &ws.model;
    let home = ws.locations.home.clone();
    let mut last_sent = Instant::now() - Duration::from_secs(1);
    let mut on_fetch = |event: FetchEvent| match event {
        FetchEvent::Started { source } => slot.update(ws, |s| {
            s.phase = "downloading";
            s.source = Some(source);
            s.done = 0;
            s.total = None;
        }),
        FetchEvent::Progress { done, total } => {
            // Many events a second while downloading: a few are enough.
            if last_sent.elapsed() >= Duration::from_millis(100) || Some(done) == total {
                last_sent = Instant::now();
                slot.update(ws, |s| {
                    s.done = done;
                    s.total = total;
                });
            }
        }
        FetchEvent::Verifying => slot.update(ws, |s| s.phase = "verifying"),
        FetchEvent::Finished { .. } => slot.update(ws, |s| s.phase = "loading"),
    };
    let device = ws.settings().device_preference();
    let dir = ensure_model(&home, spec, &mut on_fetch).map_err(Problem::from)?;
    // The OpenVINO runtime embeds several times faster on a CPU; without
    // it candle runs the model, so failing to get it is only a note.
    if runtime_spec().is_some() && find_runtime(&home).is_none() {
        if let Err(e) = ensure_runtime(&home, &mut on_fetch) {
            tracing::warn!("the OpenVINO runtime is unavailable, using candle: {e}");
        }
    }
    slot.update(ws, |s| s.phase = "loading");
    open_embedder(&home, &dir, spec, device)
}
