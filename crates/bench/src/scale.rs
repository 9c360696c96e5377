//! `quarry-bench scale`: the whole pipeline on a large real code base, in one
//! table: ripgrep's scan of the same tree as the floor, time until everything
//! is searchable by text, time until everything is embedded, embedding
//! efficiency, query latency (end to end, and vector search exact vs ANN with
//! recall), index size against source size, and peak memory.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use quarry_index::{walk, IndexOptions, IndexProgress};
use quarry_models::{Embedder, DEFAULT_MODEL};
use quarry_search::Mode;
use quarry_store::{IndexMeta, Store};

use crate::{
    collect_chunks, issue_queries, peak_rss_mib, percentile, query_latencies, reset_peak_rss,
    symbol_queries, Tokens,
};

/// Options of the `scale` subcommand.
pub struct ScaleArgs {
    pub queries: usize,
    /// The machine's bf16 (or f32) matrix-multiply peak, for the efficiency row.
    pub peak_gflops: Option<f64>,
    /// Stop once everything is searchable by text (measures pass 1 only).
    pub searchable_only: bool,
}

pub async fn run(tree: &Path, embedder: &Embedder, args: &ScaleArgs) -> Result<()> {
    let options = IndexOptions::default();
    let walked = walk::walk(tree, &options)?;
    let (mut bytes, mut lines) = (0u64, 0usize);
    for file in &walked.files {
        if let Ok(data) = std::fs::read(&file.abs) {
            if !data[..data.len().min(8192)].contains(&0) {
                bytes += data.len() as u64;
                lines += data.iter().filter(|&&b| b == b'\n').count();
            }
        }
    }

    // The floor: ripgrep reading every file of the same tree (same ignore rules).
    let started = Instant::now();
    let rg = Command::new("rg")
        .args(["--count-matches", "--no-messages", "-e", "return"])
        .arg(tree)
        .output();
    let rg_secs = match rg {
        Ok(out) if out.status.success() => Some(started.elapsed().as_secs_f64()),
        _ => None,
    };

    // Quarry, from nothing to fully embedded.
    let db = tempfile::tempdir_in(std::env::temp_dir())?;
    let store = Store::open_or_create(
        &db.path().join("index"),
        &IndexMeta::new(DEFAULT_MODEL.id, DEFAULT_MODEL.dim),
    )
    .await?;
    let started = Instant::now();
    let mut searchable_at = None;
    let mut optimizing_at = None;
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let run_options = IndexOptions {
        cancel: Some(cancel.clone()),
        ..IndexOptions::default()
    };
    // Peak RSS of each phase: text pass, embedding, optimising, querying.
    let mut phase_peaks = Vec::new();
    fn end_phase(peaks: &mut Vec<f64>) {
        peaks.push(peak_rss_mib());
        reset_peak_rss();
    }
    reset_peak_rss();
    let result = quarry_index::index_root(&store, embedder, tree, &run_options, &mut |e| match e {
        IndexProgress::Searchable { chunks_pending } => {
            end_phase(&mut phase_peaks);
            searchable_at = Some(started.elapsed().as_secs_f64());
            eprintln!("searchable by text; embedding {chunks_pending} chunks");
            if args.searchable_only {
                cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        IndexProgress::Embedded {
            chunks_done,
            chunks_total,
        } if chunks_done % 5120 < 64 => eprintln!("embedded {chunks_done}/{chunks_total}"),
        IndexProgress::Optimizing => {
            end_phase(&mut phase_peaks);
            optimizing_at = Some(started.elapsed().as_secs_f64());
        }
        _ => {}
    })
    .await;
    let searchable = searchable_at.context("no searchable event")?;
    if args.searchable_only {
        let rg = rg_secs.map_or("ripgrep not found".to_string(), |r| format!("{r:.2} s"));
        let usage = store.disk_usage();
        println!(
            "\n{} files, {lines} lines, {:.1} MB: ripgrep {rg}; searchable by text after {searchable:.1} s; \
             text index {:.1} MB (chunk rows {:.1} MB, full-text index {:.1} MB); peak RSS {:.0} MiB",
            walked.files.len(),
            bytes as f64 / 1e6,
            usage.total() as f64 / 1e6,
            usage.chunk_data as f64 / 1e6,
            usage.text_index as f64 / 1e6,
            peak_rss_mib()
        );
        return Ok(());
    }
    let report = result?;
    let total = started.elapsed().as_secs_f64();
    end_phase(&mut phase_peaks);
    let embed_secs = optimizing_at.unwrap_or(total) - searchable;
    let status = store.status().await?;

    // Useful FLOPs per chunk, from an evenly spread sample of files.
    let sample_files = walked.files.len().clamp(1, 400);
    let sample_dir = tempfile::tempdir()?;
    for file in walked
        .files
        .iter()
        .step_by((walked.files.len() / sample_files).max(1))
    {
        let dest = sample_dir.path().join(&file.rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let _ = std::fs::copy(&file.abs, dest);
    }
    let tokens = Tokens(embedder);
    let (_, _, sample, _) = collect_chunks(sample_dir.path(), &options, &tokens)?;
    let flops_per_chunk = sample
        .iter()
        .map(|c| {
            let t = (embedder.count_tokens(&c.embed_text) + 2).min(DEFAULT_MODEL.max_tokens);
            crate::embed::bert_flops(t, 384, 1536, 6)
        })
        .sum::<f64>()
        / sample.len().max(1) as f64;
    let gflops = flops_per_chunk * report.chunks_embedded as f64 / embed_secs / 1e9;

    // Queries made from the corpus's own symbols, run end to end.
    let symbols = symbol_queries(&sample, args.queries);
    let e2e = query_latencies(&store, embedder, &symbols, Mode::Text).await?;
    // Pasted issues: long, so embedded in parts, each its own vector search.
    let issues = issue_queries(&sample, args.queries.min(50));
    let issue_e2e = query_latencies(&store, embedder, &issues, Mode::Issue).await?;
    // Vector search alone: exact scan vs the ANN index, and the ANN's recall@10.
    let vectors = symbols
        .iter()
        .map(|q| embedder.embed_query(q))
        .collect::<Result<Vec<_>, _>>()?;
    let (exact_ms, truth) = crate::exact_top10(&store, &vectors).await?;
    let (ann_ms, recall) = crate::ann_top10(&store, &vectors, &truth).await?;
    let has_ann = store.has_vector_index().await?;
    // Indexing and querying the tree; the synthetic tables below come after.
    end_phase(&mut phase_peaks);
    let peak_rss = phase_peaks.iter().copied().fold(0.0, f64::max);

    let name = tree.file_name().map_or_else(
        || tree.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    println!(
        "\n`{name}`: {} files, {lines} lines, {:.1} MB of text; {} chunks; engine {}; {} cores\n",
        walked.files.len(),
        bytes as f64 / 1e6,
        status.chunks,
        embedder.engine(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| measure | value |");
    println!("|---|---|");
    match rg_secs {
        Some(s) => println!("| ripgrep scan of the tree (floor) | {s:.2} s |"),
        None => println!("| ripgrep scan of the tree (floor) | ripgrep not found |"),
    }
    println!("| searchable by text (walk, chunk, write, full-text index) | {searchable:.1} s ({:.0}× ripgrep) |",
        rg_secs.map_or(f64::NAN, |r| searchable / r));
    println!("| fully embedded and optimised | {total:.0} s |");
    println!(
        "| embedding | {} chunks in {embed_secs:.0} s, {:.1} chunks/s |",
        report.chunks_embedded,
        report.chunks_embedded as f64 / embed_secs.max(1e-9)
    );
    match args.peak_gflops {
        Some(peak) => println!("| embedding efficiency | {gflops:.0} GFLOP/s effective, {:.0}% of the {peak:.0} GFLOP/s matmul peak |", 100.0 * gflops / peak),
        None => println!("| embedding efficiency | {gflops:.0} GFLOP/s effective |"),
    }
    println!(
        "| search, end to end (p50 / p95, {} queries) | {:.1} / {:.1} ms |",
        e2e.len(),
        percentile(&e2e, 0.5),
        percentile(&e2e, 0.95)
    );
    println!(
        "| issue search, end to end (p50 / p95, {} pasted issues of ~{:.1} KB) | {:.1} / {:.1} ms |",
        issue_e2e.len(),
        issues.iter().map(String::len).sum::<usize>() as f64 / issues.len().max(1) as f64 / 1024.0,
        percentile(&issue_e2e, 0.5),
        percentile(&issue_e2e, 0.95)
    );
    println!(
        "| vector search, exact scan (p50 / p95) | {:.1} / {:.1} ms |",
        percentile(&exact_ms, 0.5),
        percentile(&exact_ms, 0.95)
    );
    println!(
        "| vector search, {} (p50 / p95) | {:.1} / {:.1} ms, recall@10 {:.3} |",
        if has_ann {
            "ANN index"
        } else {
            "default (no ANN index: below the threshold)"
        },
        percentile(&ann_ms, 0.5),
        percentile(&ann_ms, 0.95),
        recall
    );
    println!(
        "| index size / source size | {:.1} MB / {:.1} MB = {:.2} |",
        status.bytes as f64 / 1e6,
        bytes as f64 / 1e6,
        status.bytes as f64 / bytes.max(1) as f64
    );
    for size in [10_000, 100_000] {
        let row = crate::ann::measure(size, args.queries).await?;
        println!(
            "| vector search at {}k chunks (synthetic), exact / ANN p50 (p95) | {:.1} ({:.1}) / {:.1} ({:.1}) ms, recall@10 {:.3} |",
            row.size / 1000,
            row.exact_p50_ms,
            row.exact_p95_ms,
            row.ann_p50_ms,
            row.ann_p95_ms,
            row.recall
        );
    }
    let usage = store.disk_usage();
    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "| index by component | chunk rows {:.1} MB, vectors {:.1} MB ({} distinct texts), full-text index {:.1} MB, vector index {:.1} MB, other {:.1} MB |",
        mb(usage.chunk_data),
        mb(usage.vector_data),
        status.vectors,
        mb(usage.text_index),
        mb(usage.vector_index),
        mb(usage.other)
    );
    let phases = ["text pass", "embedding", "optimising", "querying"];
    println!(
        "| peak RSS (indexing and querying the tree) | {peak_rss:.0} MiB ({}) |",
        phases
            .iter()
            .zip(&phase_peaks)
            .map(|(phase, mib)| format!("{phase} {mib:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
