//! Quarry's desktop app: a window over [`quarry_workspace`]. This crate only
//! translates — commands in, events out; indexing, search, settings and
//! file access rules all live in the engine crates.

pub mod command_names;
pub mod commands;

use std::sync::Arc;

use quarry_workspace::{Event, EventSink, Locations, Workspace};
use tauri::{AppHandle, Emitter, Manager, Runtime};

/// Forwards workspace events to the window: `index-progress`,
/// `model-progress` and `repositories-changed` (with the fresh list).
pub fn event_sink<R: Runtime>(app: AppHandle<R>) -> EventSink {
    Arc::new(move |event| {
        let sent = match event {
            Event::Index(e) => app.emit("index-progress", e),
            Event::Model(m) => app.emit("model-progress", m),
            Event::RepositoriesChanged => {
                let app = app.clone();
                tauri::async_runtime::spawn(async move {
                    let Some(ws) = app.try_state::<Arc<Workspace>>() else {
                        return;
                    };
                    match ws.repositories().await {
                        Ok(repos) => {
                            if let Err(e) = app.emit("repositories-changed", repos) {
                                tracing::warn!("cannot send the repository list: {e}");
                            }
                        }
                        Err(problem) => tracing::warn!("cannot list repositories: {problem}"),
                    }
                });
                Ok(())
            }
        };
        if let Err(e) = sent {
            tracing::warn!("cannot send an event to the window: {e}");
        }
    })
}

/// Registers the plugin and commands the window uses.
pub fn with_commands<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder
        .plugin(tauri_plugin_dialog::init())
        .invoke_handler(tauri::generate_handler![
            commands::app_state,
            commands::add_repository,
            commands::reindex_repository,
            commands::cancel_indexing,
            commands::remove_repository,
            commands::search,
            commands::detect_mode,
            commands::preview,
            commands::open_in_editor,
            commands::save_settings,
        ])
}

/// Opens the workspace at `locations` and makes it the app's state; the
/// problems it met opening (unreadable settings, a damaged index) are
/// logged and kept for the window.
pub fn manage_workspace<R: Runtime>(app: &tauri::App<R>, locations: Locations) {
    let sink = event_sink(app.handle().clone());
    let (workspace, problems) = tauri::async_runtime::block_on(Workspace::start(locations, sink));
    for problem in &problems {
        tracing::warn!("{problem}");
    }
    app.manage(workspace);
    app.manage(commands::StartupProblems(problems));
}

/// Runs the app until its window closes.
pub fn run() {
    quarry_workspace::init_logging();
    let result = with_commands(tauri::Builder::default())
        .setup(|app| {
            manage_workspace(app, Locations::from_env());
            Ok(())
        })
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("error: Quarry's window could not start: {e}");
        std::process::exit(1);
    }
}
