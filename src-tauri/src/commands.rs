//! The commands the window calls. Each takes one `request` object (or
//! nothing) whose fields mirror `ui/src/api.ts`, calls the workspace, and
//! returns its result; failures are [`Problem`]s the window shows as text.

use std::sync::Arc;

use quarry_search::Mode;
use quarry_workspace::{
    editor::default_editor_command, settings::device_choices, ModelState, Preview, Problem,
    Repository, SearchQuery, SearchView, Settings, Workspace,
};
use tauri::State;

/// Problems met while starting (shown once the window asks for its state).
pub struct StartupProblems(pub Vec<Problem>);

type Ws<'a> = State<'a, Arc<Workspace>>;

/// Choices the settings form offers.
#[derive(Debug, serde::Serialize)]
pub struct SettingsChoices {
    models: Vec<String>,
    devices: Vec<String>,
    default_editor: String,
}

/// Everything the window needs when it opens.
#[derive(Debug, serde::Serialize)]
pub struct AppState {
    db: String,
    repositories: Vec<Repository>,
    model: ModelState,
    settings: Settings,
    choices: SettingsChoices,
    languages: Vec<String>,
    /// Problems met at startup (e.g. unreadable settings: defaults are used).
    problems: Vec<Problem>,
}

/// The window's initial state.
#[tauri::command]
pub async fn app_state(
    ws: Ws<'_>,
    startup: State<'_, StartupProblems>,
) -> Result<AppState, Problem> {
    Ok(AppState {
        db: ws.locations().db.to_string_lossy().into_owned(),
        repositories: ws.repositories().await?,
        model: ws.model_state(),
        settings: ws.settings(),
        choices: SettingsChoices {
            models: quarry_workspace::known_model_ids(),
            devices: device_choices(),
            default_editor: default_editor_command(),
        },
        languages: ws.languages(),
        problems: startup.0.clone(),
    })
}

#[derive(Debug, serde::Deserialize)]
pub struct PathRequest {
    path: String,
}

#[derive(Debug, serde::Deserialize)]
pub struct RootRequest {
    root: String,
}

/// Adds a folder and starts indexing it in the background.
#[tauri::command]
pub async fn add_repository(ws: Ws<'_>, request: PathRequest) -> Result<Repository, Problem> {
    ws.add_repository(&request.path)
}

/// Indexes a repository again (only what changed).
#[tauri::command]
pub async fn reindex_repository(ws: Ws<'_>, request: RootRequest) -> Result<(), Problem> {
    ws.reindex(&request.root);
    Ok(())
}

/// Stops a repository's indexing.
#[tauri::command]
pub async fn cancel_indexing(ws: Ws<'_>, request: RootRequest) -> Result<(), Problem> {
    ws.cancel(&request.root);
    Ok(())
}

/// Removes a repository's rows from the index (not its files).
#[tauri::command]
pub async fn remove_repository(ws: Ws<'_>, request: RootRequest) -> Result<(), Problem> {
    ws.inner().remove_repository(&request.root).await
}

/// Searches.
#[tauri::command]
pub async fn search(ws: Ws<'_>, request: SearchQuery) -> Result<SearchView, Problem> {
    ws.search(request).await
}

#[derive(Debug, serde::Deserialize)]
pub struct QueryRequest {
    query: String,
}

/// How auto mode reads a query, for the mode switch to show while typing.
#[tauri::command]
pub async fn detect_mode(request: QueryRequest) -> Result<Mode, Problem> {
    Ok(quarry_search::detect_mode(&request.query))
}

#[derive(Debug, serde::Deserialize)]
pub struct PreviewRequest {
    root: String,
    path: String,
    start_line: u32,
    end_line: u32,
    context: u32,
}

/// Lines of an indexed file around a result.
#[tauri::command]
pub async fn preview(ws: Ws<'_>, request: PreviewRequest) -> Result<Preview, Problem> {
    ws.preview(
        &request.root,
        &request.path,
        request.start_line,
        request.end_line,
        request.context,
    )
    .await
}

#[derive(Debug, serde::Deserialize)]
pub struct OpenRequest {
    root: String,
    path: String,
    line: u32,
}

/// Opens an indexed file at a line in the user's editor.
#[tauri::command]
pub async fn open_in_editor(ws: Ws<'_>, request: OpenRequest) -> Result<(), Problem> {
    ws.open_in_editor(&request.root, &request.path, request.line)
        .await
}

/// Validates, saves and applies the settings.
#[tauri::command]
pub async fn save_settings(ws: Ws<'_>, request: Settings) -> Result<Settings, Problem> {
    ws.save_settings(request)
}
