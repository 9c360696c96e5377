//! User settings, stored as TOML in the platform's config directory and
//! shared by the CLI and the desktop app.

use std::path::{Path, PathBuf};

use crate::Problem;

/// Environment variable naming the settings file (tests, portable installs).
pub const CONFIG_ENV: &str = "QUARRY_CONFIG";

/// What the user can configure. Every field has a default, so a missing
/// file or key means "the default"; an unknown key is an error (a typo
/// should not be silently ignored).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Embedding model id for new indexes.
    pub model: String,
    /// Where the model runs: `auto` (a GPU when built with one), `cpu` or `gpu`.
    pub device: String,
    /// Extra paths to leave out when indexing (gitignore globs).
    pub exclude: Vec<String>,
    /// Files larger than this many bytes are skipped.
    pub max_file_size: u64,
    /// Open-in-editor command; `{path}` and `{line}` are replaced. `None`:
    /// [`crate::editor::default_editor_command`].
    pub editor: Option<String>,
    /// Overrides of each query mode's fusion weights and candidate depth
    /// (`[search.issue] lexical = 0.8`); what is left out keeps the
    /// measured defaults.
    #[serde(skip_serializing_if = "is_default_tuning")]
    pub search: quarry_search::Tuning,
    /// The second stage: `default` (this machine's), `none`, a known
    /// reranker's id, or a model directory.
    pub rerank: String,
    /// First-stage hits the reranker reads; `None`: 100 on a GPU, 30 on
    /// the CPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank_depth: Option<usize>,
}

fn is_default_tuning(tuning: &quarry_search::Tuning) -> bool {
    *tuning == quarry_search::Tuning::default()
}

/// The devices [`Settings::device`] accepts (`gpu` means `auto` in a build
/// without GPU support: the CPU is used, and the model's state says so).
pub const DEVICES: &[&str] = &["auto", "cpu", "gpu"];

/// The devices worth offering in this build: `gpu` only when it was built
/// with CUDA or Metal.
pub fn device_choices() -> Vec<String> {
    DEVICES
        .iter()
        .filter(|d| **d != "gpu" || quarry_models::gpu_support_built())
        .map(|d| d.to_string())
        .collect()
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: quarry_models::DEFAULT_MODEL.id.to_string(),
            device: "auto".into(),
            exclude: Vec::new(),
            max_file_size: quarry_index::DEFAULT_MAX_FILE_SIZE,
            editor: None,
            search: quarry_search::Tuning::default(),
            rerank: "default".into(),
            rerank_depth: None,
        }
    }
}

