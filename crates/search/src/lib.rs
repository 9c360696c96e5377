//! Query modes, hybrid retrieval and fusion.
//!
//! A query is analysed (mode, identifiers, paths, traceback frames), then
//! three candidate lists are gathered — dense vectors, BM25 full text, and
//! exact symbol lookups for identifiers the query names — and fused with
//! weighted reciprocal rank fusion. The weights differ per mode because the
//! evidence differs: for prose queries the dense side is stronger, for
//! pasted issues the lexical side is (see README, "Search").

pub mod query;
mod tuning;

use std::collections::HashMap;

use globset::{Glob, GlobSet, GlobSetBuilder};
use quarry_models::rerank::{RerankInput, RerankTask, Reranker};
use quarry_models::Embedder;
use quarry_store::{SearchFilter, Store, StoredChunk};

pub use query::{analyse, detect_mode, Mode, QueryAnalysis};
pub use tuning::{Tuning, WeightsPatch};

/// RRF's rank offset: the classic 60, which keeps one list's top rank from
/// drowning the others.
const RRF_K: f32 = 60.0;
/// Longest query text that is embedded (the model truncates at its window).
const MAX_EMBEDDED_BYTES: usize = 8 * 1024;
/// Text mode's BM25 weight for prose and for queries naming identifiers.
/// On CoSQA dev-500 and the docstring set (README, "Search quality") prose
/// is best served with BM25 at 0.1 (0.15 and more cost MRR); a named
/// identifier is what BM25 matches exactly, so such queries give it more.
const TEXT_LEXICAL: f32 = 0.1;
const TEXT_LEXICAL_NAMED: f32 = 0.5;
/// Issue mode's test-file factor and file-evidence share (see [`Weights`]).
/// On SWE-bench Lite dev (snapshots that predate each issue; README,
/// "Search quality"), ranking tests down ×0.6 lost nothing and lifted file
/// Acc@3 by an instance (×0.8 changed nothing); sharing 0.3 of the file's
/// evidence cost three instances at file Acc@1, so it stays off.
const ISSUE_TESTS: f32 = 0.6;
const ISSUE_FILE: f32 = 0.0;
/// How many of a file's best chunks make up its evidence.
const FILE_EVIDENCE_CHUNKS: usize = 3;
/// A long issue is embedded in parts of about this many bytes (the model
/// sees ~256 tokens of each), at most [`ISSUE_PARTS`] parts.
const SEGMENT_BYTES: usize = 1200;
const ISSUE_PARTS: usize = 6;
/// Candidates each retriever returns at least (more when more hits are
/// asked for): deep enough that fusion can lift a chunk one side ranks low.
const CANDIDATES: usize = 50;
/// Code mode's preference for the snippet's own language: a tie-breaker.
/// Snippets are also pasted to find their port in another language (the
/// e2e fixture's Python → Rust look-alikes): on those, 0.1 already cost a
/// first rank and 0.2 a top-5 hit, while 0.05 changed none.
const CODE_LANGUAGE: f32 = 0.05;
/// A hint ("in the parser", "rust") counts this share of an explicit path.
const HINT_SHARE: f32 = 0.5;
/// Shortest snippet (bytes without whitespace) that labels the chunks
/// containing it: shorter ones (`x = 1`) are everywhere.
const MIN_CONTAINED_SNIPPET: usize = 40;

/// Errors a search can end with.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// Nothing to search for.
    #[error("the query is empty; describe behaviour, paste code, or paste an issue")]
    EmptyQuery,
    /// A `--path` glob is malformed.
    #[error("invalid path glob `{glob}`: {reason}")]
    BadGlob { glob: String, reason: String },
    /// `--repo` matches no indexed root.
    #[error("no indexed repository matches `{0}`; `quarry status` lists them")]
    UnknownRepo(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] quarry_store::StoreError),
    /// The model failed.
    #[error(transparent)]
    Model(#[from] quarry_models::ModelError),
}

/// A search as the user asked for it.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// The query text: words, a snippet or an issue.
    pub query: String,
    /// How to read it.
    pub mode: Mode,
    /// Hits to return.
    pub top_k: usize,
    /// Only these languages (empty: all).
    pub languages: Vec<String>,
    /// Only paths (relative to their root) matching one of these globs.
    pub path_globs: Vec<String>,
    /// Only these repositories: a root path, or its last component(s).
    pub repos: Vec<String>,
    /// Evidence weights for every mode; `None` uses [`Self::tuning`].
    pub weights: Option<Weights>,
    /// The user's overrides of each mode's default weights.
    pub tuning: Tuning,
}

