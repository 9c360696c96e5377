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
    let archive = download(&spec, &["--no-binary", ":all:"], &downloads)?;
    unpack(&archive, &unpacked)?;
    single_dir(&unpacked)
        .with_context(|| format!("{} has no single top directory", archive.display()))
}

/// Like [`python_sdist`], but only among releases uploaded before
/// `before` (an ISO 8601 time, e.g. an issue's `created_at`): the code a
/// user had when they filed it. Needs a pip that knows
/// `--uploaded-prior-to`. The release is chosen by its wheel, whose
/// metadata needs no build (an sdist's does, and its build tools would
/// have to predate `before` too); then that release's sdist is fetched.
pub fn python_sdist_uploaded_before(
    work: &Path,
    name: &str,
    version: &str,
    before: &str,
) -> Result<PathBuf> {
    let key = format!("{name}{version}-before-{before}")
        .replace([':', '*', '+', '<', '>', '=', '~', '!', ','], "_");
    let into = work.join("resolved").join(key);
    let wheel = match only_file(&into) {
        Some(wheel) => wheel,
        None => {
            let spec = if version.starts_with(['<', '>', '=', '~', '!']) {
                format!("{name}{version}")
            } else {
                format!("{name}=={version}")
            };
            download(
                &spec,
                &["--only-binary", ":all:", "--uploaded-prior-to", before],
                &into,
            )
            .with_context(|| {
                format!(
                    "finding the last release of {spec} before {before} (by its wheel; \
                         needs a pip that knows --uploaded-prior-to: set QUARRY_PYTHON \
                         to a python with a recent pip)"
                )
            })?
        }
    };
    // `name-1.2.3-py3-none-any.whl`: the version is the second field.
    let file = wheel.file_name().unwrap_or_default().to_string_lossy();
    let exact = file
        .split('-')
        .nth(1)
        .with_context(|| format!("no version in the wheel name {file}"))?;
    python_sdist(work, name, exact)
}

/// Runs `pip download --no-deps EXTRA SPEC` into a fresh `into` and
/// returns the file it downloaded.
fn download(spec: &str, extra: &[&str], into: &Path) -> Result<PathBuf> {
    if into.is_dir() {
        std::fs::remove_dir_all(into)?;
    }
    std::fs::create_dir_all(into)?;
    let status = Command::new(python())
        .args(["-m", "pip", "download", "--no-deps", "-q"])
        .args(extra)
        .arg(spec)
        .arg("-d")
        .arg(into)
        .status()
        .context("running pip download")?;
    if !status.success() {
        bail!("pip download {spec} failed");
    }
    only_file(into).with_context(|| format!("pip downloaded nothing for {spec}"))
}

/// The first file in `dir`, if any.
fn only_file(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.is_file())
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