impl Settings {
    /// The settings file: `$QUARRY_CONFIG`, else `<config dir>/quarry/config.toml`.
    pub fn path() -> PathBuf {
        match std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
            Some(path) => PathBuf::from(path),
            None => dirs::config_dir()
                .unwrap_or_else(|| PathBuf::from("."))
                .join("quarry")
                .join("config.toml"),
        }
    }

    /// Reads the settings at `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Settings, Problem> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
            Err(e) => {
                return Err(Problem::new(
                    format!("Cannot read the settings file {}: {e}", path.display()),
                    "Check the file's permissions, or delete it to use the defaults.",
                ))
            }
        };
        let settings: Settings = toml::from_str(&text).map_err(|e| {
            Problem::new(
                format!("The settings file {} is not valid: {e}", path.display()),
                "Fix the line it names, or delete the file to use the defaults.",
            )
        })?;
        settings.validate().map_err(|p| Problem {
            message: format!("{} (in {})", p.message, path.display()),
            hint: p.hint,
        })?;
        Ok(settings)
    }

    /// Checks every field; the problem names the first bad one.
    pub fn validate(&self) -> Result<(), Problem> {
        if let Err(e) = quarry_models::resolve_model(&self.model) {
            let known: Vec<&str> = quarry_models::known_models().iter().map(|m| m.id).collect();
            return Err(Problem::new(
                format!("Unknown model `{}`: {e}", self.model),
                format!(
                    "Choose one of: {}, or the path of a directory with a BERT sentence encoder.",
                    known.join(", ")
                ),
            ));
        }
        if !DEVICES.contains(&self.device.as_str()) {
            return Err(Problem::new(
                format!("Unknown device `{}`", self.device),
                "Choose auto, cpu or gpu.",
            ));
        }
        for glob in &self.exclude {
            globset::Glob::new(glob).map_err(|e| {
                Problem::new(
                    format!("The exclude pattern `{glob}` is not a valid glob: {e}"),
                    "Use gitignore syntax, e.g. `vendor/` or `*.min.js`.",
                )
            })?;
        }
        if self.max_file_size == 0 {
            return Err(Problem::new(
                "The maximum file size must be more than 0 bytes",
                "The default is 1 MB.",
            ));
        }
        self.search.validate().map_err(|e| {
            Problem::new(
                format!("Invalid search setting: {e}"),
                "Remove the key to use the default.",
            )
        })?;
        if self.rerank.trim().is_empty() {
            return Err(Problem::new(
                "The reranker setting is empty",
                "Use default, none, a reranker's id (`quarry models` lists them) or a model directory.",
            ));
        }
        if self.rerank_depth.is_some_and(|d| !(1..=1000).contains(&d)) {
            return Err(Problem::new(
                "rerank_depth must be between 1 and 1000",
                "Leave it out for the default (100 on a GPU, 30 on the CPU).",
            ));
        }
        if let Some(editor) = &self.editor {
            if crate::editor::split_command(editor).is_empty() {
                return Err(Problem::new(
                    "The editor command is empty",
                    "Leave it unset for the default, or give a command like `code -g {path}:{line}`.",
                ));
            }
        }
        Ok(())
    }

    /// Validates and writes the settings to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<(), Problem> {
        self.validate()?;
        let text = toml::to_string_pretty(self)
            .map_err(|e| Problem::bare(format!("Cannot encode the settings: {e}")))?;
        let cannot = |e: std::io::Error| {
            Problem::new(
                format!("Cannot write the settings file {}: {e}", path.display()),
                crate::problem::io_hint(&e),
            )
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(cannot)?;
        }
        let staging = path.with_extension("toml.tmp");
        std::fs::write(&staging, text).map_err(cannot)?;
        std::fs::rename(&staging, path).map_err(cannot)
    }

    /// The device preference for the model.
    pub fn device_preference(&self) -> quarry_models::DevicePreference {
        match self.device.as_str() {
            "cpu" => quarry_models::DevicePreference::Cpu,
            _ => quarry_models::DevicePreference::Auto,
        }
    }

    /// Indexing options from these settings.
    pub fn index_options(&self) -> quarry_index::IndexOptions {
        quarry_index::IndexOptions {
            max_file_size: self.max_file_size,
            exclude: self.exclude.clone(),
            ..quarry_index::IndexOptions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_gives_defaults_and_saved_settings_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("config.toml");
        assert_eq!(Settings::load(&path).unwrap(), Settings::default());
        let settings = Settings {
            device: "cpu".into(),
            exclude: vec!["vendor/".into(), "*.min.js".into()],
            max_file_size: 2_000_000,
            editor: Some("vim +{line} {path}".into()),
            ..Settings::default()
        };
        settings.save(&path).unwrap();
        assert_eq!(Settings::load(&path).unwrap(), settings);
    }

    #[test]
    fn partial_files_take_defaults_for_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "exclude = [\"target/\"]\n").unwrap();
        let settings = Settings::load(&path).unwrap();
        assert_eq!(settings.exclude, ["target/"]);
        assert_eq!(settings.max_file_size, quarry_index::DEFAULT_MAX_FILE_SIZE);
    }

    #[test]
    fn bad_files_and_values_are_explained_not_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        for (text, needle) in [
            ("max_file_size = \"big\"", "not valid"),
            ("exclud = []", "not valid"),
            ("device = \"tpu\"", "Unknown device"),
            ("model = \"nope\"", "Unknown model"),
            ("exclude = [\"a[\"]", "not a valid glob"),
            ("max_file_size = 0", "more than 0"),
            ("editor = \"  \"", "editor command is empty"),
        ] {
            std::fs::write(&path, text).unwrap();
            let problem = Settings::load(&path).unwrap_err();
            assert!(problem.message.contains(needle), "{text}: {problem:?}");
            assert!(problem.hint.is_some(), "{text}: no hint");
        }
        // Saving refuses what loading would refuse, and leaves the file alone.
        let bad = Settings {
            device: "tpu".into(),
            ..Settings::default()
        };
        assert!(bad.save(&path).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "editor = \"  \"");
    }
}
