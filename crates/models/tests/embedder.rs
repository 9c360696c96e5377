//! Behaviour of the embedder with the real default model.

mod common;

use std::time::Instant;

use quarry_models::DEFAULT_MODEL;

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[test]
fn metadata() {
    let emb = common::embedder();
    assert_eq!(emb.model_id(), "sentence-transformers/all-MiniLM-L6-v2");
    assert_eq!(emb.dim(), 384);
    assert_eq!(emb.max_tokens(), 256);
    assert!(emb.embed(&[]).unwrap().is_empty());
}

#[test]
fn batched_results_keep_input_order() {
    let emb = common::embedder();
    let long =
        "fn process(items: &[Item]) -> usize { items.iter().filter(|i| i.ok).count() } ".repeat(6);
    let texts: Vec<String> = vec![
        "short".into(),
        long.clone(),
        "parse a config file".into(),
        String::new(),
        "def add(a, b):\n    return a + b\n".into(),
        "struct Point { x: f64, y: f64 }".into(),
        long[..120].to_string(),
        "the quick brown fox jumps over the lazy dog".into(),
    ];
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let batched = emb.embed(&refs).unwrap();
    assert_eq!(batched.len(), texts.len());
    for (t, b) in refs.iter().zip(&batched) {
        let single = emb.embed(&[t]).unwrap().remove(0);
        let diff = common::max_abs_diff(b, &single);
        assert!(diff < 1e-4, "{t:?}: batched vs single differ by {diff}");
        assert!((norm(b) - 1.0).abs() < 1e-4);
    }
    // Different inputs really give different vectors (no mix-up hidden by equality).
    assert!(common::cosine(&batched[0], &batched[1]) < 0.99);
    let q = emb.embed_query("parse a config file").unwrap();
    assert!(common::max_abs_diff(&q, &batched[2]) < 1e-5);
}

#[test]
fn empty_string() {
    let emb = common::embedder();
    let v = emb.embed(&[""]).unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].len(), 384);
    assert!(v[0].iter().all(|x| x.is_finite()));
    assert!((norm(&v[0]) - 1.0).abs() < 1e-4);
    assert_eq!(emb.count_tokens(""), 0);
}

#[test]
fn long_text_is_truncated() {
    let emb = common::embedder();
    let long = "let value = compute(alpha, beta, gamma); ".repeat(400);
    assert!(emb.count_tokens(&long) > 2000);
    let v = emb.embed(&[&long, "short"]).unwrap();
    assert_eq!(v.len(), 2);
    assert!((norm(&v[0]) - 1.0).abs() < 1e-4);
    // Truncation keeps the first 254 wordpieces: appending more text changes nothing.
    let longer = format!("{long} and something completely different at the end");
    let w = emb.embed_query(&longer).unwrap();
    assert!(common::max_abs_diff(&v[0], &w) < 1e-4);
}

#[test]
fn count_tokens() {
    let emb = common::embedder();
    // "hello world" -> [hello, world]
    assert_eq!(emb.count_tokens("hello world"), 2);
    // Word pieces: "tokenization" is split into several pieces.
    assert!(emb.count_tokens("tokenization") >= 2);
    let code = "fn main() { println!(\"hi\"); }";
    let n = emb.count_tokens(code);
    assert!((8..40).contains(&n), "{n}");
    // Counting is not limited by max_tokens.
    let long = "word ".repeat(1000);
    assert_eq!(emb.count_tokens(&long), 1000);
}

#[test]
fn semantic_sanity() {
    let emb = common::embedder();
    let v = emb
        .embed(&[
            "read the contents of a file into a string",
            "fn load(path: &Path) -> io::Result<String> { std::fs::read_to_string(path) }",
            "a recipe for chocolate cake with strawberries",
        ])
        .unwrap();
    assert!(common::cosine(&v[0], &v[1]) > common::cosine(&v[0], &v[2]));
}

