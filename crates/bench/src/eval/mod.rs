//! `quarry-bench eval`: search quality on real data, one suite per use —
//! text → code (CoSQA, and docstring queries over real projects), issue →
//! function (SWE-bench Lite dev), code → code (a function's other release)
//! — each comparing the plain hybrid baseline with Quarry's mode, printed
//! as one Markdown table.

pub mod code_pairs;
pub mod cosqa;
pub mod docstrings;
pub mod metrics;
pub mod sources;
pub mod swebench;

use std::sync::Arc;

use quarry_models::rerank::Reranker;
use quarry_models::Embedder;
use quarry_search::{Mode, RerankStage, SearchError, SearchOutcome, SearchRequest, Weights};
use quarry_store::Store;

/// A second stage for a [`Config`]: the reranker and how many hits it reads.
#[derive(Clone)]
pub struct EvalRerank {
    pub reranker: Arc<dyn Reranker>,
    pub depth: usize,
}

impl std::fmt::Debug for EvalRerank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvalRerank")
            .field("reranker", &self.reranker.name())
            .field("depth", &self.depth)
            .finish()
    }
}

/// A way of searching, evaluated side by side with the others.
#[derive(Debug, Clone)]
pub struct Config {
    /// Shown in the table.
    pub name: String,
    /// How queries are read.
    pub mode: Mode,
    /// `None`: the mode's defaults.
    pub weights: Option<Weights>,
    /// A second stage, if any.
    pub rerank: Option<EvalRerank>,
}

impl Config {
    /// The plain hybrid of the vertical slice: the query as text, dense and
    /// BM25 rankings fused with equal weight, no boosts. Every mode must
    /// beat it.
    pub fn baseline() -> Self {
        Config {
            name: "baseline: plain hybrid (equal-weight RRF)".into(),
            mode: Mode::Text,
            weights: Some(Weights::plain_hybrid()),
            rerank: None,
        }
    }

    /// Quarry's `mode` with its default weights.
    pub fn mode(mode: Mode) -> Self {
        Config {
            name: format!("Quarry {} mode", mode.as_str()),
            mode,
            weights: None,
            rerank: None,
        }
    }

    /// The baseline and the mode: what every suite reports.
    pub fn pair(mode: Mode) -> Vec<Config> {
        vec![Config::baseline(), Config::mode(mode)]
    }

    /// Runs `query` for `top_k` hits under this config.
    pub async fn search(
        &self,
        store: &Store,
        embedder: &Embedder,
        query: &str,
        top_k: usize,
    ) -> Result<SearchOutcome, SearchError> {
        let stage = self.rerank.as_ref().map(|r| RerankStage {
            reranker: r.reranker.as_ref(),
            depth: r.depth,
        });
        quarry_search::search_reranked(store, embedder, &self.request(query, top_k), stage).await
    }

    /// A request for `query` returning `top_k` hits.
    pub fn request(&self, query: &str, top_k: usize) -> SearchRequest {
        let mut request = SearchRequest::new(query);
        request.mode = self.mode;
        request.weights = self.weights;
        request.top_k = top_k;
        request
    }
}

/// One line of the results table: a suite's metrics under one config.
#[derive(Debug, Clone)]
pub struct Row {
    /// The data set, e.g. "CoSQA dev-500".
    pub suite: String,
    /// [`Config::name`].
    pub config: String,
    /// Metric name and value (0–1, printed as a percentage).
    pub metrics: Vec<(String, f64)>,
}

/// Prints rows as Markdown tables, one per suite (suites differ in metrics).
pub fn print_rows(rows: &[Row]) {
    let mut suites: Vec<&str> = Vec::new();
    for row in rows {
        if !suites.contains(&row.suite.as_str()) {
            suites.push(&row.suite);
        }
    }
    for suite in suites {
        let of_suite: Vec<&Row> = rows.iter().filter(|r| r.suite == suite).collect();
        let names: Vec<&str> = of_suite[0]
            .metrics
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        println!("\n**{suite}**\n");
        println!("| config | {} |", names.join(" | "));
        println!("|---|{}", "---|".repeat(names.len()));
        for row in of_suite {
            let values: Vec<String> = row
                .metrics
                .iter()
                .map(|(_, v)| format!("{:.1}", v * 100.0))
                .collect();
            println!("| {} | {} |", row.config, values.join(" | "));
        }
    }
}