impl SearchRequest {
    /// A request with defaults: auto mode, 10 hits, no filters.
    pub fn new(query: impl Into<String>) -> Self {
        Self {
            query: query.into(),
            mode: Mode::Auto,
            top_k: 10,
            languages: Vec::new(),
            path_globs: Vec::new(),
            repos: Vec::new(),
            weights: None,
            tuning: Tuning::default(),
        }
    }
}

/// One result. Serialised as the stable `--json` hit object.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    /// Path relative to the indexed root.
    pub path: String,
    /// The indexed root (absolute).
    pub root: String,
    /// Qualified symbol.
    pub symbol: String,
    /// Chunk kind.
    pub kind: String,
    /// Language.
    pub language: String,
    /// First line, 1-based inclusive.
    pub start_line: u32,
    /// Last line, 1-based inclusive.
    pub end_line: u32,
    /// Fused relevance score (higher is better; comparable within one search).
    pub score: f32,
    /// The chunk's source text.
    pub text: String,
    /// In code mode, when this chunk is the pasted snippet itself (ranked
    /// first) or contains it: the user's own code, labelled as such rather
    /// than passed off as a look-alike.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet_match: Option<SnippetMatch>,
}

/// How a hit relates to a pasted snippet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SnippetMatch {
    /// The chunk is the snippet (ignoring whitespace).
    Exact,
    /// The chunk contains the whole snippet (ignoring whitespace).
    Contains,
}

/// A finished search.
#[derive(Debug, Clone)]
pub struct SearchOutcome {
    /// The mode used (auto resolved).
    pub mode: Mode,
    /// Hits, best first.
    pub hits: Vec<Hit>,
    /// The query analysis, for highlighting matched identifiers.
    pub analysis: QueryAnalysis,
    /// Chunks still waiting for their vectors (indexing in progress or
    /// interrupted): they are found by text, not yet by meaning.
    pub pending_chunks: usize,
    /// Where the time went.
    pub timings: Timings,
}

/// Milliseconds spent per stage of one search. The store's queries run
/// concurrently, so the stages add up to more than `total_ms`.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Timings {
    /// Embedding the query with the model.
    pub embed_ms: f64,
    /// The vector query (after embedding).
    pub dense_ms: f64,
    /// The BM25 full-text query.
    pub lexical_ms: f64,
    /// Looking up the symbols the query names.
    pub symbols_ms: f64,
    /// Counting chunks still waiting for vectors.
    pub pending_ms: f64,
    /// Fusion, boosts and formatting the hits.
    pub fuse_ms: f64,
    /// The second stage (0 without one).
    pub rerank_ms: f64,
    /// How many hits the second stage scored.
    pub reranked: usize,
    /// The whole search, wall clock.
    pub total_ms: f64,
}

/// Runs `future`, adding its wall-clock milliseconds to `into`.
async fn timed<T>(into: &mut f64, future: impl std::future::Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let out = future.await;
    *into += started.elapsed().as_secs_f64() * 1000.0;
    out
}

/// How much each kind of evidence counts. Every mode has its own defaults
/// ([`Weights::for_mode`]); evaluations override them to compare
/// configurations on one index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// Weight of the dense (vector) ranking in the fusion.
    pub dense: f32,
    /// Weight of the BM25 (full-text) ranking in the fusion.
    pub lexical: f32,
    /// Weight of the BM25 ranking instead, when the query names
    /// identifiers (`parse_config`, `Store.open`): the full-text side finds
    /// those exactly, where for plain prose the dense side is stronger.
    pub lexical_named: f32,
    /// Added for a chunk that defines an identifier the query names.
    pub defines: f32,
    /// Added for a chunk in a file the query names.
    pub in_path: f32,
    /// Added, per named identifier up to three, for a chunk whose code uses it.
    pub uses: f32,
    /// Added for a chunk that is a traceback frame's function.
    pub frame: f32,
    /// Multiplies the score of a chunk in a test file when the query is not
    /// about tests (1 keeps tests level with the code they test).
    pub tests: f32,
    /// Share of its file's evidence a chunk gets on top of its own (the sum
    /// of the file's best chunk scores): an issue usually concerns one or
    /// two files, and the functions of a file that matches it as a whole
    /// rank above look-alikes scattered elsewhere.
    pub file: f32,
    /// Added for a chunk in the language the query names ("in rust") or,
    /// in code mode, the snippet's language.
    pub language: f32,
    /// Candidates each retriever returns at least.
    pub candidates: usize,
    /// A long query is embedded in up to this many parts (1: its opening
    /// only), whose rankings share the dense weight.
    pub parts: usize,
}

impl Weights {
    /// The defaults for `mode`.
    pub fn for_mode(mode: Mode) -> Self {
        weights(mode)
    }

