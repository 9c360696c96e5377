//! Embedding models from a local directory, named by their path.

use std::path::{Path, PathBuf};

use quarry_models::{local_model, model_dir, resolve_model, Embedder, ModelError, DEFAULT_MODEL};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tiny")
        .join(name)
}

#[test]
fn a_bert_directory_is_a_model_named_by_its_path() {
    let dir = fixture("bert-embedder");
    let spec = local_model(&dir).unwrap();
    let canonical = dir.canonicalize().unwrap();
    assert_eq!(spec.id, canonical.to_str().unwrap());
    assert_eq!(spec.dim, 16);
    assert!(spec.max_tokens <= 512 && spec.max_tokens > 0);
    // Resolved once per directory; its files are the directory itself.
    assert!(std::ptr::eq(spec, resolve_model(spec.id).unwrap()));
    assert_eq!(model_dir(Path::new("/elsewhere"), spec), canonical);
    assert_eq!(resolve_model(DEFAULT_MODEL.id).unwrap(), DEFAULT_MODEL);
    // It embeds, with the reference's vectors.
    let embedder = Embedder::load(&dir, spec, candle_core::Device::Cpu).unwrap();
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let case = &reference["cases"][0];
    let got = embedder.embed(&[case["text"].as_str().unwrap()]).unwrap();
    let want: Vec<f32> = case["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    for (g, w) in got[0].iter().zip(&want) {
        assert!(
            (g - w).abs() <= 1e-4 + 1e-4 * w.abs(),
            "{got:?} vs {want:?}"
        );
    }
}

#[test]
fn what_is_not_an_embedding_model_is_refused_with_why() {
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        local_model(empty.path()),
        Err(ModelError::MissingFile { .. })
    ));
    let e = local_model(&fixture("xlm-roberta-cross-encoder")).unwrap_err();
    assert!(e.to_string().contains("xlm-roberta"), "{e}");
    let e = resolve_model("no/such-model").unwrap_err();
    assert!(e.to_string().contains("not a known model"), "{e}");
}

/// The reference vectors of a fixture's cases of `kind`, with their raw texts.
fn cases(reference: &serde_json::Value, kind: &str, key: &str) -> Vec<(String, Vec<f32>)> {
    reference["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == kind)
        .map(|c| {
            let vector = c[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            (c["raw_text"].as_str().unwrap().to_string(), vector)
        })
        .collect()
}

fn assert_close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1e-4 + 1e-4 * w.abs(),
            "{got:?} vs {want:?}"
        );
    }
}

#[test]
fn code_embedders_run_behind_the_one_embedder_with_their_query_formats() {
    // CodeRankEmbed (NomicBert): documents plain, queries with its prefix.
    let dir = fixture("nomic-bert");
    let spec = local_model(&dir).unwrap();
    assert_eq!(spec.family, quarry_models::ModelFamily::CodeRankEmbed);
    let embedder = Embedder::load(&dir, spec, candle_core::Device::Cpu).unwrap();
    assert_eq!(embedder.dim(), 16);
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    for (text, want) in cases(&reference, "document", "embedding_cls") {
        assert_close(&embedder.embed(&[text.as_str()]).unwrap()[0], &want);
    }
    for (text, want) in cases(&reference, "query", "embedding_cls") {
        assert_close(&embedder.embed_query(&text).unwrap(), &want);
    }

    // Decoder embedders: documents match the reference; queries carry the
    // task instruction, so they differ from the same text as a document.
    for name in ["qwen3", "qwen2"] {
        let dir = fixture(name);
        let spec = local_model(&dir).unwrap();
        let embedder = Embedder::load(&dir, spec, candle_core::Device::Cpu).unwrap();
        let reference: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
                .unwrap();
        let documents = cases(&reference["embedding"], "document", "embedding");
        for (text, want) in &documents {
            assert_close(&embedder.embed(&[text.as_str()]).unwrap()[0], want);
        }
        let (text, as_document) = &documents[0];
        let as_query = embedder.embed_query(text).unwrap();
        assert!(
            as_query
                .iter()
                .zip(as_document)
                .any(|(q, d)| (q - d).abs() > 1e-3),
            "{name}: the query got no instruction"
        );
    }
}
