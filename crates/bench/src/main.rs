//! `quarry-bench`: measures the indexing pipeline and search on real trees
//! and prints one Markdown table row per tree (the numbers in README come
//! from here).
//!
//! Usage:
//! - `quarry-bench [--embed-sample N] [--queries N] DIR...`: speed and size;
//! - `quarry-bench eval [--data DIR] [--work DIR] [--only SUITE,...]`: search
//!   quality of every mode against the plain hybrid baseline on real data
//!   (`--data` defaults to `../shared/eval`; suites `cosqa`, `docstrings`,
//!   `swebench`, `code`);
//! - `quarry-bench embed [--sample N] [--python PY] DIR...`: embedding
//!   throughput of each engine beside the OpenVINO Python reference;
//! - `quarry-bench ann [--build KIND]... [ROWS...]`: vector query latency,
//!   exact vs ANN (Quarry's kind, or each KIND), and the ANN's recall;
//! - `quarry-bench scale [--peak-gflops N] [--searchable-only] DIR`: the whole
//!   pipeline on a large code base, in one table;
//! - `quarry-bench recall DB [QUERIES] [--build KIND]...`: ANN settings'
//!   recall and latency on an existing index, and end-to-end search time by
//!   stage; with `--build`, first rebuilds its ANN index as each KIND in
//!   turn (size, build time and memory, then the settings).

mod ann;
mod embed;
mod eval;
mod live;
mod recall;
mod scale;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use quarry_chunk::TokenCounter;
use quarry_index::{walk, IndexOptions};
use quarry_models::{
    ensure_model, quarry_home, DevicePreference, Embedder, EmbedderOptions, DEFAULT_MODEL,
};
use quarry_search::{Mode, SearchRequest};
use quarry_store::{IndexMeta, Store};

struct Args {
    trees: Vec<PathBuf>,
    embed_sample: usize,
    queries: usize,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        trees: Vec::new(),
        embed_sample: 512,
        queries: 40,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--embed-sample" => {
                args.embed_sample = it.next().context("--embed-sample N")?.parse()?
            }
            "--queries" => args.queries = it.next().context("--queries N")?.parse()?,
            "-h" | "--help" => {
                println!("usage: quarry-bench [--embed-sample N] [--queries N] DIR...");
                std::process::exit(0);
            }
            _ => args.trees.push(PathBuf::from(arg)),
        }
    }
    if args.trees.is_empty() {
        bail!("usage: quarry-bench [--embed-sample N] [--queries N] DIR...");
    }
    Ok(args)
}