    /// Only the dense ranking (no BM25, no boosts).
    pub fn dense_only() -> Self {
        Self {
            dense: 1.0,
            lexical: 0.0,
            lexical_named: 0.0,
            defines: 0.0,
            in_path: 0.0,
            uses: 0.0,
            frame: 0.0,
            tests: 1.0,
            file: 0.0,
            language: 0.0,
            candidates: CANDIDATES,
            parts: 1,
        }
    }

    /// Dense and BM25 rankings with equal weight and no boosts: the plain
    /// hybrid every mode is measured against.
    pub fn plain_hybrid() -> Self {
        Self {
            dense: 1.0,
            lexical: 1.0,
            lexical_named: 1.0,
            ..Self::dense_only()
        }
    }

    /// Only the BM25 ranking (no vectors, no boosts).
    pub fn lexical_only() -> Self {
        Self {
            dense: 0.0,
            lexical: 1.0,
            lexical_named: 1.0,
            ..Self::dense_only()
        }
    }
}

fn weights(mode: Mode) -> Weights {
    match mode {
        // CoSQA dev-500 (README): dense alone 52.0 MRR, BM25 alone 30.0, and
        // every BM25 weight above ~0.1 pulls the fusion below dense alone;
        // BM25 stays in with a small weight for exact words and names.
        Mode::Text | Mode::Auto => Weights {
            dense: 1.0,
            lexical: TEXT_LEXICAL,
            lexical_named: TEXT_LEXICAL_NAMED,
            defines: 1.0,
            in_path: 0.3,
            uses: 0.15,
            frame: 1.0,
            tests: 1.0,
            file: 0.0,
            language: 0.5,
            candidates: CANDIDATES,
            parts: 1,
        },
        Mode::Code => Weights {
            dense: 0.7,
            lexical: 1.0,
            lexical_named: 1.0,
            defines: 0.5,
            in_path: 0.3,
            uses: 0.1,
            frame: 0.5,
            tests: 1.0,
            file: 0.0,
            language: CODE_LANGUAGE,
            candidates: CANDIDATES,
            parts: 1,
        },
        Mode::Issue => Weights {
            dense: 0.4,
            lexical: 1.0,
            lexical_named: 1.0,
            defines: 0.8,
            in_path: 0.6,
            uses: 0.2,
            frame: 1.5,
            tests: ISSUE_TESTS,
            file: ISSUE_FILE,
            language: 0.3,
            candidates: CANDIDATES,
            parts: ISSUE_PARTS,
        },
    }
}

/// A second stage for [`search_reranked`]: the model, and how many of the
/// first stage's best hits it reads (the others keep their order below).
#[derive(Clone, Copy)]
pub struct RerankStage<'a> {
    pub reranker: &'a dyn Reranker,
    pub depth: usize,
}

/// Runs a search (first stage only).
pub async fn search(
    store: &Store,
    embedder: &Embedder,
    request: &SearchRequest,
) -> Result<SearchOutcome, SearchError> {
    search_reranked(store, embedder, request, None).await
}

