//! Text → code retrieval quality on CoSQA (dev-500 queries over its
//! 6,267-function code base): MRR@100, nDCG@10 and Recall@1/5/10 for the
//! dense side alone, the BM25 side alone, and Quarry's text-mode fusion.
//!
//! Each function becomes one file `f<idx>.py` of a corpus directory that is
//! indexed with the real pipeline (incrementally, so a second run reuses the
//! index), and a hit maps back to its function through its path.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use quarry_index::IndexOptions;
use quarry_models::{Embedder, DEFAULT_MODEL};
use quarry_search::{Mode, SearchRequest, Weights};
use quarry_store::{IndexMeta, Store};

/// Ranks considered for MRR; a gold function ranked lower counts as 0.
const MRR_DEPTH: usize = 100;

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

/// Retrieval metrics over a query set.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Metrics {
    /// Mean reciprocal rank (ranks beyond [`MRR_DEPTH`] count 0).
    pub mrr: f64,
    /// nDCG@10 with one relevant function per query.
    pub ndcg10: f64,
    /// Share of queries with the gold function first.
    pub recall1: f64,
    /// Share with it in the top 5.
    pub recall5: f64,
    /// Share with it in the top 10.
    pub recall10: f64,
}

impl Metrics {
    /// Metrics from the 1-based rank of the gold function per query (`None`: not found).
    pub fn from_ranks(ranks: &[Option<usize>]) -> Self {
        let n = ranks.len().max(1) as f64;
        let mut m = Metrics::default();
        for rank in ranks.iter().flatten().copied() {
            if rank <= MRR_DEPTH {
                m.mrr += 1.0 / rank as f64;
            }
            if rank <= 10 {
                m.ndcg10 += 1.0 / ((rank + 1) as f64).log2();
                m.recall10 += 1.0;
            }
            if rank <= 5 {
                m.recall5 += 1.0;
            }
            if rank == 1 {
                m.recall1 += 1.0;
            }
        }
        for value in [
            &mut m.mrr,
            &mut m.ndcg10,
            &mut m.recall1,
            &mut m.recall5,
            &mut m.recall10,
        ] {
            *value /= n;
        }
        m
    }
}

/// Runs the evaluation: `data` is the CoSQA directory, `work` holds the
/// corpus and its index between runs.
pub async fn run(data: &Path, work: &Path, embedder: &Embedder) -> Result<()> {
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

    println!(
        "\nCoSQA dev-500, {} functions, model {}\n",
        code_map.len(),
        DEFAULT_MODEL.id
    );
    println!("| retrieval | MRR@100 | nDCG@10 | R@1 | R@5 | R@10 |");
    println!("|---|---|---|---|---|---|");
    let mut configs = vec![
        ("dense only".to_string(), Some(Weights::dense_only())),
        ("BM25 only".to_string(), Some(Weights::lexical_only())),
        ("Quarry text mode (defaults)".to_string(), None),
    ];
    // The BM25 weight is the one text-mode choice this data set informs.
    for lexical in [0.1, 0.3, 0.6] {
        let weights = Weights {
            lexical,
            ..Weights::for_mode(Mode::Text)
        };
        configs.push((format!("text mode, BM25 weight {lexical}"), Some(weights)));
    }
    for (name, weights) in configs {
        let mut ranks = Vec::with_capacity(queries.len());
        for query in &queries {
            let mut request = SearchRequest::new(query.doc.clone());
            request.mode = Mode::Text;
            request.top_k = MRR_DEPTH;
            request.weights = weights;
            let outcome = quarry_search::search(&store, embedder, &request).await?;
            let gold = query.gold_file();
            let mut seen = Vec::new();
            for hit in &outcome.hits {
                if !seen.contains(&hit.path) {
                    seen.push(hit.path.clone());
                }
            }
            ranks.push(seen.iter().position(|p| *p == gold).map(|i| i + 1));
        }
        let m = Metrics::from_ranks(&ranks);
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            m.mrr * 100.0,
            m.ndcg10 * 100.0,
            m.recall1 * 100.0,
            m.recall5 * 100.0,
            m.recall10 * 100.0
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_from_ranks() {
        let m = Metrics::from_ranks(&[Some(1), Some(2), None, Some(11)]);
        assert!((m.mrr - (1.0 + 0.5 + 1.0 / 11.0) / 4.0).abs() < 1e-9);
        assert!((m.recall1 - 0.25).abs() < 1e-9);
        assert!((m.recall5 - 0.5).abs() < 1e-9);
        assert!((m.recall10 - 0.5).abs() < 1e-9);
        assert!((m.ndcg10 - (1.0 + 1.0 / 3f64.log2()) / 4.0).abs() < 1e-9);
    }
}