/// `quarry-bench eval`: every suite (or those named by `--only`), each
/// baseline against its mode, as Markdown tables with the date.
async fn eval_command(raw: &[String], embedder: &Embedder) -> Result<()> {
    let usage = "usage: quarry-bench eval [--data DIR] [--work DIR] [--only cosqa,docstrings,swebench,code] [--maxsim]";
    let mut data = PathBuf::from("../shared/eval");
    let mut work = std::env::temp_dir().join("quarry-eval");
    let mut only: Option<Vec<String>> = None;
    let mut maxsim = false;
    let mut it = raw.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--data" => data = PathBuf::from(it.next().context(usage)?),
            "--work" => work = PathBuf::from(it.next().context(usage)?),
            "--only" => {
                only = Some(
                    it.next()
                        .context(usage)?
                        .split(',')
                        .map(str::to_string)
                        .collect(),
                )
            }
            "--maxsim" => maxsim = true,
            _ => bail!(usage),
        }
    }
    // The second stage that runs with what this machine has: MaxSim over
    // the default model's token vectors, alone and blended with the first
    // stage, over each mode's best 30.
    let second_stages: Vec<(String, eval::EvalRerank)> = if maxsim {
        let home = quarry_models::quarry_home();
        let dir = quarry_models::ensure_model(&home, DEFAULT_MODEL, &mut |_| {})?;
        // OpenVINO where installed (the embedder's engine, ~9× candle here).
        let runtime = quarry_models::find_runtime(&home);
        [0.0f32, 0.5]
            .into_iter()
            .map(|alpha| {
                use quarry_models::rerank::late_interaction::MaxSimReranker;
                let max = DEFAULT_MODEL.max_tokens;
                let reranker = match &runtime {
                    Some(lib) => MaxSimReranker::load_openvino(
                        lib,
                        &dir,
                        quarry_models::Precision::Auto,
                        max,
                        alpha,
                    )?,
                    None => MaxSimReranker::load(&dir, candle_core::Device::Cpu, max, alpha)?,
                };
                Ok((
                    format!("MaxSim rerank of 30, first stage weight {alpha}"),
                    eval::EvalRerank {
                        reranker: std::sync::Arc::new(reranker),
                        depth: 30,
                    },
                ))
            })
            .collect::<Result<_>>()?
    } else {
        Vec::new()
    };
    let with_second_stages = |configs: &mut Vec<eval::Config>, mode: Mode| {
        for (name, rerank) in &second_stages {
            configs.push(eval::Config {
                name: format!("{} mode + {name}", mode.as_str()),
                mode,
                weights: None,
                rerank: Some(rerank.clone()),
            });
        }
    };
    let wanted = |suite: &str| only.as_ref().is_none_or(|o| o.iter().any(|s| s == suite));
    let mut rows = Vec::new();
    // Text queries: each side alone, the baseline, the mode, and the BM25
    // weights (prose, queries naming identifiers) the mode's choice rests on.
    let mut text_configs = vec![
        eval::Config {
            name: "dense only".into(),
            mode: Mode::Text,
            weights: Some(quarry_search::Weights::dense_only()),
            rerank: None,
        },
        eval::Config {
            name: "BM25 only".into(),
            mode: Mode::Text,
            weights: Some(quarry_search::Weights::lexical_only()),
            rerank: None,
        },
    ];
    text_configs.extend(eval::Config::pair(Mode::Text));
    for (lexical, lexical_named) in [(0.15, 0.15), (0.1, 0.15), (0.1, 1.0)] {
        text_configs.push(eval::Config {
            name: format!("text mode, BM25 {lexical} (prose) / {lexical_named} (names)"),
            mode: Mode::Text,
            weights: Some(quarry_search::Weights {
                lexical,
                lexical_named,
                ..quarry_search::Weights::for_mode(Mode::Text)
            }),
            rerank: None,
        });
    }
    with_second_stages(&mut text_configs, Mode::Text);
    if wanted("cosqa") {
        rows.extend(
            eval::cosqa::run(
                &data.join("cosqa"),
                &work.join("cosqa"),
                embedder,
                &text_configs,
            )
            .await?,
        );
    }
    if wanted("docstrings") {
        rows.extend(
            eval::docstrings::run(&work.join("docstrings"), embedder, &text_configs).await?,
        );
    }
    // Issue queries: the baseline, the mode, and the mode without each of
    // its choices (splitting long issues, ranking tests down) or with the
    // one measured and left off (file evidence).
    let issue = quarry_search::Weights::for_mode(Mode::Issue);
    let mut issue_configs = eval::Config::pair(Mode::Issue);
    for (name, weights) in [
        (
            "issue mode, one part (no splitting)",
            quarry_search::Weights { parts: 1, ..issue },
        ),
        (
            "issue mode, tests level (×1)",
            quarry_search::Weights {
                tests: 1.0,
                ..issue
            },
        ),
        (
            "issue mode, file evidence 0.3",
            quarry_search::Weights { file: 0.3, ..issue },
        ),
    ] {
        issue_configs.push(eval::Config {
            name: name.into(),
            mode: Mode::Issue,
            weights: Some(weights),
            rerank: None,
        });
    }
    with_second_stages(&mut issue_configs, Mode::Issue);
    if wanted("swebench") {
        rows.extend(
            eval::swebench::run(
                &data.join("swebench-lite-dev"),
                &work.join("swebench"),
                embedder,
                &issue_configs,
            )
            .await?,
        );
    }
    if wanted("code") {
        rows.extend(
            eval::code_pairs::run(&work.join("code"), embedder, &{
                let mut code_configs = eval::Config::pair(Mode::Code);
                with_second_stages(&mut code_configs, Mode::Code);
                code_configs
            })
            .await?,
        );
    }
    let date = std::process::Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!(
        "\nSearch quality, {date}, model {} ({})",
        DEFAULT_MODEL.id,
        embedder.engine()
    );
    eval::print_rows(&rows);
    Ok(())
}

struct Tokens<'a>(&'a Embedder);

impl TokenCounter for Tokens<'_> {
    fn count(&self, text: &str) -> usize {
        self.0.count_tokens(text)
    }
}

/// One tree's measurements.
struct Row {
    name: String,
    files: usize,
    source_mb: f64,
    chunks: usize,
    chunk_files_per_s: f64,
    chunk_mb_per_s: f64,
    embed_chunks_per_s: f64,
    embed_tokens_per_s: f64,
    index_s: f64,
    index_mb: f64,
    query_p50_ms: f64,
    query_p95_ms: f64,
}