/// Runs a search; with a `stage`, its reranker re-scores the first
/// stage's best `depth` hits and decides their order (the pasted snippet's
/// own chunk staying first); hits below them keep the first stage's order.
pub async fn search_reranked(
    store: &Store,
    embedder: &Embedder,
    request: &SearchRequest,
    stage: Option<RerankStage<'_>>,
) -> Result<SearchOutcome, SearchError> {
    if request.query.trim().is_empty() {
        return Err(SearchError::EmptyQuery);
    }
    let started = std::time::Instant::now();
    let mut timings = Timings::default();
    let analysis = analyse(&request.query, request.mode);
    let filter = SearchFilter {
        languages: request.languages.clone(),
        roots: resolve_repos(store, &request.repos).await?,
    };
    let globs = build_globs(&request.path_globs)?;
    let top_k = request.top_k.max(1);
    // Path globs filter after retrieval, so fetch more to keep recall.
    let w = request
        .weights
        .unwrap_or_else(|| request.tuning.weights(analysis.mode));
    let depth = (top_k * 5).max(w.candidates.max(1)) * if globs.is_some() { 4 } else { 1 };

    // A long issue is embedded in parts, so the model (which sees ~256
    // tokens) reads all of it, not just its opening.
    let embedded: Vec<String> = if w.parts > 1 {
        query::segments(&request.query, SEGMENT_BYTES, w.parts)
    } else {
        vec![embedding_text(&request.query, &analysis).into_owned()]
    };
    let lexical_query = analysis.terms.join(" ");
    let mut lookup_names: Vec<String> = analysis.boost_names.iter().take(16).cloned().collect();
    lookup_names.extend(analysis.frames.iter().filter_map(|f| f.function.clone()));
    lookup_names.sort();
    lookup_names.dedup();
    // The store's queries run concurrently, and are started before the
    // query is embedded, so their I/O overlaps the model's compute.
    let Timings {
        embed_ms,
        dense_ms,
        lexical_ms,
        symbols_ms,
        pending_ms,
        ..
    } = &mut timings;
    let (lexical, defined, pending_chunks, dense) = futures::try_join!(
        timed(lexical_ms, async {
            Ok::<_, SearchError>(store.text_search(&lexical_query, depth, &filter).await?)
        }),
        timed(symbols_ms, async {
            Ok(store.symbol_lookup(&lookup_names, depth, &filter).await?)
        }),
        timed(pending_ms, async { Ok(store.pending_chunks(None).await?) }),
        async {
            let texts: Vec<&str> = embedded.iter().map(String::as_str).collect();
            let vectors = timed(embed_ms, async { embedder.embed_queries(&texts) }).await?;
            timed(dense_ms, async {
                let searches = vectors
                    .iter()
                    .map(|vector| store.vector_search(vector, depth, &filter));
                Ok(futures::future::try_join_all(searches).await?)
            })
            .await
        },
    )?;
    let fusing = std::time::Instant::now();

    let mut fused: HashMap<String, (StoredChunk, f32)> = HashMap::new();
    let mut add = |chunk: &StoredChunk, score: f32| {
        fused
            .entry(chunk.id.clone())
            .or_insert_with(|| (chunk.clone(), 0.0))
            .1 += score;
    };
    // The parts' rankings share the dense weight: a chunk near every part
    // counts as much as the top of a single ranking.
    let parts = dense.len().max(1) as f32;
    for ranking in &dense {
        for (rank, (chunk, _)) in ranking.iter().enumerate() {
            add(chunk, w.dense / parts / (RRF_K + rank as f32 + 1.0));
        }
    }
    let lexical_weight = if analysis.identifiers.is_empty() {
        w.lexical
    } else {
        w.lexical_named
    };
    for (rank, (chunk, _)) in lexical.iter().enumerate() {
        add(chunk, lexical_weight / (RRF_K + rank as f32 + 1.0));
    }
    for chunk in &defined {
        add(chunk, 0.0);
    }

    let top = 1.0 / (RRF_K + 1.0);
    let boost_names: Vec<String> = analysis
        .boost_names
        .iter()
        .map(|i| i.to_lowercase())
        .collect();
    let mut hits: Vec<(StoredChunk, f32)> = fused
        .into_values()
        .filter(|(chunk, _)| globs.as_ref().is_none_or(|g| g.is_match(&chunk.path)))
        .map(|(chunk, mut score)| {
            let name = last_component(&chunk.symbol).to_lowercase();
            if !name.is_empty() && boost_names.contains(&name) {
                score += w.defines * top;
            }
            let used = analysis
                .boost_names
                .iter()
                .filter(|ident| mentions(&chunk.text, ident))
                .count()
                .min(3);
            score += w.uses * top * used as f32;
            if analysis.paths.iter().any(|p| path_matches(&chunk.path, p)) {
                score += w.in_path * top;
            } else if analysis
                .path_hints
                .iter()
                .any(|hint| path_has_word(&chunk.path, hint))
            {
                score += HINT_SHARE * w.in_path * top;
            }
            if analysis.languages.contains(&chunk.language) {
                score += w.language * top;
            }
            score += w.frame * top * frame_evidence(&chunk, &name, &analysis.frames);
            score *= kind_prior(&chunk.kind);
            if !analysis.about_tests && is_test_path(&chunk.path) {
                score *= w.tests;
            }
            (chunk, score)
        })
        .filter(|(_, score)| *score > 0.0)
        .collect();
    if w.file > 0.0 {
        add_file_evidence(&mut hits, w.file);
    }
    // The pasted snippet's own chunk comes first, at the best score, so the
    // hits stay sorted by score for those who read only that.
    let snippet = (analysis.mode == Mode::Code).then(|| without_whitespace(&request.query));
    let best = hits.iter().map(|(_, score)| *score).fold(0.0, f32::max);
    let mut hits: Vec<(StoredChunk, f32, Option<SnippetMatch>)> = hits
        .into_iter()
        .map(|(chunk, score)| {
            let matched = snippet
                .as_deref()
                .and_then(|snippet| snippet_match(snippet, &chunk.text));
            let score = if matched == Some(SnippetMatch::Exact) {
                best
            } else {
                score
            };
            (chunk, score, matched)
        })
        .collect();
    hits.sort_by(|a, b| {
        (b.2 == Some(SnippetMatch::Exact))
            .cmp(&(a.2 == Some(SnippetMatch::Exact)))
            .then_with(|| b.1.total_cmp(&a.1))
            .then_with(|| a.0.path.cmp(&b.0.path))
            .then_with(|| a.0.start_line.cmp(&b.0.start_line))
    });
    // Windows of one long function share its symbol: show it once, at its
    // best window.
    let mut seen = std::collections::HashSet::new();
    hits.retain(|(c, _, _)| {
        seen.insert((
            c.root.clone(),
            c.path.clone(),
            c.kind.clone(),
            c.symbol.clone(),
        ))
    });
    timings.fuse_ms = fusing.elapsed().as_secs_f64() * 1000.0;
    if let Some(stage) = stage {
        let reranking = std::time::Instant::now();
        hits.truncate(top_k.max(stage.depth));
        timings.reranked = rerank_head(
            &mut hits,
            stage.depth,
            stage.reranker,
            analysis.mode,
            &request.query,
        )?;
        timings.rerank_ms = reranking.elapsed().as_secs_f64() * 1000.0;
    }
    hits.truncate(top_k);
    timings.total_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(SearchOutcome {
        pending_chunks,
        timings,
        mode: analysis.mode,
        hits: hits
            .into_iter()
            .map(|(c, score, snippet_match)| Hit {
                path: c.path,
                root: c.root,
                symbol: c.symbol,
                kind: c.kind,
                language: c.language,
                start_line: c.start_line,
                end_line: c.end_line,
                score,
                text: c.text,
                snippet_match,
            })
            .collect(),
        analysis,
    })
}

