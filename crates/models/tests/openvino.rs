//! The OpenVINO engine: the same vectors as the independent numpy reference and
//! as candle, in f32 and bf16, batched with padding; clear errors when the
//! runtime cannot be loaded.
//!
//! The runtime is installed like the model (pinned `openvino` wheel through
//! pip, libraries only) on platforms Quarry has a pinned build for.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use quarry_models::{
    ensure_runtime, quarry_home, runtime_spec, DevicePreference, Embedder, EmbedderOptions, Engine,
    FetchEvent, ModelError, Precision, DEFAULT_MODEL,
};
use serde_json::Value;

fn runtime() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        assert!(
            runtime_spec().is_some(),
            "no pinned OpenVINO build for this platform"
        );
        ensure_runtime(&quarry_home(), &mut |e: FetchEvent| {
            if !matches!(e, FetchEvent::Progress { .. }) {
                eprintln!("runtime: {e:?}");
            }
        })
        .unwrap_or_else(|e| panic!("cannot install the OpenVINO runtime: {e}"))
    })
    .clone()
}

fn open(precision: Precision) -> Embedder {
    runtime();
    let opts = EmbedderOptions {
        engine: Engine::OpenVino,
        device: DevicePreference::Cpu,
        precision,
        home: quarry_home(),
    };
    Embedder::open(&common::model_dir(), DEFAULT_MODEL, &opts).expect("open OpenVINO embedder")
}

fn reference() -> Vec<(String, Vec<f32>)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/reference_minilm.json"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let v = e["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            (e["text"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

#[test]
fn f32_matches_numpy_reference() {
    let emb = open(Precision::F32);
    assert!(emb.engine().starts_with("openvino"), "{}", emb.engine());
    let refs = reference();
    let texts: Vec<&str> = refs.iter().map(|(t, _)| t.as_str()).collect();
    // All three in one padded batch: padding must not change any vector.
    let got = emb.embed(&texts).unwrap();
    for ((text, want), v) in refs.iter().zip(&got) {
        let cos = common::cosine(v, want);
        let diff = common::max_abs_diff(v, want);
        eprintln!(
            "f32 {:?}: cos={cos:.8} max_abs_diff={diff:.2e}",
            &text[..20]
        );
        assert!(cos > 0.99999, "cosine {cos}");
        assert!(diff < 1e-4, "max abs diff {diff}");
    }
}

#[test]
fn bf16_keeps_vectors_close_and_agrees_with_candle() {
    let emb = open(Precision::Bf16);
    let candle = common::embedder();
    let texts = [
        "fn main() { println!(\"hello\"); }",
        "def parse_header(line):\n    key, _, value = line.partition(':')\n    return key.strip().lower(), value.strip()",
        "retry an http request with exponential backoff",
        "x",
    ];
    let ours = emb.embed(&texts).unwrap();
    let theirs = candle.embed(&texts).unwrap();
    for ((t, a), b) in texts.iter().zip(&ours).zip(&theirs) {
        let cos = common::cosine(a, b);
        eprintln!("bf16 vs candle {:?}: cos={cos:.6}", &t[..t.len().min(20)]);
        assert!(cos > 0.995, "cosine {cos}");
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "not unit length: {norm}");
    }
    // Nearest neighbours are unchanged: the query is closest to the same text.
    let q = emb
        .embed_query("send an http request again after waiting")
        .unwrap();
    let best = ours
        .iter()
        .enumerate()
        .max_by(|a, b| common::cosine(&q, a.1).total_cmp(&common::cosine(&q, b.1)))
        .unwrap()
        .0;
    assert_eq!(best, 2);
}

#[test]
fn concurrent_calls_share_one_compiled_model() {
    let emb = open(Precision::Auto);
    let want = emb.embed(&["a b c", "fn f() {}"]).unwrap();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| emb.embed(&["a b c", "fn f() {}"]).unwrap()))
            .collect();
        for h in handles {
            let got = h.join().unwrap();
            for (a, b) in got.iter().zip(&want) {
                assert!(common::cosine(a, b) > 0.99999);
            }
        }
    });
}