fn main() -> Result<()> {
    let dir = ensure_model(&quarry_home(), DEFAULT_MODEL, &mut |_| {})?;
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.first().map(String::as_str) == Some("ann") {
        let usage = "usage: quarry-bench ann [--build hnsw-sq|pq:N|rq:B]... [ROWS...]";
        let (mut sizes, mut kinds) = (Vec::new(), Vec::new());
        let mut it = raw[1..].iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--build" => kinds.push(ann_kind(it.next(), usage)?),
                _ => sizes.push(arg.parse::<usize>().context(usage)?),
            }
        }
        if sizes.is_empty() {
            sizes = vec![10_000, 100_000];
        }
        return tokio::runtime::Runtime::new()?.block_on(ann::run(&sizes, 50, &kinds));
    }
    if raw.first().map(String::as_str) == Some("embed") {
        return embed_command(&dir, &raw[1..]);
    }
    let opts = EmbedderOptions {
        device: DevicePreference::Auto,
        home: quarry_home(),
        ..EmbedderOptions::default()
    };
    let embedder = Embedder::open(&dir, DEFAULT_MODEL, &opts)?;
    let device_name = embedder.engine().to_string();
    let runtime = tokio::runtime::Runtime::new()?;
    if raw.first().map(String::as_str) == Some("scale") {
        let usage = "usage: quarry-bench scale [--peak-gflops N] [--searchable-only] DIR";
        let mut args = scale::ScaleArgs {
            queries: 50,
            peak_gflops: None,
            searchable_only: false,
        };
        let mut tree = None;
        let mut it = raw[1..].iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--peak-gflops" => args.peak_gflops = Some(it.next().context(usage)?.parse()?),
                "--searchable-only" => args.searchable_only = true,
                _ => tree = Some(PathBuf::from(arg)),
            }
        }
        let tree = tree.context(usage)?;
        return runtime.block_on(scale::run(&tree, &embedder, &args));
    }
    if raw.first().map(String::as_str) == Some("live") {
        let usage = "usage: quarry-bench live DIR DB [--edits N] [--switch N] [--checkout GIT-REF]";
        let mut plan = live::Plan {
            edits: 200,
            switch: 100,
            checkout: None,
        };
        let mut paths = Vec::new();
        let mut it = raw[1..].iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--edits" => plan.edits = it.next().context(usage)?.parse()?,
                "--switch" => plan.switch = it.next().context(usage)?.parse()?,
                "--checkout" => plan.checkout = Some(it.next().context(usage)?.clone()),
                _ => paths.push(PathBuf::from(arg)),
            }
        }
        let [tree, db] = paths.as_slice() else {
            bail!(usage);
        };
        return runtime.block_on(live::run(&embedder, tree, db, &plan));
    }
    if raw.first().map(String::as_str) == Some("recall") {
        let usage = "usage: quarry-bench recall DB [QUERIES] [--build hnsw-sq|pq:N|rq:B]...";
        let (mut db, mut queries, mut kinds) = (None, 100, Vec::new());
        let mut it = raw[1..].iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--build" => kinds.push(ann_kind(it.next(), usage)?),
                _ if db.is_none() => db = Some(PathBuf::from(arg)),
                _ => queries = arg.parse().context(usage)?,
            }
        }
        let db = db.context(usage)?;
        return runtime.block_on(recall::run(&db, &embedder, queries, &kinds));
    }
    if raw.first().map(String::as_str) == Some("eval") {
        return runtime.block_on(eval_command(&raw[1..], &embedder));
    }
    let args = parse_args()?;
    let mut rows = Vec::new();
    for tree in &args.trees {
        eprintln!("benchmarking {}", tree.display());
        rows.push(runtime.block_on(bench_tree(tree, &embedder, &args))?);
    }
    println!(
        "\nmodel {} on {device_name}, {} cores, peak RSS {:.0} MiB\n",
        DEFAULT_MODEL.id,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        peak_rss_mib()
    );
    println!("| tree | files | source MB | chunks | walk+chunk files/s | walk+chunk MB/s | embed chunks/s | embed tokens/s | full index s | index MB | index/source | query p50 ms | query p95 ms |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.1} | {} | {:.0} | {:.2} | {:.1} | {:.0} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} |",
            r.name,
            r.files,
            r.source_mb,
            r.chunks,
            r.chunk_files_per_s,
            r.chunk_mb_per_s,
            r.embed_chunks_per_s,
            r.embed_tokens_per_s,
            r.index_s,
            r.index_mb,
            r.index_mb / r.source_mb.max(1e-9),
            r.query_p50_ms,
            r.query_p95_ms
        );
    }
    Ok(())
}

