//! The command layer as the window calls it: JSON in, JSON out, through
//! Tauri's real IPC handling and the app's real capabilities, over a real
//! workspace (model, index on disk, fixture repository).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quarry_workspace::Locations;
use serde_json::{json, Value};
use tauri::test::{get_ipc_response, mock_builder, MockRuntime, INVOKE_KEY};
use tauri::{Listener, WebviewWindow, WebviewWindowBuilder};

#[path = "../../tests/support.rs"]
mod support;
use support::{copy_tree, fixtures};

struct App {
    _app: tauri::App<MockRuntime>,
    main: WebviewWindow<MockRuntime>,
    intruder: WebviewWindow<MockRuntime>,
    phases: Arc<Mutex<Vec<String>>>,
    base: PathBuf,
    _dir: tempfile::TempDir,
}

fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_path_buf();
    let locations = Locations {
        db: base.join("index"),
        settings: base.join("config.toml"),
        home: Locations::from_env().home,
        embedding_cache: Some(base.join("embedding-cache")),
    };
    let app = quarry_app::with_commands(mock_builder())
        .build(tauri::generate_context!())
        .expect("app builds");
    quarry_app::manage_workspace(&app, locations);
    let phases = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&phases);
    app.listen_any("index-progress", move |event| {
        let payload: Value = serde_json::from_str(event.payload()).unwrap();
        seen.lock()
            .unwrap()
            .push(payload["phase"].as_str().unwrap().to_string());
    });
    let main = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .unwrap();
    let intruder = WebviewWindowBuilder::new(&app, "intruder", Default::default())
        .build()
        .unwrap();
    App {
        _app: app,
        main,
        intruder,
        phases,
        base,
        _dir: dir,
    }
}