/// Reranks the best `depth` hits; the others keep the first stage's order
/// below them (their scores moved under the head's lowest, so the list
/// stays sorted by score). Returns how many were reranked.
fn rerank_head(
    hits: &mut [(StoredChunk, f32, Option<SnippetMatch>)],
    depth: usize,
    reranker: &dyn Reranker,
    mode: Mode,
    query: &str,
) -> Result<usize, SearchError> {
    let depth = depth.clamp(1, hits.len().max(1)).min(hits.len());
    let (head, tail) = hits.split_at_mut(depth);
    rerank(head, reranker, mode, query)?;
    let floor = head
        .iter()
        .map(|(_, score, _)| *score)
        .fold(f32::INFINITY, f32::min);
    let step = floor.abs().max(1.0) * 1e-3;
    for (i, (_, score, _)) in tail.iter_mut().enumerate() {
        *score = floor - step * (i as f32 + 1.0);
    }
    Ok(depth)
}

/// Re-scores `hits` with `reranker` and sorts them by its scores, the
/// snippet's own chunk first (at the best score, so hits stay sorted).
fn rerank(
    hits: &mut [(StoredChunk, f32, Option<SnippetMatch>)],
    reranker: &dyn Reranker,
    mode: Mode,
    query: &str,
) -> Result<(), SearchError> {
    if hits.is_empty() {
        return Ok(());
    }
    let task = match mode {
        Mode::Code => RerankTask::CodeToCode,
        Mode::Issue => RerankTask::IssueToCode,
        Mode::Text | Mode::Auto => RerankTask::TextToCode,
    };
    let documents: Vec<&str> = hits.iter().map(|(c, _, _)| c.text.as_str()).collect();
    let first_stage: Vec<f32> = hits.iter().map(|(_, score, _)| *score).collect();
    let scores = reranker.rerank(&RerankInput {
        task,
        query: query::truncate(query, MAX_EMBEDDED_BYTES),
        documents: &documents,
        first_stage: &first_stage,
    })?;
    if scores.len() != hits.len() {
        return Err(SearchError::Model(quarry_models::ModelError::Rerank(
            format!(
                "{} returned {} scores for {} candidates",
                reranker.name(),
                scores.len(),
                hits.len()
            ),
        )));
    }
    let best = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for ((_, score, matched), new) in hits.iter_mut().zip(scores) {
        *score = if *matched == Some(SnippetMatch::Exact) {
            best
        } else {
            new
        };
    }
    // Stable: equal scores keep the first stage's order.
    hits.sort_by(|a, b| {
        (b.2 == Some(SnippetMatch::Exact))
            .cmp(&(a.2 == Some(SnippetMatch::Exact)))
            .then_with(|| b.1.total_cmp(&a.1))
    });
    Ok(())
}

/// Adds to each chunk `share` of its file's evidence: the sum of the
/// file's [`FILE_EVIDENCE_CHUNKS`] best chunk scores.
fn add_file_evidence(hits: &mut [(StoredChunk, f32)], share: f32) {
    let mut by_file: HashMap<(&str, &str), Vec<f32>> = HashMap::new();
    for (chunk, score) in hits.iter() {
        by_file
            .entry((chunk.root.as_str(), chunk.path.as_str()))
            .or_default()
            .push(*score);
    }
    let sums: HashMap<(&str, &str), f32> = by_file
        .into_iter()
        .map(|(file, mut scores)| {
            scores.sort_by(|a, b| b.total_cmp(a));
            (file, scores.iter().take(FILE_EVIDENCE_CHUNKS).sum())
        })
        .collect();
    // Looked up before any score changes, borrowing the hits' own strings.
    let evidence: Vec<f32> = hits
        .iter()
        .map(|(chunk, _)| sums[&(chunk.root.as_str(), chunk.path.as_str())])
        .collect();
    for ((_, score), file) in hits.iter_mut().zip(evidence) {
        *score += share * file;
    }
}

