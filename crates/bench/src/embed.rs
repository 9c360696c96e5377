//! `quarry-bench embed`: embedding throughput of every engine Quarry has,
//! side by side with Intel's OpenVINO runtime driven from Python on the same
//! texts in the same run, and effective FLOP/s against the machine's
//! matrix-multiply peak.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use quarry_models::{
    quarry_home, select_device, DevicePreference, Embedder, EmbedderOptions, Engine, Precision,
    DEFAULT_MODEL,
};
use serde::Deserialize;

/// Output of `reference/openvino_reference.py`.
#[derive(Debug, Deserialize)]
struct Reference {
    openvino: String,
    max_batch: usize,
    token_budget: usize,
    seconds_f32: f64,
    seconds_bf16: f64,
    peak_gflops_numpy_f32: f64,
    peak_gflops_openvino_f32: f64,
    peak_gflops_openvino_bf16: f64,
}

/// Floating-point operations of one BERT forward pass over `tokens` real tokens
/// (multiply-adds count 2; padding is not useful work and is not counted).
pub fn bert_flops(tokens: usize, hidden: usize, intermediate: usize, layers: usize) -> f64 {
    let (t, h, i) = (tokens as f64, hidden as f64, intermediate as f64);
    let projections = 2.0 * t * 4.0 * h * h;
    let feed_forward = 2.0 * t * 2.0 * h * i;
    let attention = 2.0 * 2.0 * t * t * h;
    layers as f64 * (projections + feed_forward + attention)
}

/// Runs the comparison on `texts`; prints a Markdown table.
pub fn run(model_dir: &Path, texts: &[String], python: Option<PathBuf>) -> Result<()> {
    let home = quarry_home();
    let mut engines: Vec<(String, Embedder)> = Vec::new();
    let (device, _) = select_device(DevicePreference::Cpu);
    engines.push((
        "candle f32".into(),
        Embedder::load(model_dir, DEFAULT_MODEL, device)?,
    ));
    for (name, precision) in [
        ("openvino f32", Precision::F32),
        ("openvino bf16", Precision::Bf16),
    ] {
        let opts = EmbedderOptions {
            engine: Engine::OpenVino,
            device: DevicePreference::Cpu,
            precision,
            home: home.clone(),
        };
        match Embedder::open(model_dir, DEFAULT_MODEL, &opts) {
            Ok(e) => engines.push((name.into(), e)),
            Err(e) => eprintln!("{name}: not run ({e})"),
        }
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let first = &engines[0].1;
    let tokens: Vec<usize> = refs
        .iter()
        .map(|t| (first.count_tokens(t) + 2).min(DEFAULT_MODEL.max_tokens))
        .collect();
    let total_tokens: usize = tokens.iter().sum();
    let flops: f64 = tokens.iter().map(|&t| bert_flops(t, 384, 1536, 6)).sum();

    let mut rows = Vec::new();
    let mut baseline: Option<Vec<Vec<f32>>> = None;
    for (name, embedder) in &engines {
        embedder.embed(&refs[..refs.len().min(8)])?; // warm-up
        let started = Instant::now();
        let vectors = embedder.embed(&refs)?;
        let secs = started.elapsed().as_secs_f64();
        let min_cos = match &baseline {
            None => 1.0,
            Some(base) => base
                .iter()
                .zip(&vectors)
                .map(|(a, b)| a.iter().zip(b).map(|(x, y)| f64::from(x * y)).sum::<f64>())
                .fold(f64::INFINITY, f64::min),
        };
        if baseline.is_none() {
            baseline = Some(vectors);
        }
        rows.push((format!("Quarry, {name}"), secs, Some(min_cos)));
    }

    let limits = engines.last().map_or((32, 4096), |(_, e)| {
        let l = e.batch_limits();
        (l.max_rows, l.max_tokens)
    });
    let reference = run_reference(model_dir, texts, python, limits);
    let mut peaks = String::new();
    match &reference {
        Ok(r) => {
            let batching = format!("batches ≤{} texts/≤{} tokens", r.max_batch, r.token_budget);
            rows.push((
                format!("reference: OpenVINO {} Python, f32, {batching}", r.openvino),
                r.seconds_f32,
                None,
            ));
            rows.push((
                format!(
                    "reference: OpenVINO {} Python, bf16, {batching}",
                    r.openvino
                ),
                r.seconds_bf16,
                None,
            ));
            peaks = format!(
                "matrix-multiply peak of this machine (1536³): numpy f32 {:.0} GFLOP/s, OpenVINO f32 {:.0} GFLOP/s, OpenVINO bf16 {:.0} GFLOP/s",
                r.peak_gflops_numpy_f32, r.peak_gflops_openvino_f32, r.peak_gflops_openvino_bf16
            );
        }
        Err(e) => eprintln!("reference not run: {e:#}"),
    }
    let peak_for = |name: &str| -> Option<f64> {
        let r = reference.as_ref().ok()?;
        Some(if name.contains("bf16") {
            r.peak_gflops_openvino_bf16
        } else {
            r.peak_gflops_openvino_f32.max(r.peak_gflops_numpy_f32)
        })
    };

    println!(
        "\n{} texts, {} tokens (mean {:.0}), {:.1} GFLOP of useful work; {} cores\n",
        texts.len(),
        total_tokens,
        total_tokens as f64 / texts.len().max(1) as f64,
        flops / 1e9,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| engine | chunks/s | tokens/s | effective GFLOP/s | of matmul peak | min cosine vs candle f32 |");
    println!("|---|---|---|---|---|---|");
    for (name, secs, min_cos) in &rows {
        let gflops = flops / secs / 1e9;
        println!(
            "| {name} | {:.1} | {:.0} | {:.0} | {} | {} |",
            texts.len() as f64 / secs,
            total_tokens as f64 / secs,
            gflops,
            peak_for(name).map_or("-".into(), |p| format!("{:.0}%", 100.0 * gflops / p)),
            min_cos.map_or("-".into(), |c| format!("{c:.5}")),
        );
    }
    if !peaks.is_empty() {
        println!("\n{peaks}");
    }
    Ok(())
}

fn run_reference(
    model_dir: &Path,
    texts: &[String],
    python: Option<PathBuf>,
    (max_batch, token_budget): (usize, usize),
) -> Result<Reference> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference/openvino_reference.py");
    let file = tempfile::NamedTempFile::new()?;
    serde_json::to_writer(&file, texts)?;
    let python = python.unwrap_or_else(|| PathBuf::from("python3"));
    let output = Command::new(&python)
        .arg(&script)
        .arg(model_dir)
        .arg(file.path())
        .arg(max_batch.to_string())
        .arg(token_budget.to_string())
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !output.status.success() {
        anyhow::bail!(
            "{} failed (it needs openvino, numpy, safetensors, tokenizers): {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        );
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flops_of_one_minilm_token_match_the_parameter_count() {
        // One token, no attention cost to speak of: ~2 FLOP per weight of the
        // six layers (each 4·384² + 2·384·1536 weights).
        let per_token = bert_flops(1, 384, 1536, 6);
        let weights = 6.0 * (4.0 * 384.0 * 384.0 + 2.0 * 384.0 * 1536.0);
        assert!((per_token - 2.0 * weights).abs() / per_token < 0.001);
        // Attention grows with the square of the length.
        assert!(bert_flops(256, 384, 1536, 6) > 256.0 * per_token);
    }
}