/// `quarry-bench embed [--sample N] [--python PY] DIR...`
fn embed_command(model_dir: &Path, args: &[String]) -> Result<()> {
    let usage = "usage: quarry-bench embed [--sample N] [--python PY] DIR...";
    let mut sample = 400usize;
    let mut python = None;
    let mut trees = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--sample" => sample = it.next().context(usage)?.parse()?,
            "--python" => python = Some(PathBuf::from(it.next().context(usage)?)),
            _ => trees.push(PathBuf::from(arg)),
        }
    }
    if trees.is_empty() {
        bail!(usage);
    }
    let (device, _) = quarry_models::select_device(DevicePreference::Cpu);
    let counter = Embedder::load(model_dir, DEFAULT_MODEL, device)?;
    let mut all = Vec::new();
    for tree in &trees {
        let (_, _, chunks, _) = collect_chunks(tree, &IndexOptions::default(), &Tokens(&counter))?;
        all.extend(chunks.into_iter().map(|c| c.embed_text));
    }
    let step = (all.len() / sample.max(1)).max(1);
    let texts: Vec<String> = all.into_iter().step_by(step).take(sample).collect();
    drop(counter);
    embed::run(model_dir, &texts, python)
}

/// Walks and chunks `tree` as the indexer does, without embedding.
/// Returns (files walked, bytes read, chunks, seconds).
fn collect_chunks(
    tree: &Path,
    options: &IndexOptions,
    tokens: &dyn TokenCounter,
) -> Result<(usize, u64, Vec<quarry_chunk::Chunk>, f64)> {
    let started = Instant::now();
    let walked = walk::walk(tree, options)?;
    let mut bytes = 0u64;
    let mut chunks = Vec::new();
    for file in &walked.files {
        let Ok(data) = std::fs::read(&file.abs) else {
            continue;
        };
        if data[..data.len().min(8192)].contains(&0) {
            continue;
        }
        bytes += data.len() as u64;
        let text = String::from_utf8_lossy(&data);
        chunks.extend(quarry_chunk::chunk_source(
            Path::new(&file.rel),
            &text,
            &options.chunking,
            tokens,
        ));
    }
    Ok((
        walked.files.len(),
        bytes,
        chunks,
        started.elapsed().as_secs_f64(),
    ))
}

