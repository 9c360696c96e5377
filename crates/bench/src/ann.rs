//! `quarry-bench ann`: vector query latency, exact scan vs the ANN index, at
//! growing table sizes, with the ANN's recall@10 against exact search.
//!
//! Rows are synthetic: 384-d unit vectors scattered around 200 cluster centres
//! (embeddings of code cluster the same way), so the table can reach 100k rows
//! without embedding 100k chunks; latency depends on the row count and the
//! dimension, not on where the vectors came from.

use std::time::Instant;

use anyhow::Result;
use quarry_store::{AnnKind, ChunkRow, FileRow, IndexMeta, Store, StoredChunk, ANN_KIND};

const DIM: usize = 384;
const ROWS_PER_FILE: usize = 20;

struct Rng(u64);

impl Rng {
    /// Uniform in [-1, 1).
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn vector(&mut self, centres: &[Vec<f32>]) -> Vec<f32> {
        let c =
            &centres[((self.next() + 1.0) * 0.5 * centres.len() as f32) as usize % centres.len()];
        let mut v: Vec<f32> = c.iter().map(|x| x + 0.08 * self.next()).collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        v
    }
}

fn row(i: usize, vector: Vec<f32>) -> ChunkRow {
    let path = format!("src/f{}.rs", i / ROWS_PER_FILE);
    ChunkRow {
        chunk: StoredChunk {
            id: format!("c{i}"),
            root: "/bench".into(),
            path,
            language: "rust".into(),
            kind: "function".into(),
            symbol: format!("function_{i}"),
            start_line: 1,
            end_line: 20,
            content_hash: format!("h{i}"),
            text: format!("fn function_{i}() {{ do_something({i}); }}"),
        },
        vector,
    }
}

/// Exact vs ANN vector queries on one table size.
pub struct AnnRow {
    /// Rows in the table.
    pub size: usize,
    /// The ANN index measured.
    pub kind: AnnKind,
    /// Exact (flat) query latency, median and 95th percentile.
    pub exact_p50_ms: f64,
    pub exact_p95_ms: f64,
    /// Query latency through the ANN index.
    pub ann_p50_ms: f64,
    pub ann_p95_ms: f64,
    /// ANN recall@10 against the exact results.
    pub recall: f64,
    /// Seconds to build the ANN index.
    pub build_s: f64,
}

/// Runs the comparison for each size in `sizes` and each ANN kind in
/// `kinds` (Quarry's [`ANN_KIND`] when empty); prints a Markdown table.
pub async fn run(sizes: &[usize], queries: usize, kinds: &[AnnKind]) -> Result<()> {
    let kinds = if kinds.is_empty() {
        &[ANN_KIND][..]
    } else {
        kinds
    };
    println!("| chunks | ANN kind | exact p50 ms | exact p95 ms | ANN p50 ms | ANN p95 ms | ANN recall@10 | ANN build s |");
    println!("|---|---|---|---|---|---|---|---|");
    for &size in sizes {
        for row in measure_kinds(size, queries, kinds).await? {
            println!(
                "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.3} | {:.1} |",
                row.size,
                row.kind,
                row.exact_p50_ms,
                row.exact_p95_ms,
                row.ann_p50_ms,
                row.ann_p95_ms,
                row.recall,
                row.build_s
            );
        }
    }
    Ok(())
}

/// Builds a synthetic table of `size` rows and times `queries` vector
/// queries on it, exact and through Quarry's ANN index.
pub async fn measure(size: usize, queries: usize) -> Result<AnnRow> {
    let mut rows = measure_kinds(size, queries, &[ANN_KIND]).await?;
    Ok(rows.remove(0))
}

/// [`measure`] for each ANN kind in turn, on one table.
async fn measure_kinds(size: usize, queries: usize, kinds: &[AnnKind]) -> Result<Vec<AnnRow>> {
    let mut rng = Rng(42);
    let centres: Vec<Vec<f32>> = (0..200)
        .map(|_| (0..DIM).map(|_| rng.next()).collect())
        .collect();
    let dir = tempfile::tempdir()?;
    let mut store = Store::open_or_create(
        &dir.path().join("db"),
        &IndexMeta::new("bench/synthetic", DIM),
    )
    .await?;
    // Build the ANN index explicitly below, timed.
    store.set_ann_min_rows(usize::MAX);
    let mut written = 0;
    while written < size {
        let n = (size - written).min(10_000);
        let rows: Vec<ChunkRow> = (written..written + n)
            .map(|i| row(i, rng.vector(&centres)))
            .collect();
        let mut paths: Vec<String> = rows.iter().map(|r| r.chunk.path.clone()).collect();
        paths.dedup();
        let files: Vec<FileRow> = paths
            .iter()
            .map(|p| FileRow {
                root: "/bench".into(),
                path: p.clone(),
                size: 1000,
                mtime_ns: 0,
                content_hash: p.clone(),
                chunks: ROWS_PER_FILE as u32,
            })
            .collect();
        store.replace_files("/bench", &paths, &files, &rows).await?;
        written += n;
    }
    store.optimize().await?;
    let qs: Vec<Vec<f32>> = (0..queries).map(|_| rng.vector(&centres)).collect();
    let (exact_ms, truth) = crate::exact_top10(&store, &qs).await?;
    let mut out = Vec::new();
    for &kind in kinds {
        let started = Instant::now();
        store.build_vector_index(kind).await?;
        let build_s = started.elapsed().as_secs_f64();
        let (ann_ms, recall) = crate::ann_top10(&store, &qs, &truth).await?;
        out.push(AnnRow {
            size,
            kind,
            exact_p50_ms: crate::percentile(&exact_ms, 0.5),
            exact_p95_ms: crate::percentile(&exact_ms, 0.95),
            ann_p50_ms: crate::percentile(&ann_ms, 0.5),
            ann_p95_ms: crate::percentile(&ann_ms, 0.95),
            recall,
            build_s,
        });
    }
    Ok(out)
}
