//! Finding and installing the OpenVINO runtime libraries.
//!
//! Quarry does not link OpenVINO. It loads `libopenvino_c` at run time from
//! `$QUARRY_OPENVINO` (the library file or its directory) or from its own
//! runtime directory under the Quarry home, which `quarry models fetch`
//! fills from the pinned `openvino` Python wheel (the shared libraries only;
//! nothing of Python is used).

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::ModelError;
use crate::fetch::{extract_entries, pip_download, sha256_file, FetchEvent};

/// A pinned OpenVINO build for one platform.
#[derive(Debug)]
pub struct RuntimeSpec {
    /// OpenVINO release, e.g. "2026.4.1".
    pub version: &'static str,
    /// pip requirement and the arguments that pick this platform's wheel.
    requirement: &'static str,
    pip_args: &'static [&'static str],
    wheel_sha256: &'static str,
    /// The C API library, the file Quarry opens.
    c_library: &'static str,
    /// Files of the wheel's `openvino/libs/` directory Quarry needs (CPU inference from IR).
    files: &'static [&'static str],
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
static RUNTIME: Option<RuntimeSpec> = Some(RuntimeSpec {
    version: "2026.4.1",
    requirement: "openvino==2026.4.1",
    pip_args: &[
        "--only-binary=:all:",
        "--platform",
        "manylinux_2_28_x86_64",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
    ],
    wheel_sha256: "2d22b1da03f7caf74df30e9f6417d0ab2f637e4a38e08e1dcd294d2c37407aaf",
    c_library: "libopenvino_c.so.2641",
    files: &[
        "libopenvino_c.so.2641",
        "libopenvino.so.2641",
        "libopenvino_intel_cpu_plugin.so",
        "libopenvino_ir_frontend.so.2641",
        "libtbb.so.12",
        "libtbbmalloc.so.2",
        "libtbbbind_2_5.so.3",
        "libhwloc.so.15",
    ],
});

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
static RUNTIME: Option<RuntimeSpec> = None;

/// The OpenVINO build Quarry installs on this platform, if there is one.
pub fn runtime_spec() -> Option<&'static RuntimeSpec> {
    RUNTIME.as_ref()
}

/// Where Quarry installs the runtime under `home`.
pub fn runtime_dir(home: &Path, spec: &RuntimeSpec) -> PathBuf {
    home.join("runtimes")
        .join(format!("openvino-{}", spec.version))
}

/// Marker written last into a complete runtime directory.
const COMPLETE: &str = ".quarry-complete";

/// The `libopenvino_c` to load: `$QUARRY_OPENVINO` if set, else Quarry's installed runtime.
pub fn find_runtime(home: &Path) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("QUARRY_OPENVINO").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Some(p);
        }
        // A directory: take the C library in it.
        let found = fs::read_dir(&p).ok()?.filter_map(|e| e.ok()).find(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("libopenvino_c.") || n == "openvino_c.dll")
        });
        return found.map(|e| e.path());
    }
    let spec = runtime_spec()?;
    let dir = runtime_dir(home, spec);
    dir.join(COMPLETE)
        .is_file()
        .then(|| dir.join(spec.c_library))
}

/// Installs the pinned OpenVINO runtime under `home` unless it is there; returns its C library.
pub fn ensure_runtime(
    home: &Path,
    on_event: &mut dyn FnMut(FetchEvent),
) -> Result<PathBuf, ModelError> {
    let spec = runtime_spec().ok_or_else(|| {
        ModelError::Runtime("Quarry has no OpenVINO runtime for this platform".into())
    })?;
    let dir = runtime_dir(home, spec);
    if dir.join(COMPLETE).is_file() {
        return Ok(dir.join(spec.c_library));
    }
    let parent = home.join("runtimes");
    fs::create_dir_all(&parent).map_err(|e| ModelError::io(&parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".staging-openvino-")
        .tempdir_in(&parent)
        .map_err(|e| ModelError::io(&parent, e))?;
    on_event(FetchEvent::Started {
        source: format!("pip download {}", spec.requirement),
    });
    let download_dir = staging.path().join(".pip-download");
    let wheel = pip_download(spec.requirement, spec.pip_args, &download_dir).map_err(|e| {
        ModelError::Runtime(format!(
            "cannot download the OpenVINO runtime ({e}); Quarry keeps using its built-in engine"
        ))
    })?;
    on_event(FetchEvent::Verifying);
    let actual = sha256_file(&wheel).map_err(|e| ModelError::io(&wheel, e))?;
    if actual != spec.wheel_sha256 {
        return Err(ModelError::Checksum {
            path: wheel,
            expected: spec.wheel_sha256.to_string(),
            actual,
        });
    }
    extract_libs(&wheel, spec, staging.path(), on_event)
        .map_err(|e| ModelError::Runtime(format!("cannot unpack the OpenVINO wheel: {e}")))?;
    let _ = fs::remove_dir_all(&download_dir);
    let marker = staging.path().join(COMPLETE);
    fs::write(&marker, spec.version).map_err(|e| ModelError::io(&marker, e))?;
    match fs::rename(staging.path(), &dir) {
        Ok(()) => {}
        // Another process installed it meanwhile.
        Err(_) if dir.join(COMPLETE).is_file() => {}
        Err(e) => return Err(ModelError::io(&dir, e)),
    }
    on_event(FetchEvent::Finished { dir: dir.clone() });
    Ok(dir.join(spec.c_library))
}

fn extract_libs(
    wheel: &Path,
    spec: &RuntimeSpec,
    out: &Path,
    on_event: &mut dyn FnMut(FetchEvent),
) -> Result<(), String> {
    let entries: Vec<(String, PathBuf)> = spec
        .files
        .iter()
        .map(|name| (format!("openvino/libs/{name}"), out.join(name)))
        .collect();
    extract_entries(wheel, &entries, on_event)
}
