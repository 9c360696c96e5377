//! Pinned reference test for the default model.
//!
//! `tests/data/reference_minilm.json` was produced by
//! `crates/models/reference/make_reference.py`: an independent float64 numpy
//! implementation of the BERT forward pass (embeddings, 6 encoder layers with
//! erf-GELU, LayerNorm eps from config.json, mean pooling over the attention
//! mask, L2 normalisation), reading model.safetensors with `safetensors.numpy`
//! and tokenising with the python `tokenizers` package (tokenizer.json,
//! truncation 256, no padding). It shares no code with candle. The script also
//! checks unit norms and that two related sentences are close (cos 0.755) while
//! an unrelated one is not (cos -0.05); its output for "This is an example
//! sentence" starts 0.0677, 0.0635, 0.0487, 0.0793 — the values published for
//! sentence-transformers/all-MiniLM-L6-v2. To regenerate:
//!
//! ```text
//! python3 crates/models/reference/make_reference.py <dir with config.json, model.safetensors, tokenizer.json>
//! ```

mod common;

use quarry_models::DEFAULT_MODEL;
use serde_json::Value;

#[test]
fn matches_numpy_reference() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/reference_minilm.json"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(doc["model"], DEFAULT_MODEL.id);
    assert_eq!(
        doc["model_safetensors_sha256"].as_str().unwrap(),
        DEFAULT_MODEL.sha256_of("model.safetensors").unwrap()
    );
    let emb = common::embedder();
    let inputs = doc["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 3);
    let texts: Vec<&str> = inputs.iter().map(|e| e["text"].as_str().unwrap()).collect();
    let got = emb.embed(&texts).unwrap();
    for (entry, v) in inputs.iter().zip(&got) {
        let name = entry["name"].as_str().unwrap();
        let want: Vec<f32> = entry["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(want.len(), 384);
        assert_eq!(v.len(), 384);
        let want_tokens = entry["token_ids"].as_array().unwrap().len();
        assert_eq!(
            emb.count_tokens(entry["text"].as_str().unwrap()) + 2,
            want_tokens,
            "{name}: token count differs from the python tokenizer"
        );
        let cos = common::cosine(v, &want);
        let diff = common::max_abs_diff(v, &want);
        eprintln!("{name}: cos={cos:.8} max_abs_diff={diff:.2e}");
        assert!(cos > 0.9999, "{name}: cosine {cos}");
        assert!(diff < 1e-3, "{name}: max abs diff {diff}");
    }
}