fn invoke(window: &WebviewWindow<MockRuntime>, cmd: &str, args: Value) -> Result<Value, Value> {
    get_ipc_response(
        window,
        tauri::webview::InvokeRequest {
            cmd: cmd.into(),
            callback: tauri::ipc::CallbackFn(0),
            error: tauri::ipc::CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body: tauri::ipc::InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|body| body.deserialize::<Value>().unwrap())
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_window_adds_indexes_searches_previews_and_configures_through_its_commands() {
    let app = app();
    let state = invoke(&app.main, "app_state", json!({})).unwrap();
    assert_eq!(state["repositories"], json!([]));
    assert_eq!(state["problems"], json!([]));
    // This build has no GPU support: the form offers only what works.
    assert_eq!(state["choices"]["devices"], json!(["auto", "cpu"]));
    assert!(state["languages"]
        .as_array()
        .unwrap()
        .contains(&json!("rust")));
    assert_eq!(state["settings"]["max_file_size"], json!(1_048_576));

    let issue = "Traceback (most recent call last):\n  File \"app/db.py\", line 3, in connect\nValueError: bad dsn";
    let mode = invoke(
        &app.main,
        "detect_mode",
        json!({ "request": { "query": issue } }),
    )
    .unwrap();
    assert_eq!(mode, json!("issue"));

    let repo = app.base.join("repo");
    copy_tree(&fixtures().join("repo"), &repo);
    let added = invoke(
        &app.main,
        "add_repository",
        json!({ "request": { "path": repo } }),
    )
    .unwrap();
    assert_eq!(added["state"], json!("queued"));
    let root = added["root"].as_str().unwrap().to_string();
    wait_until("indexing to finish", || {
        let state = invoke(&app.main, "app_state", json!({})).unwrap();
        state["repositories"][0]["state"] == json!("up_to_date")
            && state["model"]["phase"] == json!("ready")
    });
    let phases = app.phases.lock().unwrap().clone();
    assert!(phases.contains(&"embedding".to_string()), "{phases:?}");
    assert_eq!(
        phases.last().map(String::as_str),
        Some("done"),
        "{phases:?}"
    );

    let results = invoke(
        &app.main,
        "search",
        json!({ "request": {
            "query": "retry an http request with backoff", "mode": "auto", "top_k": 5,
            "repos": [root], "languages": ["rust"], "path_globs": ["src/**"]
        }}),
    )
    .unwrap();
    assert_eq!(results["mode"], json!("text"));
    let hit = &results["hits"][0];
    assert_eq!(hit["symbol"], json!("retry_with_backoff"), "{results}");
    assert_eq!(hit["repo"], json!("repo"));
    let token = &hit["lines"][0][0];
    assert!(
        token["text"].is_string() && token.get("class").is_some(),
        "{token}"
    );

    let preview = invoke(
        &app.main,
        "preview",
        json!({ "request": { "root": root, "path": hit["path"], "start_line": hit["start_line"],
                             "end_line": hit["end_line"], "context": 2 }}),
    )
    .unwrap();
    assert!(
        preview["total_lines"].as_u64().unwrap()
            >= preview["lines"].as_array().unwrap().len() as u64
    );

    // Traversal out of the repository is refused, with words for the user.
    let refused = invoke(
        &app.main,
        "preview",
        json!({ "request": { "root": root, "path": "../config.toml", "start_line": 1,
                             "end_line": 1, "context": 0 }}),
    )
    .unwrap_err();
    assert!(
        refused["message"].as_str().unwrap().contains("not inside"),
        "{refused}"
    );
    assert!(refused["hint"].is_string());
    let refused = invoke(
        &app.main,
        "open_in_editor",
        json!({ "request": { "root": "/", "path": "etc/passwd", "line": 1 }}),
    )
    .unwrap_err();
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("not an indexed repository"),
        "{refused}"
    );

    // Settings: bad values are refused and explained; good ones are saved as TOML.
    let mut settings = state_settings(&app);
    settings["device"] = json!("tpu");
    let refused = invoke(&app.main, "save_settings", json!({ "request": settings })).unwrap_err();
    assert!(
        refused["message"].as_str().unwrap().contains("device"),
        "{refused}"
    );
    settings["device"] = json!("cpu");
    settings["exclude"] = json!(["vendor/"]);
    invoke(&app.main, "save_settings", json!({ "request": settings })).unwrap();
    let saved = std::fs::read_to_string(app.base.join("config.toml")).unwrap();
    assert!(
        saved.contains("device = \"cpu\"") && saved.contains("vendor/"),
        "{saved}"
    );
    assert_eq!(state_settings(&app)["exclude"], json!(["vendor/"]));

    // Removing deletes its rows.
    invoke(
        &app.main,
        "remove_repository",
        json!({ "request": { "root": root } }),
    )
    .unwrap();
    let state = invoke(&app.main, "app_state", json!({})).unwrap();
    assert_eq!(state["repositories"], json!([]));
    assert!(
        repo.join("src/retry.rs").is_file(),
        "files are never touched"
    );
}

fn state_settings(app: &App) -> Value {
    invoke(&app.main, "app_state", json!({})).unwrap()["settings"].clone()
}

#[test]
fn windows_without_the_capability_cannot_call_anything() {
    let app = app();
    for (cmd, args) in [
        ("app_state", json!({})),
        (
            "search",
            json!({ "request": { "query": "x", "mode": "auto", "top_k": 1 } }),
        ),
        (
            "open_in_editor",
            json!({ "request": { "root": "/", "path": "x", "line": 1 } }),
        ),
    ] {
        let denied = invoke(&app.intruder, cmd, args).unwrap_err();
        assert!(
            denied.to_string().contains("not allowed"),
            "{cmd}: {denied}"
        );
    }
}

#[test]
fn the_capability_grants_exactly_the_app_commands_events_and_folder_picker() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("capabilities/main.json"),
    )
    .unwrap();
    let capability: Value = serde_json::from_str(&text).unwrap();
    let mut granted: Vec<String> = capability["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    granted.sort();
    let mut expected: Vec<String> = quarry_app::command_names::COMMANDS
        .iter()
        .map(|c| format!("allow-{}", c.replace('_', "-")))
        .chain(
            [
                "core:event:allow-listen",
                "core:event:allow-unlisten",
                "dialog:allow-open",
            ]
            .map(String::from),
        )
        .collect();
    expected.sort();
    assert_eq!(granted, expected);
    assert_eq!(capability["windows"], json!(["main"]));

    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tauri.conf.json"))
            .unwrap(),
    )
    .unwrap();
    let csp = &config["app"]["security"]["csp"];
    assert_eq!(
        csp["script-src"],
        json!("'self'"),
        "no inline or remote scripts"
    );
    assert_eq!(csp["object-src"], json!("'none'"));
    assert_eq!(csp["default-src"], json!("'self'"));
}