/// `text` without any whitespace: how a pasted snippet is compared with
/// the index, since pasting re-indents and re-wraps.
fn without_whitespace(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Whether `chunk_text` is the `snippet` (already without whitespace) or
/// contains it whole.
fn snippet_match(snippet: &str, chunk_text: &str) -> Option<SnippetMatch> {
    if snippet.is_empty() {
        return None;
    }
    let chunk = without_whitespace(chunk_text);
    if chunk == snippet {
        Some(SnippetMatch::Exact)
    } else if snippet.len() >= MIN_CONTAINED_SNIPPET && chunk.contains(snippet) {
        Some(SnippetMatch::Contains)
    } else {
        None
    }
}

/// Whether a component of `path` (split at `/`, `.`, `_`, `-`) is `word`,
/// or its singular or plural: the hint "in the parser" finds
/// `src/parser/mod.rs` and `parsers.py`.
fn path_has_word(path: &str, word: &str) -> bool {
    path.split(['/', '.', '_', '-']).any(|part| {
        let part = part.to_ascii_lowercase();
        part == word
            || part.strip_suffix('s') == Some(word)
            || word.strip_suffix('s') == Some(part.as_str())
    })
}

/// Whether `path` is test code by the conventions of the languages Quarry
/// reads: a `test`/`tests`/`testing`/`__tests__`/`spec` directory, or a
/// file named `test_*`, `*_test.*`, `*_tests.*`, `*.test.*`, `*.spec.*`,
/// `*Test.java`/`*Tests.java`, `*_spec.rb` or `conftest.py`.
fn is_test_path(path: &str) -> bool {
    let mut components: Vec<&str> = path.split('/').collect();
    let file = components.pop().unwrap_or_default();
    if components.iter().any(|c| {
        matches!(
            c.to_ascii_lowercase().as_str(),
            "test" | "tests" | "testing" | "__tests__" | "spec" | "specs"
        )
    }) {
        return true;
    }
    let stem = file.split('.').next().unwrap_or(file);
    let lower = stem.to_ascii_lowercase();
    file == "conftest.py"
        || lower.starts_with("test_")
        || lower.ends_with("_test")
        || lower.ends_with("_tests")
        || lower.ends_with("_spec")
        || file.contains(".test.")
        || file.contains(".spec.")
        || (file.ends_with(".java") && (stem.ends_with("Test") || stem.ends_with("Tests")))
}

/// How strongly traceback frames point at `chunk` (0 to 1). Python lists
/// the innermost frame last, and it is the likeliest place of the bug, so
/// later frames weigh more; a frame's line inside the chunk is the
/// strongest evidence, a matching function name in the same file next.
fn frame_evidence(chunk: &StoredChunk, name: &str, frames: &[query::Frame]) -> f32 {
    let n = frames.len() as f32;
    frames
        .iter()
        .enumerate()
        .filter(|(_, f)| path_matches(&chunk.path, &f.path))
        .map(|(i, f)| {
            let position = 0.5 + 0.5 * (i as f32 + 1.0) / n;
            let in_lines = f
                .line
                .is_some_and(|line| (chunk.start_line..=chunk.end_line).contains(&line));
            let named = f
                .function
                .as_deref()
                .is_some_and(|func| func.eq_ignore_ascii_case(name));
            if in_lines && named {
                position
            } else if in_lines || named {
                0.7 * position
            } else {
                0.0
            }
        })
        .fold(0.0, f32::max)
}

/// Functions and methods are what users look for; a class or module chunk
/// that merely contains the right function should rank below it.
fn kind_prior(kind: &str) -> f32 {
    match kind {
        "function" | "method" => 1.0,
        "window" => 0.9,
        "class" | "struct" | "enum" | "trait" | "interface" | "impl" => 0.85,
        "module" => 0.75,
        _ => 0.9,
    }
}

/// The text to embed: the query itself, with identifiers split into words so
/// a general-purpose model sees `parse config` for `parse_config`.
fn embedding_text<'a>(query: &'a str, analysis: &QueryAnalysis) -> std::borrow::Cow<'a, str> {
    let query = query::truncate(query, MAX_EMBEDDED_BYTES);
    if analysis.mode != Mode::Text || analysis.identifiers.is_empty() {
        return query.into();
    }
    let words: Vec<String> = analysis
        .identifiers
        .iter()
        .map(|i| query::split_identifier(i).join(" "))
        .collect();
    format!("{query} ({})", words.join(", ")).into()
}