#[test]
fn throughput() {
    let emb = common::embedder();
    let snippets: Vec<String> = (0..64)
        .map(|i| {
            format!(
                "fn handler_{i}(req: &Request, state: &State) -> Result<Response, Error> {{\n    \
                 let id = req.param(\"id{i}\")?.parse::<u64>()?;\n    \
                 let item = state.db.get(id).ok_or(Error::NotFound)?;\n    \
                 Ok(Response::json(&item))\n}}\n"
            )
        })
        .collect();
    let refs: Vec<&str> = snippets.iter().map(String::as_str).collect();
    let tokens: usize = refs.iter().map(|s| emb.count_tokens(s) + 2).sum();
    emb.embed(&refs[..4]).unwrap(); // warm-up
    let start = Instant::now();
    let v = emb.embed(&refs).unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(v.len(), 64);
    println!(
        "throughput: {} chunks ({} tokens, {:.0} tokens/chunk) in {:.2}s = {:.1} chunks/s [{}]",
        refs.len(),
        tokens,
        tokens as f64 / 64.0,
        secs,
        refs.len() as f64 / secs,
        DEFAULT_MODEL.id
    );
}

/// Token counts (which decide where chunks are cut) equal the tokenizer's
/// own on every line of real code, and on the cases the fast ASCII path
/// hands back to it.
#[test]
fn token_counts_match_the_tokenizer_exactly() {
    let emb = common::embedder();
    let mut tokenizer =
        tokenizers::Tokenizer::from_file(common::model_dir().join("tokenizer.json"))
            .expect("tokenizer");
    tokenizer.with_padding(None);
    tokenizer.with_truncation(None).unwrap();
    let reference = |text: &str| tokenizer.encode(text, false).unwrap().get_ids().len();
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut lines = 0;
    let mut stack = vec![
        workspace.join("crates"),
        workspace.join("tests/fixtures/repo"),
    ];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                for line in text.lines() {
                    assert_eq!(
                        emb.count_tokens(line),
                        reference(line),
                        "{}: {line:?}",
                        path.display()
                    );
                    lines += 1;
                }
            }
        }
    }
    assert!(lines > 10_000, "only {lines} lines checked");
    let long_word = "a".repeat(101);
    let cases = [
        "",
        "   \t ",
        "HTTPServer.getRequestHeaders()",
        "snake_case_name = 42_000",
        "x[CLS]y [MASK] [SEP]",
        "unknownpiecesqqqzzzxxx",
        long_word.as_str(),
        "déjà vu — naïve café",
        "中文注释 and ascii",
        "tab\tand\x0cform feed",
        "emoji 🚀 rocket",
        "`~!@#$%^&*()-=+[]{}|;:'\",.<>/?\\",
    ];
    for case in cases {
        assert_eq!(emb.count_tokens(case), reference(case), "{case:?}");
    }
}

/// The precision GPUs run the embedder in (bf16), exercised on the CPU:
/// the real model's vectors stay those of f32 for code and for queries,
/// padded batches included.
#[test]
fn bf16_keeps_the_real_models_vectors() {
    let dir = common::model_dir();
    let f32_model =
        quarry_models::Embedder::load(&dir, DEFAULT_MODEL, candle_core::Device::Cpu).unwrap();
    let bf16_model = quarry_models::Embedder::load_as(
        &dir,
        DEFAULT_MODEL,
        candle_core::Device::Cpu,
        candle_core::DType::BF16,
    )
    .unwrap();
    let texts = [
        "retry an http request with backoff",
        "def add(a, b):\n    return a + b\n",
        "fn parse_config(path: &Path) -> Result<Config, Error> { let text = std::fs::read_to_string(path)?; toml::from_str(&text) }",
    ];
    let want = f32_model.embed(&texts).unwrap();
    let got = bf16_model.embed(&texts).unwrap();
    for ((text, a), b) in texts.iter().zip(&want).zip(&got) {
        let cos = common::cosine(a, b);
        assert!(cos > 0.99, "{text}: cosine {cos}");
    }
}