async fn bench_tree(tree: &Path, embedder: &Embedder, args: &Args) -> Result<Row> {
    let options = IndexOptions::default();
    let tokens = Tokens(embedder);

    // Walk + read + chunk, as the indexer does it, without embedding.
    let (files, bytes, chunks, chunk_secs) = collect_chunks(tree, &options, &tokens)?;

    // Embedding throughput on an evenly spread sample of the chunks.
    let step = (chunks.len() / args.embed_sample.max(1)).max(1);
    let sample: Vec<&str> = chunks
        .iter()
        .step_by(step)
        .take(args.embed_sample)
        .map(|c| c.embed_text.as_str())
        .collect();
    let sample_tokens: usize = sample
        .iter()
        .map(|t| tokens.count(t).min(DEFAULT_MODEL.max_tokens))
        .sum();
    let started = Instant::now();
    embedder.embed(&sample)?;
    let embed_secs = started.elapsed().as_secs_f64();

    // The whole pipeline into a fresh index.
    let db = tempfile::tempdir()?;
    let store = Store::open_or_create(
        &db.path().join("index"),
        &IndexMeta::new(DEFAULT_MODEL.id, DEFAULT_MODEL.dim),
    )
    .await?;
    let started = Instant::now();
    let report = quarry_index::index_root(&store, embedder, tree, &options, &mut |_| {}).await?;
    let index_secs = started.elapsed().as_secs_f64();
    let status = store.status().await?;

    // Query latency with the model loaded, over queries made from the
    // tree's own symbols.
    let latencies = query_latencies(
        &store,
        embedder,
        &symbol_queries(&chunks, args.queries),
        Mode::Text,
    )
    .await?;

    Ok(Row {
        name: tree.file_name().map_or_else(
            || tree.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        files,
        source_mb: bytes as f64 / 1e6,
        chunks: report.chunks_total,
        chunk_files_per_s: files as f64 / chunk_secs,
        chunk_mb_per_s: bytes as f64 / 1e6 / chunk_secs,
        embed_chunks_per_s: sample.len() as f64 / embed_secs,
        embed_tokens_per_s: sample_tokens as f64 / embed_secs,
        index_s: index_secs,
        index_mb: status.bytes as f64 / 1e6,
        query_p50_ms: percentile(&latencies, 0.5),
        query_p95_ms: percentile(&latencies, 0.95),
    })
}

/// Up to `n` queries made from the symbols of evenly spread chunks
/// ("parse_header" → "parse header").
fn symbol_queries(chunks: &[quarry_chunk::Chunk], n: usize) -> Vec<String> {
    chunks
        .iter()
        .filter(|c| !c.symbol.is_empty())
        .step_by((chunks.len() / n.max(1)).max(1))
        .take(n)
        .map(|c| quarry_search::query::split_identifier(&c.symbol).join(" "))
        .collect()
}

/// Exact top-10 vector search for each query: the latencies in ms
/// (ascending) and the result ids, the ground truth for ANN recall.
async fn exact_top10(store: &Store, vectors: &[Vec<f32>]) -> Result<(Vec<f64>, Vec<Vec<String>>)> {
    let filter = quarry_store::SearchFilter::default();
    let (mut ms, mut truth) = (Vec::new(), Vec::new());
    for v in vectors {
        let started = Instant::now();
        let hits = store.vector_search_exact(v, 10, &filter).await?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
        truth.push(hits.into_iter().map(|(c, _)| c.id).collect());
    }
    ms.sort_by(f64::total_cmp);
    Ok((ms, truth))
}

/// Default (ANN when indexed) top-10 vector search for each query: the
/// latencies in ms (ascending) and the recall@10 against `truth`.
async fn ann_top10(
    store: &Store,
    vectors: &[Vec<f32>],
    truth: &[Vec<String>],
) -> Result<(Vec<f64>, f64)> {
    let filter = quarry_store::SearchFilter::default();
    let (mut ms, mut found, mut total) = (Vec::new(), 0, 0);
    for (v, want) in vectors.iter().zip(truth) {
        let started = Instant::now();
        let hits = store.vector_search(v, 10, &filter).await?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
        found += hits.iter().filter(|(c, _)| want.contains(&c.id)).count();
        total += want.len();
    }
    ms.sort_by(f64::total_cmp);
    Ok((ms, found as f64 / total.max(1) as f64))
}

/// End-to-end `search()` latency of each query in `mode`, in ms, ascending.
async fn query_latencies(
    store: &Store,
    embedder: &Embedder,
    queries: &[String],
    mode: Mode,
) -> Result<Vec<f64>> {
    let mut latencies = Vec::new();
    for query in queries {
        let mut request = SearchRequest::new(query.clone());
        request.mode = mode;
        let started = Instant::now();
        quarry_search::search(store, embedder, &request).await?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// Long issue-like queries made from the corpus: a report line, then
/// several of its chunks pasted as if quoted (a few KB each, so issue mode
/// embeds them in several parts).
fn issue_queries(chunks: &[quarry_chunk::Chunk], n: usize) -> Vec<String> {
    let with_code: Vec<&quarry_chunk::Chunk> =
        chunks.iter().filter(|c| c.text.len() > 300).collect();
    if with_code.is_empty() {
        return Vec::new();
    }
    (0..n)
        .map(|i| {
            let mut issue = format!(
                "Calling {} fails with an unexpected error since the last release.\n\n",
                with_code[i * 7 % with_code.len()].symbol
            );
            for k in 0..4 {
                let chunk = with_code[(i * 7 + k * 13) % with_code.len()];
                issue.push_str(&format!(
                    "In `{}`:\n```\n{}\n```\n\n",
                    chunk.symbol, chunk.text
                ));
            }
            issue
        })
        .collect()
}

/// The `p` quantile (0..=1) of ascending `sorted` values, nearest rank; 0 when empty.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() - 1) as f64 * p.clamp(0.0, 1.0)).round() as usize;
    sorted[rank]
}

/// Peak resident memory of this process (Linux `VmHWM`), in MiB.
/// The ANN kind after a `--build` flag (`hnsw-sq`, `pq:N`, `rq:B`).
fn ann_kind(value: Option<&String>, usage: &str) -> Result<quarry_store::AnnKind> {
    value
        .context(usage.to_string())?
        .parse()
        .map_err(|e: String| anyhow::anyhow!("{e}\n{usage}"))
}

/// Starts a new peak-RSS measurement: the kernel resets the high-water mark
/// to the current RSS, so [`peak_rss_mib`] then reports the peak of one phase.
fn reset_peak_rss() {
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        eprintln!("cannot reset the peak RSS ({e}): peaks include earlier phases");
    }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_picks_nearest_rank() {
        let values: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), 11.0);
        assert_eq!(percentile(&values, 0.95), 19.0);
        assert_eq!(percentile(&values, 1.0), 20.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn peak_rss_is_reported_on_linux() {
        assert!(peak_rss_mib() > 0.0);
    }
}
