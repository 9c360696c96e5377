//! Text → code retrieval quality on CoSQA (dev-500 queries over its
//! 6,267-function code base): MRR@100, nDCG@10 and Recall@1/5/10.
//!
//! Each function becomes one file `f<idx>.py` of a corpus directory that is
//! indexed with the real pipeline (incrementally, so a second run reuses the
//! index), and a hit maps back to its function through its path.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use quarry_index::IndexOptions;
use quarry_models::{Embedder, DEFAULT_MODEL};
use quarry_store::{IndexMeta, Store};

use super::metrics::{first_ranks, Metrics, MRR_DEPTH};
use super::{Config, Row};

#[derive(serde::Deserialize)]
struct Query {
    doc: String,
    /// A number in the data set (a string in some copies).
    retrieval_idx: serde_json::Value,
}

impl Query {
    fn gold_file(&self) -> String {
        match &self.retrieval_idx {
            serde_json::Value::String(s) => format!("f{s}.py"),
            other => format!("f{other}.py"),
        }
    }
}

/// Runs the evaluation under each of `configs`: `data` is the CoSQA
/// directory, `work` holds the corpus and its index between runs.
pub async fn run(
    data: &Path,
    work: &Path,
    embedder: &Embedder,
    configs: &[Config],
) -> Result<Vec<Row>> {
    let code_map: HashMap<String, u64> = serde_json::from_str(
        &std::fs::read_to_string(data.join("code_idx_map.txt"))
            .context("reading code_idx_map.txt")?,
    )?;
    let queries: Vec<Query> = serde_json::from_str(
        &std::fs::read_to_string(data.join("cosqa-retrieval-dev-500.json"))
            .context("reading cosqa-retrieval-dev-500.json")?,
    )?;
    let corpus = work.join("corpus");
    std::fs::create_dir_all(&corpus)?;
    for (code, idx) in &code_map {
        let path = corpus.join(format!("f{idx}.py"));
        if std::fs::read_to_string(&path).ok().as_deref() != Some(code.as_str()) {
            std::fs::write(&path, code)?;
        }
    }
    let store = Store::open_or_create(
        &work.join("index"),
        &IndexMeta::new(DEFAULT_MODEL.id, DEFAULT_MODEL.dim),
    )
    .await?;
    eprintln!("indexing {} functions (incremental)", code_map.len());
    let report = quarry_index::index_root(
        &store,
        embedder,
        &corpus,
        &IndexOptions::default(),
        &mut |_| {},
    )
    .await?;
    eprintln!(
        "{} chunks, {} embedded this run in {:.0}s",
        report.chunks_total, report.chunks_embedded, report.seconds
    );

    let mut rows = Vec::new();
    for config in configs {
        let mut ranks = Vec::with_capacity(queries.len());
        for query in &queries {
            let outcome = config
                .search(&store, embedder, &query.doc, MRR_DEPTH)
                .await?;
            let paths = first_ranks(outcome.hits.iter().map(|h| h.path.as_str()));
            let gold = query.gold_file();
            ranks.push(paths.iter().position(|p| *p == gold).map(|i| i + 1));
        }
        let m = Metrics::from_ranks(&ranks);
        rows.push(Row {
            suite: format!("Text → code: CoSQA dev-500 ({} functions)", code_map.len()),
            config: config.name.clone(),
            metrics: m.columns(),
        });
    }
    Ok(rows)
}
