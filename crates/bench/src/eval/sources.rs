//! Real code for the evaluation sets, fetched the way a developer would:
//! Python source distributions with pip, Rust crates with `cargo vendor`.
//! Everything lands under the work directory once and is reused by later
//! runs, so only the first run needs the network.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The python that runs pip: `$QUARRY_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("QUARRY_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The source tree of the PyPI source distribution `name` at `version`
/// (an exact version, or a pip specifier such as `3.0.*`), downloaded into
/// `work/sdists` and unpacked under `work/src`. Returns the unpacked
/// project directory (the archive's single top-level directory).
pub fn python_sdist(work: &Path, name: &str, version: &str) -> Result<PathBuf> {
    // `3.0.*` and `3.0.4` both follow `==`; `>=3,<4` stands as it is.
    let spec = if version.starts_with(['<', '>', '=', '~', '!']) {
        format!("{name}{version}")
    } else {
        format!("{name}=={version}")
    };
    let key = spec.replace(['=', '*', '<', '>', '~', '!', ','], "_");
    let downloads = work.join("sdists").join(&key);
    let unpacked = work.join("src").join(&key);
    if let Some(dir) = single_dir(&unpacked) {
        return Ok(dir);
    }
    if downloads.is_dir() {
        std::fs::remove_dir_all(&downloads)?;
    }
    std::fs::create_dir_all(&downloads)?;
    let status = Command::new(python())
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-q",
        ])
        .arg(&spec)
        .arg("-d")
        .arg(&downloads)
        .status()
        .context("running pip download")?;
    if !status.success() {
        bail!("pip download {spec} failed");
    }
    let archive = std::fs::read_dir(&downloads)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.is_file())
        .with_context(|| format!("pip downloaded nothing for {spec}"))?;
    unpack(&archive, &unpacked)?;
    single_dir(&unpacked)
        .with_context(|| format!("{} has no single top directory", archive.display()))
}

/// The source of crate `name` at exactly `version`, vendored with
/// `cargo vendor` into `work/crates` (with its dependencies, which are
/// ignored). Returns the crate's directory.
pub fn rust_crate(work: &Path, name: &str, version: &str) -> Result<PathBuf> {
    let vendor = work.join("crates");
    let dir = vendor.join(format!("{name}-{version}"));
    if dir.join("Cargo.toml").is_file() {
        return Ok(dir);
    }
    let project = work
        .join("vendor-project")
        .join(format!("{name}-{version}"));
    std::fs::create_dir_all(project.join("src"))?;
    std::fs::write(project.join("src/lib.rs"), "")?;
    std::fs::write(
        project.join("Cargo.toml"),
        format!(
            "[package]\nname = \"quarry-eval-vendor\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[workspace]\n\n[dependencies]\n{name} = \"={version}\"\n"
        ),
    )?;
    let status = Command::new("cargo")
        .args(["vendor", "--versioned-dirs", "-q"])
        .arg(&vendor)
        .current_dir(&project)
        .stdout(std::process::Stdio::null())
        .status()
        .context("running cargo vendor")?;
    if !status.success() || !dir.is_dir() {
        bail!("cargo vendor of {name} {version} failed");
    }
    Ok(dir)
}

/// Unpacks a `.tar.gz` or `.zip` archive into `into`.
fn unpack(archive: &Path, into: &Path) -> Result<()> {
    if into.is_dir() {
        std::fs::remove_dir_all(into)?;
    }
    std::fs::create_dir_all(into)?;
    let name = archive.to_string_lossy();
    let status = if name.ends_with(".zip") {
        Command::new(python())
            .args(["-m", "zipfile", "-e"])
            .arg(archive)
            .arg(into)
            .status()
    } else {
        Command::new("tar")
            .arg("xzf")
            .arg(archive)
            .arg("-C")
            .arg(into)
            .status()
    }
    .context("unpacking")?;
    if !status.success() {
        bail!("could not unpack {}", archive.display());
    }
    Ok(())
}

/// The only directory inside `dir`, if that is all it holds.
fn single_dir(dir: &Path) -> Option<PathBuf> {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    match entries.as_slice() {
        [only] if only.is_dir() => Some(only.clone()),
        _ => None,
    }
}
