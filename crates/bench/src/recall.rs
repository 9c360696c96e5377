//! `quarry-bench recall DB`: on an existing index with an ANN index, how
//! each ANN setting trades recall@10 (against exact search) for latency,
//! with queries made from the index's own symbols — the evidence behind
//! `AnnParams::default`. Also times end-to-end text searches with the
//! default setting, stage by stage.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Result};
use quarry_models::Embedder;
use quarry_search::{Mode, SearchRequest, Timings};
use quarry_store::{AnnKind, AnnParams, Store};

use crate::percentile;

/// Runs every setting on `queries` symbol queries; prints Markdown tables.
pub async fn run(db: &Path, embedder: &Embedder, queries: usize, kinds: &[AnnKind]) -> Result<()> {
    let mut store = Store::open(db).await?;
    if kinds.is_empty() && !store.has_vector_index().await? {
        bail!("{} has no ANN index yet", db.display());
    }
    let prints = store.chunk_fingerprints().await?;
    let queries: Vec<String> = prints
        .iter()
        .filter(|p| !p.2.is_empty())
        .step_by((prints.len() / queries.max(1)).max(1))
        .take(queries)
        .map(|p| quarry_search::query::split_identifier(&p.2).join(" "))
        .collect();
    let vectors = queries
        .iter()
        .map(|q| embedder.embed_query(q))
        .collect::<Result<Vec<_>, _>>()?;
    // Memory by phase: searches as a long-lived process makes them first,
    // then the exact scans only a benchmark makes.
    let opened_mib = crate::peak_rss_mib();
    crate::reset_peak_rss();
    // End to end with the defaults, stage by stage (medians).
    store.set_ann_params(AnnParams::default());
    let mut runs: Vec<Timings> = Vec::new();
    for query in &queries {
        let mut request = SearchRequest::new(query.clone());
        request.mode = Mode::Text;
        runs.push(
            quarry_search::search(&store, embedder, &request)
                .await?
                .timings,
        );
    }
    let sorted = |f: fn(&Timings) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let median = |f: fn(&Timings) -> f64| percentile(&sorted(f), 0.5);
    println!(
        "\nEnd-to-end text search, default setting, medians: total {:.1} ms (p95 {:.1}); \
         embed {:.1}, vector {:.1}, full-text {:.1}, symbols {:.1}, pending count {:.1}, fusion {:.1}",
        median(|t| t.total_ms),
        percentile(&sorted(|t| t.total_ms), 0.95),
        median(|t| t.embed_ms),
        median(|t| t.dense_ms),
        median(|t| t.lexical_ms),
        median(|t| t.symbols_ms),
        median(|t| t.pending_ms),
        median(|t| t.fuse_ms)
    );
    let searches_mib = crate::peak_rss_mib();
    crate::reset_peak_rss();
    let (exact_ms, truth) = crate::exact_top10(&store, &vectors).await?;
    println!(
        "\nPeak RSS: opening the index and embedding the queries {opened_mib:.0} MiB, \
         {} end-to-end searches {searches_mib:.0} MiB, exact scans {:.0} MiB",
        queries.len(),
        crate::peak_rss_mib()
    );
    let status = store.status().await?;
    println!(
        "\n`{}`: {} chunks, {} vectors; {} queries; exact search p50 {:.1} ms, p95 {:.1} ms\n",
        db.display(),
        status.chunks,
        status.vectors,
        queries.len(),
        percentile(&exact_ms, 0.5),
        percentile(&exact_ms, 0.95)
    );
    if kinds.is_empty() {
        settings_table(&mut store, &vectors, &truth, &SETTINGS).await?;
    }
    for &kind in kinds {
        crate::reset_peak_rss();
        let started = Instant::now();
        store.build_vector_index(kind).await?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "\n{kind}: built in {secs:.1} s, peak RSS while building {:.0} MiB, index {:.1} MB\n",
            crate::peak_rss_mib(),
            store.disk_usage().vector_index as f64 / 1e6
        );
        settings_table(&mut store, &vectors, &truth, &BUILT_SETTINGS).await?;
    }

    Ok(())
}

/// (nprobes, ef, refine factor) settings tried on an existing index.
const SETTINGS: [(Option<usize>, Option<usize>, u32); 7] = [
    (None, None, 4),
    (None, None, 10),
    (Some(40), None, 4),
    (Some(80), None, 4),
    (None, Some(200), 4),
    (Some(40), Some(200), 10),
    (Some(80), Some(300), 10),
];

/// Settings tried on each rebuilt index: the re-ranking depth, which the
/// README's measurements show decides recall, and wider probing.
const BUILT_SETTINGS: [(Option<usize>, Option<usize>, u32); 5] = [
    (None, None, 4),
    (None, None, 10),
    (None, None, 20),
    (Some(40), None, 10),
    (Some(80), None, 20),
];

/// One Markdown table: each setting's latency and recall@10 against `truth`.
async fn settings_table(
    store: &mut Store,
    vectors: &[Vec<f32>],
    truth: &[Vec<String>],
    settings: &[(Option<usize>, Option<usize>, u32)],
) -> Result<()> {
    println!("| nprobes | ef | refine | p50 ms | p95 ms | recall@10 |");
    println!("|---|---|---|---|---|---|");
    for &(nprobes, ef, refine_factor) in settings {
        store.set_ann_params(AnnParams {
            nprobes,
            ef,
            refine_factor,
        });
        let (ms, recall) = crate::ann_top10(store, vectors, truth).await?;
        let show = |v: Option<usize>| v.map_or("auto".to_string(), |n| n.to_string());
        println!(
            "| {} | {} | {refine_factor} | {:.1} | {:.1} | {:.3} |",
            show(nprobes),
            show(ef),
            percentile(&ms, 0.5),
            percentile(&ms, 0.95),
            recall
        );
    }
    Ok(())
}