/// Does `text` contain `ident` as a whole identifier (not inside a longer one)?
fn mentions(text: &str, ident: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(ident).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + ident.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

fn last_component(symbol: &str) -> &str {
    symbol.rsplit(['.', ':']).next().unwrap_or(symbol)
}

/// Does the stored relative `path` refer to `mentioned` (which may be
/// absolute, relative, or just a file name)?
fn path_matches(path: &str, mentioned: &str) -> bool {
    let mentioned = mentioned.replace('\\', "/");
    let mentioned = mentioned.trim_start_matches("./");
    if mentioned.is_empty() {
        return false;
    }
    path == mentioned
        || mentioned.ends_with(&format!("/{path}"))
        || path.ends_with(&format!("/{mentioned}"))
}

fn build_globs(globs: &[String]) -> Result<Option<GlobSet>, SearchError> {
    if globs.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        // A glob without a slash matches at any depth, as in .gitignore.
        let pattern = if glob.contains('/') {
            glob.clone()
        } else {
            format!("**/{glob}")
        };
        builder.add(Glob::new(&pattern).map_err(|e| SearchError::BadGlob {
            glob: glob.clone(),
            reason: e.to_string(),
        })?);
    }
    builder.build().map(Some).map_err(|e| SearchError::BadGlob {
        glob: globs.join(", "),
        reason: e.to_string(),
    })
}

