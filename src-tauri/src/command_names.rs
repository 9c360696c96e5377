/// Every command the window may call (the build step generates an
/// `allow-<name>` permission for each; `capabilities/main.json` grants them).
pub const COMMANDS: &[&str] = &[
    "app_state",
    "add_repository",
    "reindex_repository",
    "cancel_indexing",
    "remove_repository",
    "search",
    "detect_mode",
    "preview",
    "open_in_editor",
    "save_settings",
];