#[test]
fn missing_or_broken_runtime_is_a_clear_error_and_auto_falls_back() {
    let home = tempfile::tempdir().unwrap();
    // A "library" that is not one.
    let fake = home.path().join("libopenvino_c.so");
    std::fs::write(&fake, b"not a shared library").unwrap();
    let opts = EmbedderOptions {
        engine: Engine::OpenVino,
        device: DevicePreference::Cpu,
        precision: Precision::Auto,
        home: home.path().to_path_buf(),
    };
    // No runtime under this home (and $QUARRY_OPENVINO unset in tests).
    if std::env::var_os("QUARRY_OPENVINO").is_none() {
        let err = Embedder::open(&common::model_dir(), DEFAULT_MODEL, &opts).unwrap_err();
        assert!(matches!(err, ModelError::Runtime(_)), "{err}");
        assert!(err.to_string().contains("quarry models fetch"), "{err}");
        let auto = Embedder::open(
            &common::model_dir(),
            DEFAULT_MODEL,
            &EmbedderOptions {
                engine: Engine::Auto,
                ..opts.clone()
            },
        )
        .unwrap();
        assert!(auto.engine().starts_with("candle"), "{}", auto.engine());
    }
    let err = quarry_models::runtime_version(&fake).unwrap_err();
    assert!(!err.is_empty());
}

/// OpenVINO keeps kernels and buffers per input shape, so its batches are
/// padded to few widths (a regression: widths of every length grew the
/// embedding stage of a large index by over a gigabyte); candle pads to the
/// longest text only. Either way the vectors are those of unpadded texts.
#[test]
fn openvino_batches_take_few_shapes() {
    let e = open(Precision::Auto);
    let max = e.max_tokens();
    let mut widths = std::collections::BTreeSet::new();
    for longest in 1..=max {
        let width = e.padded_width(longest);
        assert!(width >= longest && width <= max, "{longest} -> {width}");
        widths.insert(width);
    }
    assert!(widths.len() <= max / 16 + 1, "{} widths", widths.len());

    let texts = [
        "fn a() {}",
        "def retry(request, attempts=3):\n    return request()",
    ];
    let alone: Vec<Vec<f32>> = texts
        .iter()
        .map(|t| e.embed(&[t]).unwrap().remove(0))
        .collect();
    let together = e.embed(&texts).unwrap();
    for (a, b) in alone.iter().zip(&together) {
        let cos: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        assert!(cos > 0.999, "{cos}");
    }
}

/// MaxSim's token vectors from OpenVINO's token-output graph: in f32 the
/// scores equal candle's, in the default precision (bf16 here) they stay
/// within its rounding and rank the documents the same.
#[test]
fn maxsim_on_openvino_matches_candle() {
    use quarry_models::rerank::late_interaction::MaxSimReranker;
    let dir = common::model_dir();
    let max = DEFAULT_MODEL.max_tokens;
    let candle = MaxSimReranker::load(&dir, candle_core::Device::Cpu, max, 0.0).unwrap();
    let query = "retry an http request with backoff";
    let long = "def fetch(url):\n    for attempt in range(5):\n        try:\n            return get(url)\n        except Timeout:\n            sleep(2 ** attempt)\n".repeat(12);
    let documents = [
        "fn add(a: i32, b: i32) -> i32 { a + b }",
        long.as_str(),
        "class RetryPolicy:\n    def backoff(self, attempt):\n        return min(60, 2 ** attempt)\n",
        "",
    ];
    let want = candle.maxsim(query, &documents).unwrap();
    for (precision, tolerance) in [(Precision::F32, 1e-4f32), (Precision::Auto, 2e-2)] {
        let openvino =
            MaxSimReranker::load_openvino(&runtime(), &dir, precision, max, 0.0).unwrap();
        let got = openvino.maxsim(query, &documents).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() <= tolerance,
                "{precision:?}: {got:?} vs {want:?}"
            );
        }
        let order = |s: &[f32]| {
            let mut o: Vec<usize> = (0..s.len()).collect();
            o.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
            o
        };
        assert_eq!(order(&got), order(&want), "{precision:?}");
    }
}