async fn resolve_repos(store: &Store, repos: &[String]) -> Result<Vec<String>, SearchError> {
    if repos.is_empty() {
        return Ok(Vec::new());
    }
    let roots = store.roots().await?;
    let mut out = Vec::new();
    for repo in repos {
        let canonical = std::fs::canonicalize(repo)
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
        let trimmed = repo.trim_end_matches('/');
        let matched: Vec<&String> = roots
            .iter()
            .filter(|root| {
                Some(root.as_str()) == canonical.as_deref()
                    || root.as_str() == trimmed
                    || root.ends_with(&format!("/{trimmed}"))
            })
            .collect();
        if matched.is_empty() {
            return Err(SearchError::UnknownRepo(repo.clone()));
        }
        out.extend(matched.into_iter().cloned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_by_suffix() {
        assert!(path_matches("src/config.rs", "src/config.rs"));
        assert!(path_matches("src/config.rs", "/home/u/proj/src/config.rs"));
        assert!(path_matches("app/config.py", "config.py"));
        assert!(!path_matches("app/myconfig.py", "config.py"));
        assert!(!path_matches("a.py", ""));
    }

    #[test]
    fn globs_match_at_any_depth_without_slash() {
        let set = build_globs(&["*.py".into()]).unwrap().unwrap();
        assert!(set.is_match("pkg/mod.py"));
        assert!(!set.is_match("src/lib.rs"));
        let set = build_globs(&["src/**".into()]).unwrap().unwrap();
        assert!(set.is_match("src/a/b.rs"));
        assert!(!set.is_match("tests/a.rs"));
        assert!(build_globs(&["[".into()]).is_err());
    }

    #[test]
    fn mentions_whole_identifiers_only() {
        assert!(mentions("let cfg = parse_config(p);", "parse_config"));
        assert!(!mentions("let cfg = parse_config_v2(p);", "parse_config"));
        assert!(!mentions("reparse_config()", "parse_config"));
        assert!(mentions("parse_config", "parse_config"));
    }

    #[test]
    fn test_code_is_recognised_by_directory_and_file_name() {
        for path in [
            "tests/test_api.py",
            "pkg/tests/helpers.py",
            "src/parser_test.go",
            "web/app.test.ts",
            "lib/__tests__/x.js",
            "conftest.py",
            "src/test/java/FooTest.java",
            "spec/models/user_spec.rb",
            "pkg/test_utils.py",
        ] {
            assert!(is_test_path(path), "{path}");
        }
        for path in [
            "src/testament.py",
            "pkg/contest.py",
            "src/latest/mod.rs",
            "attestation.go",
            "lib/protest_spec_helper_v2x.py",
        ] {
            assert!(!is_test_path(path), "{path}");
        }
    }

    #[test]
    fn chunks_of_a_file_share_its_evidence() {
        let chunk = |path: &str, symbol: &str| StoredChunk {
            id: format!("{path}:{symbol}"),
            root: "/r".into(),
            path: path.into(),
            language: "python".into(),
            kind: "function".into(),
            symbol: symbol.into(),
            start_line: 1,
            end_line: 2,
            content_hash: String::new(),
            text: String::new(),
        };
        let mut hits = vec![
            (chunk("a.py", "lone"), 1.0),
            (chunk("b.py", "x"), 0.9),
            (chunk("b.py", "y"), 0.8),
            (chunk("b.py", "z"), 0.1),
            (chunk("b.py", "w"), 0.05),
        ];
        add_file_evidence(&mut hits, 0.5);
        // b.py's evidence is its three best (1.8): x now outranks a.py's lone hit.
        assert!((hits[0].1 - 1.5).abs() < 1e-6);
        assert!((hits[1].1 - (0.9 + 0.9)).abs() < 1e-6);
        assert!((hits[4].1 - (0.05 + 0.9)).abs() < 1e-6);
    }

    #[test]
    fn last_component_of_symbols() {
        assert_eq!(last_component("Config::parse"), "parse");
        assert_eq!(last_component("Loader.load"), "load");
        assert_eq!(last_component("main"), "main");
    }

    #[test]
    fn a_pasted_snippet_is_recognised_despite_reindenting() {
        let chunk =
            "    def area(self):\n        width = max(self.w, 0)\n        return width * self.h\n";
        let pasted = without_whitespace(
            "def area(self):\n    width = max(self.w, 0)\n    return width * self.h",
        );
        assert_eq!(snippet_match(&pasted, chunk), Some(SnippetMatch::Exact));
        let class = format!("class Rect:\n    w = 1\n{chunk}");
        assert_eq!(snippet_match(&pasted, &class), Some(SnippetMatch::Contains));
        // A short fragment is everywhere: no label.
        assert_eq!(snippet_match("returnx", "def f(x):\n    return x\n"), None);
        assert_eq!(snippet_match("", chunk), None);
    }

    #[test]
    fn path_words_match_components_singular_or_plural() {
        assert!(path_has_word("src/parser/mod.rs", "parser"));
        assert!(path_has_word("lib/parsers.py", "parser"));
        assert!(path_has_word("pkg/http_client.go", "http"));
        assert!(path_has_word("src/plugin.rs", "plugins"));
        assert!(!path_has_word("src/parsers_util.rs", "pars"));
        assert!(!path_has_word("src/reparser.rs", "parser"));
    }

    /// Scores a document by its length: a reranker whose order is known.
    struct ByLength;

    impl Reranker for ByLength {
        fn name(&self) -> &str {
            "by-length"
        }
        fn rerank(&self, input: &RerankInput<'_>) -> Result<Vec<f32>, quarry_models::ModelError> {
            Ok(input.documents.iter().map(|d| d.len() as f32).collect())
        }
    }

    /// Returns one score too few.
    struct Short;

    impl Reranker for Short {
        fn name(&self) -> &str {
            "short"
        }
        fn rerank(&self, input: &RerankInput<'_>) -> Result<Vec<f32>, quarry_models::ModelError> {
            Ok(vec![0.0; input.documents.len() - 1])
        }
    }

    fn stored(text: &str) -> StoredChunk {
        StoredChunk {
            id: text.into(),
            root: "/r".into(),
            path: "a.py".into(),
            language: "python".into(),
            kind: "function".into(),
            symbol: text.into(),
            start_line: 1,
            end_line: 1,
            content_hash: String::new(),
            text: text.into(),
        }
    }

    #[test]
    fn the_second_stage_decides_the_order_but_the_snippet_stays_first() {
        let mut hits = vec![
            (stored("ab"), 0.9, None),
            (stored("abcdef"), 0.5, None),
            (stored("a"), 0.4, Some(SnippetMatch::Exact)),
            (stored("abcd"), 0.3, Some(SnippetMatch::Contains)),
        ];
        rerank(&mut hits, &ByLength, Mode::Code, "q").unwrap();
        let order: Vec<&str> = hits.iter().map(|(c, _, _)| c.text.as_str()).collect();
        assert_eq!(order, ["a", "abcdef", "abcd", "ab"]);
        let scores: Vec<f32> = hits.iter().map(|(_, s, _)| *s).collect();
        assert_eq!(scores, [6.0, 6.0, 4.0, 2.0]);
        let e = rerank(&mut hits, &Short, Mode::Text, "q").unwrap_err();
        assert!(e.to_string().contains("3 scores for 4"), "{e}");

        // Only the head is reranked; the tail keeps its order, below it.
        let mut hits = vec![
            (stored("ab"), 0.9, None),
            (stored("abcdef"), 0.5, None),
            (stored("abcdefgh"), 0.4, None),
            (stored("a"), 0.3, None),
        ];
        assert_eq!(
            rerank_head(&mut hits, 2, &ByLength, Mode::Text, "q").unwrap(),
            2
        );
        let order: Vec<&str> = hits.iter().map(|(c, _, _)| c.text.as_str()).collect();
        assert_eq!(order, ["abcdef", "ab", "abcdefgh", "a"]);
        assert!(hits.windows(2).all(|w| w[0].1 > w[1].1), "{hits:?}");
    }
}
