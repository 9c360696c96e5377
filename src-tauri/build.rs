//! Tauri's build step, with the app's own commands declared so that each
//! needs an explicit grant in `capabilities/` (nothing is allowed by default).

fn main() {
    let manifest = tauri_build::AppManifest::new().commands(quarry_app_commands::COMMANDS);
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest))
        .expect("tauri build step");
}

/// The commands `src/commands.rs` registers; kept in one list with
/// `capabilities/main.json`, which a test compares against it.
mod quarry_app_commands {
    include!("src/command_names.rs");
}
