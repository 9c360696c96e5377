//! Text → code retrieval on real projects, CodeSearchNet-style: the query is
//! the first sentence of a function's docstring, the code base is the
//! project with that docstring taken out, the gold is the function.
//!
//! Functions are found with the real chunker (windows of a long function
//! merged back into one function). A function is a candidate when it has a
//! docstring (Python: the leading string-literal statement of the body;
//! Rust: the `///` lines and one-line `#[doc = "…"]` attributes above the
//! `fn`) whose cleaned first sentence ([`first_sentence`]) has at least
//! [`MIN_QUERY_WORDS`] words and is not boilerplate ([`is_usable_query`]).
//! Candidates are sorted by path and symbol and at most
//! [`MAX_QUERIES_PER_PROJECT`] per project are kept, evenly spaced
//! ([`spread_sample`]), so runs are reproducible. Only
//! the kept functions lose their docstring (a Python body left empty gets a
//! `pass`); the other functions keep theirs, as distractors.
//!
//! Each project's corpus (`work/corpus/<project>`) is indexed with the real
//! pipeline into its own index (`work/index/<project>`); corpus files are
//! rewritten only when their content changes, so a second run is quick.
//!
//! The helpers shared with [`super::code_pairs`] (source files, functions,
//! a small tokenizer, corpus writing, indexing, gold ranking) live here.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use anyhow::{Context, Result};
use quarry_chunk::{ApproxTokenCounter, ChunkConfig, ChunkKind};
use quarry_index::IndexOptions;
use quarry_models::Embedder;
use quarry_search::Hit;
use quarry_store::{IndexMeta, Store};
use regex::Regex;

use super::metrics::{Metrics, MRR_DEPTH};
use super::{Config, Row};

/// Well-documented projects at pinned versions, two per language.
const PROJECTS: [(&str, &str, Lang); 4] = [
    ("requests", "2.32.3", Lang::Python),
    ("click", "8.1.7", Lang::Python),
    ("regex-syntax", "0.8.5", Lang::Rust),
    ("serde_json", "1.0.128", Lang::Rust),
];

/// Cap per project, so one large project does not dominate the pooled score.
const MAX_QUERIES_PER_PROJECT: usize = 150;

/// Shorter first sentences ("Returns the value") say too little to search by.
const MIN_QUERY_WORDS: usize = 4;

/// First words of docstrings that describe no behaviour ("TODO", "See X",
/// "Alias for Y", "Deprecated …").
const BOILERPLATE_FIRST_WORDS: [&str; 6] = ["todo", "fixme", "xxx", "see", "alias", "deprecated"];

/// Runs the suite under each of `configs`: `work` holds the sources, corpora
/// and indexes between runs.
pub async fn run(work: &Path, embedder: &Embedder, configs: &[Config]) -> Result<Vec<Row>> {
    let mut projects = Vec::new();
    for (name, version, lang) in PROJECTS {
        let root = lang.fetch(work, name, version)?;
        let project = format!("{name}-{version}");
        let corpus = work.join("corpus").join(&project);
        let queries = build_queries(&project, &root, lang, &corpus)?;
        let store = index_corpus(work, &project, embedder, &corpus).await?;
        projects.push((project, store, queries));
    }
    let total: usize = projects.iter().map(|(_, _, q)| q.len()).sum();
    let mut rows = Vec::new();
    for config in configs {
        let mut pooled = Vec::with_capacity(total);
        for (project, store, queries) in &projects {
            let mut ranks = Vec::with_capacity(queries.len());
            for query in queries {
                ranks.push(rank_of(store, embedder, config, query).await?);
            }
            let m = Metrics::from_ranks(&ranks);
            eprintln!(
                "{}: {project}: {} queries, MRR@100 {:.1}, nDCG@10 {:.1}, R@1 {:.1}, R@10 {:.1}",
                config.name,
                ranks.len(),
                m.mrr * 100.0,
                m.ndcg10 * 100.0,
                m.recall1 * 100.0,
                m.recall10 * 100.0
            );
            pooled.extend(ranks);
        }
        let m = Metrics::from_ranks(&pooled);
        rows.push(Row {
            suite: format!(
                "Text → code: docstring queries, 2 Python + 2 Rust projects ({total} functions)"
            ),
            config: config.name.clone(),
            metrics: m.columns(),
        });
    }
    Ok(rows)
}

/// A function chosen as a query, before its docstring is taken out.
struct Candidate {
    path: String,
    symbol: String,
    query: String,
    docstring: Docstring,
}

/// Selects the functions of the project at `root`, writes the corpus with
/// their docstrings removed to `corpus`, and returns the queries with their
/// gold functions as they are in the corpus.
fn build_queries(project: &str, root: &Path, lang: Lang, corpus: &Path) -> Result<Vec<Query>> {
    let (files, skipped_files) = source_files(root, lang)?;
    let mut candidates = Vec::new();
    let (mut documented, mut unsupported) = (0, 0);
    for (path, source) in &files {
        for function in functions(path, source, lang) {
            match docstring(&function, lang) {
                DocParse::Absent => {}
                DocParse::Unsupported => unsupported += 1,
                DocParse::Found(docstring) => {
                    documented += 1;
                    let query = first_sentence(&docstring.text);
                    if is_usable_query(&query) {
                        candidates.push(Candidate {
                            path: path.clone(),
                            symbol: function.symbol,
                            query,
                            docstring,
                        });
                    }
                }
            }
        }
    }
    candidates.sort_by(|a, b| (&a.path, &a.symbol).cmp(&(&b.path, &b.symbol)));
    let usable = candidates.len();
    let chosen = spread_sample(candidates, MAX_QUERIES_PER_PROJECT);

    let mut removals: HashMap<&str, Vec<&Docstring>> = HashMap::new();
    for candidate in &chosen {
        removals
            .entry(candidate.path.as_str())
            .or_default()
            .push(&candidate.docstring);
    }
    let stripped: Vec<(String, String)> = files
        .iter()
        .map(|(path, source)| {
            let text = match removals.get(path.as_str()) {
                Some(docstrings) => remove_docstrings(source, docstrings),
                None => source.clone(),
            };
            (path.clone(), text)
        })
        .collect();
    write_corpus(corpus, &stripped)?;

    // The gold is the function as the index sees it: found again in the
    // stripped file, where it must no longer have a docstring.
    let by_path: HashMap<&str, &str> = stripped
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let mut functions_of: HashMap<&str, Vec<Function>> = HashMap::new();
    let mut queries = Vec::with_capacity(chosen.len());
    let mut lost = 0;
    for candidate in &chosen {
        let in_file = functions_of
            .entry(candidate.path.as_str())
            .or_insert_with(|| functions(&candidate.path, by_path[candidate.path.as_str()], lang));
        match in_file.iter().find(|f| f.symbol == candidate.symbol) {
            Some(function) if matches!(docstring(function, lang), DocParse::Absent) => queries
                .push(Query {
                    text: candidate.query.clone(),
                    gold: Gold::of(function),
                }),
            _ => lost += 1,
        }
    }
    eprintln!(
        "{project}: {} files ({skipped_files} skipped), {documented} documented functions \
         ({unsupported} odd docstrings skipped), {usable} usable, {} queries ({lost} lost after stripping)",
        files.len(),
        queries.len()
    );
    Ok(queries)
}

/// The language of a project, which decides how it is fetched and parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    Python,
    Rust,
}

impl Lang {
    /// The extension of the source files that make up the corpus.
    fn extension(self) -> &'static str {
        match self {
            Lang::Python => "py",
            Lang::Rust => "rs",
        }
    }

    /// The source tree of `name` at exactly `version`: a PyPI source
    /// distribution or a crate.
    pub(crate) fn fetch(self, work: &Path, name: &str, version: &str) -> Result<PathBuf> {
        match self {
            Lang::Python => super::sources::python_sdist(work, name, version),
            Lang::Rust => super::sources::rust_crate(work, name, version),
        }
    }
}

/// The source files of `lang` under `root` as (relative path with `/`,
/// text), sorted by path, and how many were left out: hidden paths (the
/// indexer skips them), files over the indexer's size limit, non-UTF-8 files,
/// and generated files (`DO NOT EDIT` or `@generated` in the first lines,
/// e.g. Unicode tables), which nobody searches by description.
pub(crate) fn source_files(root: &Path, lang: Lang) -> Result<(Vec<(String, String)>, usize)> {
    let mut files = Vec::new();
    let mut skipped = 0;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                skipped += 1;
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some(lang.extension()) {
                continue;
            }
            let too_big = std::fs::metadata(&path)
                .map(|m| m.len() > quarry_index::DEFAULT_MAX_FILE_SIZE)
                .unwrap_or(true);
            let text = match std::fs::read_to_string(&path) {
                Ok(text) if !too_big && !is_generated(&text) => text,
                _ => {
                    skipped += 1;
                    continue;
                }
            };
            let rel = path
                .strip_prefix(root)
                .with_context(|| format!("{} is outside {}", path.display(), root.display()))?;
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            files.push((rel.join("/"), text));
        }
    }
    files.sort();
    Ok((files, skipped))
}

/// Whether the file says it was generated by a tool.
fn is_generated(text: &str) -> bool {
    text.lines()
        .take(5)
        .any(|line| line.contains("DO NOT EDIT") || line.contains("@generated"))
}

/// Writes `files` (relative path, text) under `dir`, rewriting only files
/// whose content changed (so the incremental indexer skips the rest), and
/// deletes files that are no longer part of the corpus.
pub(crate) fn write_corpus(dir: &Path, files: &[(String, String)]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut wanted = HashSet::new();
    for (rel, text) in files {
        let path = dir.join(rel);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        wanted.insert(path);
    }
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(current) = dirs.pop() {
        let entries = std::fs::read_dir(&current)
            .with_context(|| format!("listing {}", current.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if !wanted.contains(&path) {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing stale {}", path.display()))?;
            }
        }
    }
    Ok(())
}

/// Opens (or creates) the index `work/index/<name>` and brings it up to
/// date with `corpus` through the real, incremental pipeline.
pub(crate) async fn index_corpus(
    work: &Path,
    name: &str,
    embedder: &Embedder,
    corpus: &Path,
) -> Result<Store> {
    let store = Store::open_or_create(
        &work.join("index").join(name),
        &IndexMeta::new(embedder.model_id(), embedder.dim()),
    )
    .await
    .with_context(|| format!("opening the index of {name}"))?;
    eprintln!("indexing {name} (incremental)");
    let report = quarry_index::index_root(
        &store,
        embedder,
        corpus,
        &IndexOptions::default(),
        &mut |_| {},
    )
    .await
    .with_context(|| format!("indexing {}", corpus.display()))?;
    eprintln!(
        "{name}: {} files, {} chunks, {} embedded this run in {:.0}s, {} paths skipped",
        report.files_scanned,
        report.chunks_total,
        report.chunks_embedded,
        report.seconds,
        report.skipped.len()
    );
    Ok(store)
}

/// A function or method as one unit: the chunker's windows of a long
/// function merged back together.
#[derive(Debug, Clone)]
pub(crate) struct Function {
    /// Path relative to the corpus root, with `/`.
    pub(crate) path: String,
    /// The chunker's qualified symbol (`Class.method`, `Type::method`).
    pub(crate) symbol: String,
    /// 1-based, including attached doc comments, attributes and decorators.
    pub(crate) start_line: u32,
    /// The line of the `def` / `fn` keyword.
    pub(crate) def_line: u32,
    /// The source lines `start_line..=end` joined with `\n`.
    pub(crate) text: String,
}

/// The functions and methods of one file as the real chunker finds them.
/// Symbols defined more than once in the file (property setters, one method
/// in two trait impls, `cfg` variants) are left out, since a hit could not
/// tell them apart; so are functions whose keyword line is not found.
pub(crate) fn functions(path: &str, source: &str, lang: Lang) -> Vec<Function> {
    let mut chunks: Vec<(String, u32, u32)> = quarry_chunk::chunk_source(
        Path::new(path),
        source,
        &ChunkConfig::default(),
        &ApproxTokenCounter,
    )
    .into_iter()
    .filter(|c| matches!(c.kind, ChunkKind::Function | ChunkKind::Method))
    .map(|c| (c.symbol, c.start_line, c.end_line))
    .collect();
    chunks.sort_by_key(|&(_, start, end)| (start, end));
    let mut spans: Vec<(String, u32, u32)> = Vec::new();
    for (symbol, start, end) in chunks {
        match spans.last_mut() {
            // Windows of one split function overlap.
            Some(last) if last.0 == symbol && start <= last.2 => last.2 = last.2.max(end),
            _ => spans.push((symbol, start, end)),
        }
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (symbol, _, _) in &spans {
        *counts.entry(symbol.as_str()).or_default() += 1;
    }
    let lines: Vec<&str> = source.lines().collect();
    let keyword = match lang {
        Lang::Python => "def",
        Lang::Rust => "fn",
    };
    spans
        .iter()
        .filter(|(symbol, _, _)| counts[symbol.as_str()] == 1)
        .filter_map(|(symbol, start, end)| {
            let text = lines
                .get((*start as usize).checked_sub(1)?..*end as usize)?
                .join("\n");
            let tokens = tokenize(&text, lang);
            let keyword_at = keyword_index(&tokens, keyword)?;
            let def_line = *start + line_of(&text, tokens[keyword_at].start);
            Some(Function {
                path: path.to_string(),
                symbol: symbol.clone(),
                start_line: *start,
                def_line,
                text,
            })
        })
        .collect()
}

/// 0-based line of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> u32 {
    text[..offset].bytes().filter(|&b| b == b'\n').count() as u32
}

/// `items` if there are at most `cap`, else `cap` of them evenly spaced
/// from the first (item `i * len / cap`): a deterministic sample spread over
/// the whole (sorted) list.
pub(crate) fn spread_sample<T>(items: Vec<T>, cap: usize) -> Vec<T> {
    let len = items.len();
    if len <= cap {
        return items;
    }
    let mut sample = Vec::with_capacity(cap);
    for (index, item) in items.into_iter().enumerate() {
        if sample.len() < cap && index == sample.len() * len / cap {
            sample.push(item);
        }
    }
    sample
}

/// A query and the function it should find.
pub(crate) struct Query {
    pub(crate) text: String,
    pub(crate) gold: Gold,
}

/// The function a query should find, as indexed.
#[derive(Debug, Clone)]
pub(crate) struct Gold {
    pub(crate) path: String,
    pub(crate) symbol: String,
    pub(crate) def_line: u32,
}

impl Gold {
    /// The gold for `function` of the indexed corpus.
    pub(crate) fn of(function: &Function) -> Self {
        Gold {
            path: function.path.clone(),
            symbol: function.symbol.clone(),
            def_line: function.def_line,
        }
    }

    /// A hit is the gold when it is the function (same path and symbol, any
    /// window of it) or a chunk of the same file containing its `def`/`fn`
    /// line (its small class or impl, say).
    fn matches(&self, hit: &Hit) -> bool {
        hit.path == self.path
            && (hit.symbol == self.symbol
                || (hit.start_line <= self.def_line && self.def_line <= hit.end_line))
    }
}

/// 1-based rank of the gold among the distinct (path, symbol) units of
/// `hits`, so the windows of one long function count once.
pub(crate) fn gold_rank(hits: &[Hit], gold: &Gold) -> Option<usize> {
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    for hit in hits {
        seen.insert((&hit.path, &hit.symbol));
        if gold.matches(hit) {
            return Some(seen.len());
        }
    }
    None
}

/// Searches `query` under `config` and ranks its gold in the top
/// [`MRR_DEPTH`].
pub(crate) async fn rank_of(
    store: &Store,
    embedder: &Embedder,
    config: &Config,
    query: &Query,
) -> Result<Option<usize>> {
    let outcome = config
        .search(store, embedder, &query.text, MRR_DEPTH)
        .await
        .with_context(|| format!("searching {:?}", query.text))?;
    Ok(gold_rank(&outcome.hits, &query.gold))
}

/// A docstring found in a function, and how to take it out of the file.
#[derive(Debug, Clone, PartialEq)]
struct Docstring {
    /// The documentation: the string's contents, or the doc comment lines
    /// without their markers.
    text: String,
    /// File lines (1-based) to delete.
    lines: Vec<u32>,
    /// What replaces the first deleted line when the body would otherwise be
    /// empty: `pass` at the docstring's indentation.
    filler: Option<String>,
}

/// What looking for a function's docstring found.
#[derive(Debug, PartialEq)]
enum DocParse {
    Absent,
    Found(Docstring),
    /// A form this harness does not take apart (a docstring on the `def`
    /// line, string concatenation, `/** */`, a multi-line `#[doc]`): skipped
    /// and counted.
    Unsupported,
}

/// The docstring of `function`.
fn docstring(function: &Function, lang: Lang) -> DocParse {
    match lang {
        Lang::Python => python_docstring(function),
        Lang::Rust => rust_doc_comment(function),
    }
}

/// The leading string-literal statement of a Python function's body.
fn python_docstring(function: &Function) -> DocParse {
    let text = &function.text;
    let tokens = tokenize(text, Lang::Python);
    let Some(header_end) = python_header_end(&tokens) else {
        return DocParse::Unsupported;
    };
    let mut at = skip(
        &tokens,
        header_end + 1,
        &[TokenKind::Space, TokenKind::Comment],
    );
    match tokens.get(at) {
        Some(t) if t.kind == TokenKind::Newline => {}
        // The body is on the `def` line.
        Some(t) if t.kind == TokenKind::Str => return DocParse::Unsupported,
        _ => return DocParse::Absent,
    }
    at = skip(
        &tokens,
        at,
        &[TokenKind::Space, TokenKind::Comment, TokenKind::Newline],
    );
    let Some(string) = tokens.get(at).filter(|t| t.kind == TokenKind::Str) else {
        return DocParse::Absent;
    };
    let after = skip(&tokens, at + 1, &[TokenKind::Space, TokenKind::Comment]);
    if tokens
        .get(after)
        .is_some_and(|t| t.kind != TokenKind::Newline)
    {
        return DocParse::Unsupported;
    }
    let Some(contents) = python_string_contents(string.text) else {
        return DocParse::Unsupported;
    };
    let first = line_of(text, string.start);
    let last = first + line_of(string.text, string.text.len());
    let body_continues = tokens[after..].iter().any(|t| {
        matches!(
            t.kind,
            TokenKind::Ident | TokenKind::Str | TokenKind::Punct | TokenKind::Other
        )
    });
    let filler = (!body_continues).then(|| {
        let line = text.lines().nth(first as usize).unwrap_or("");
        let indent = &line[..line.len() - line.trim_start().len()];
        format!("{indent}pass")
    });
    DocParse::Found(Docstring {
        text: contents.to_string(),
        lines: (function.start_line + first..=function.start_line + last).collect(),
        filler,
    })
}

/// Index of the `:` that ends a Python function's header (after `def`, at
/// bracket depth 0).
pub(crate) fn python_header_end(tokens: &[Token]) -> Option<usize> {
    let def = keyword_index(tokens, "def")?;
    let mut depth = 0usize;
    for (i, token) in tokens.iter().enumerate().skip(def) {
        if depth == 0 && token.kind == TokenKind::Punct && token.text == ":" {
            return Some(i);
        }
        depth = depth_after(depth, token);
    }
    None
}

/// The text between the quotes of a Python string literal (prefix, single
/// or triple quotes), if it is closed.
fn python_string_contents(literal: &str) -> Option<&str> {
    let open = literal.find(['"', '\''])?;
    let quote_byte = literal.as_bytes()[open];
    let delimiter = if literal.as_bytes()[open..].starts_with(&[quote_byte; 3]) {
        3
    } else {
        1
    };
    let inner_start = open + delimiter;
    let inner_end = literal.len().checked_sub(delimiter)?;
    if inner_end < inner_start || !literal[inner_end..].bytes().all(|b| b == quote_byte) {
        return None;
    }
    Some(&literal[inner_start..inner_end])
}

/// The `///` lines (not `////`) and one-line `#[doc = "…"]` attributes
/// between a Rust function's start and its `fn` line.
fn rust_doc_comment(function: &Function) -> DocParse {
    let before_fn = (function.def_line - function.start_line) as usize;
    let mut text = Vec::new();
    let mut lines = Vec::new();
    for (offset, line) in function.text.lines().take(before_fn).enumerate() {
        let trimmed = line.trim_start();
        let doc = if let Some(rest) = trimmed.strip_prefix("///") {
            if rest.starts_with('/') {
                continue;
            }
            rest.strip_prefix(' ').unwrap_or(rest)
        } else if trimmed.starts_with("/**") {
            return DocParse::Unsupported;
        } else if trimmed.starts_with("#[doc") && !trimmed.starts_with("#[doc(") {
            match doc_attribute(trimmed) {
                Some(doc) => doc,
                None => return DocParse::Unsupported,
            }
        } else {
            continue;
        };
        text.push(doc);
        lines.push(function.start_line + offset as u32);
    }
    if lines.is_empty() {
        return DocParse::Absent;
    }
    DocParse::Found(Docstring {
        text: text.join("\n"),
        lines,
        filler: None,
    })
}

/// The string of a one-line `#[doc = "…"]` attribute.
fn doc_attribute(line: &str) -> Option<&str> {
    line.strip_prefix("#[doc")?
        .trim_start()
        .strip_prefix('=')?
        .trim()
        .strip_prefix('"')?
        .strip_suffix("\"]")
}

/// `source` without the lines of `docstrings` (a line with a filler becomes
/// the filler, keeping the line ending).
fn remove_docstrings(source: &str, docstrings: &[&Docstring]) -> String {
    let mut deleted: HashMap<u32, Option<&str>> = HashMap::new();
    for docstring in docstrings {
        for (i, line) in docstring.lines.iter().enumerate() {
            let filler = if i == 0 {
                docstring.filler.as_deref()
            } else {
                None
            };
            deleted.insert(*line, filler);
        }
    }
    let mut out = String::with_capacity(source.len());
    for (i, line) in source.split_inclusive('\n').enumerate() {
        match deleted.get(&(i as u32 + 1)) {
            None => out.push_str(line),
            Some(None) => {}
            Some(Some(filler)) => {
                out.push_str(filler);
                let content = line.trim_end_matches(['\r', '\n']);
                out.push_str(&line[content.len()..]);
            }
        }
    }
    out
}

/// Markup removed from a first sentence, in order: Sphinx roles
/// (``:func:`~a.b` `` → `a.b`, ``:class:`Title <a.b>` `` → `Title`), reST links (`` `text <url>`_ `` → `text`),
/// Markdown links (`[text](url)`, `[text][ref]` → `text`), rustdoc links
/// (`` [`Name`] ``, `[Name]` → the name, but not `x[i]`), then code and
/// emphasis marks.
static MARKUP: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (r":(?:[A-Za-z_]+:)+`~?([^`<]*?)\s*(?:<[^>`]*>)?`", "$1"),
        (r"`([^`<]*?)\s*<[^>`]*>`_{1,2}", "$1"),
        (r"\[([^\]]*)\]\([^)]*\)", "$1"),
        (r"\[([^\]]*)\]\[[^\]]*\]", "$1"),
        (r"(^|[^\w\]])\[(`[^`\]]+`|[A-Za-z_][\w:.]*)\]", "$1$2"),
        (r"[`*]+", ""),
    ]
    .into_iter()
    .map(|(pattern, replacement)| (Regex::new(pattern).expect("valid pattern"), replacement))
    .collect()
});

/// Words whose period does not end a sentence.
const ABBREVIATIONS: [&str; 5] = ["e.g", "i.e", "etc", "vs", "cf"];

/// The query a docstring gives: its first paragraph (up to a blank line or
/// a section such as `:param`, `Args:`, `>>>`, `# Examples`, a code fence),
/// markup removed ([`MARKUP`]), cut after the first `.`, `!` or `?` that is
/// followed by a space (not after e.g./i.e./etc.), whitespace collapsed,
/// without the final period or colon.
fn first_sentence(doc: &str) -> String {
    let mut paragraph: Vec<&str> = Vec::new();
    for line in doc.lines().map(str::trim) {
        if line.is_empty() {
            if paragraph.is_empty() {
                continue;
            }
            break;
        }
        if starts_section(line) {
            break;
        }
        paragraph.push(line);
    }
    let mut text = paragraph.join(" ");
    for (pattern, replacement) in MARKUP.iter() {
        text = pattern.replace_all(&text, *replacement).into_owned();
    }
    let sentence = cut_first_sentence(&text);
    sentence
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end_matches(['.', ':', ',', ';'])
        .to_string()
}

/// Whether a docstring line starts a section rather than continuing prose:
/// a Sphinx field (`:param x:`, `:returns:`; a line starting with a role
/// such as ``:meth:`close` `` continues the prose), a doctest, a directive,
/// a heading, a code fence, an underline or a lone `Args:`-style label.
fn starts_section(line: &str) -> bool {
    let starts_with_role = line
        .trim_start_matches(|c: char| c == ':' || c == '_' || c.is_ascii_alphabetic())
        .starts_with('`');
    (line.starts_with(':') && !starts_with_role)
        || line.starts_with(">>>")
        || line.starts_with("..")
        || line.starts_with('#')
        || line.starts_with("```")
        || line.chars().all(|c| c == '-' || c == '=')
        || (line.ends_with(':') && !line.contains(' '))
}

/// `text` up to and including the first sentence end.
fn cut_first_sentence(text: &str) -> &str {
    for (i, c) in text.char_indices() {
        if !matches!(c, '.' | '!' | '?') {
            continue;
        }
        let at_break = text[i + 1..].chars().next().is_none_or(char::is_whitespace);
        let word = text[..i]
            .rsplit(char::is_whitespace)
            .next()
            .unwrap_or("")
            .trim_start_matches(|c: char| !c.is_alphanumeric())
            .to_ascii_lowercase();
        if at_break && !ABBREVIATIONS.contains(&word.as_str()) {
            return &text[..=i];
        }
    }
    text
}

/// Whether a first sentence is worth a query: at least [`MIN_QUERY_WORDS`]
/// words, not starting with boilerplate ([`BOILERPLATE_FIRST_WORDS`], "Same
/// as").
fn is_usable_query(sentence: &str) -> bool {
    let words: Vec<&str> = sentence.split_whitespace().collect();
    let Some(first) = words.first() else {
        return false;
    };
    let first = first
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_ascii_lowercase();
    words.len() >= MIN_QUERY_WORDS
        && !BOILERPLATE_FIRST_WORDS.contains(&first.as_str())
        && !sentence.to_ascii_lowercase().starts_with("same as")
}

/// What a token is, as far as docstrings and renaming need to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// A name or keyword.
    Ident,
    /// A string literal with its prefix and quotes (Rust: also char literals).
    Str,
    Comment,
    Newline,
    /// Spaces, tabs, `\r`.
    Space,
    /// A bracket, `,`, `.`, `;`, or a run of operator characters (`=`, `+=`,
    /// `::`, `->`, `:`).
    Punct,
    /// Numbers, lifetimes, anything else.
    Other,
}

/// One token: its kind, its text and its byte offset. The tokens of a text
/// concatenate back to the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub(crate) kind: TokenKind,
    pub(crate) text: &'a str,
    pub(crate) start: usize,
}

/// Characters that form operator runs.
fn is_operator(byte: u8, lang: Lang) -> bool {
    b"=+-*/%<>!&|^~@:?$\\".contains(&byte) || (lang == Lang::Rust && byte == b'#')
}

/// Bytes that can start or continue a name (any non-ASCII byte included, so
/// multi-byte characters stay whole).
fn is_ident_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte >= 0x80
}

/// A small lexer for Python and Rust: enough to tell names from strings
/// and comments, and to count brackets. Never fails; odd input becomes
/// `Other` tokens.
pub(crate) fn tokenize(text: &str, lang: Lang) -> Vec<Token<'_>> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let byte = bytes[i];
        let rest = &bytes[i..];
        let kind = if byte == b'\n' {
            i += 1;
            TokenKind::Newline
        } else if matches!(byte, b' ' | b'\t' | b'\r' | 0x0c) {
            while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'\r' | 0x0c) {
                i += 1;
            }
            TokenKind::Space
        } else if (lang == Lang::Python && byte == b'#')
            || (lang == Lang::Rust && rest.starts_with(b"//"))
        {
            i = line_end(bytes, i);
            TokenKind::Comment
        } else if lang == Lang::Rust && rest.starts_with(b"/*") {
            i = block_comment_end(bytes, i);
            TokenKind::Comment
        } else if byte.is_ascii_digit() {
            while i < bytes.len() && (is_ident_byte(bytes[i]) || bytes[i] == b'.') {
                i += 1;
            }
            TokenKind::Other
        } else if is_ident_byte(byte) {
            let mut end = i;
            while end < bytes.len() && is_ident_byte(bytes[end]) {
                end += 1;
            }
            match prefixed_string_end(bytes, i, end, lang) {
                Some(string_end) => {
                    i = string_end;
                    TokenKind::Str
                }
                None => {
                    i = end;
                    TokenKind::Ident
                }
            }
        } else if byte == b'"' || (lang == Lang::Python && byte == b'\'') {
            i = quoted_end(bytes, i, lang);
            TokenKind::Str
        } else if byte == b'\'' {
            let (end, kind) = rust_quote_end(text, i);
            i = end;
            kind
        } else if b"()[]{},.;".contains(&byte) {
            i += 1;
            TokenKind::Punct
        } else if is_operator(byte, lang) {
            while i < bytes.len() && is_operator(bytes[i], lang) {
                i += 1;
            }
            TokenKind::Punct
        } else {
            i += 1;
            TokenKind::Other
        };
        tokens.push(Token {
            kind,
            text: &text[start..i],
            start,
        });
    }
    tokens
}

/// Offset of the `\n` ending the line at `i` (or the end).
fn line_end(bytes: &[u8], i: usize) -> usize {
    bytes[i..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |p| i + p)
}

/// End of a (nested) Rust block comment starting at `i`.
fn block_comment_end(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if bytes[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// If the name `bytes[start..end]` is a string prefix directly followed by
/// a string (Python `r"`, `f'''`, `b"`; Rust `b"`, `b'`, `r#"`, `br"`,
/// `c"`), the end of that string.
fn prefixed_string_end(bytes: &[u8], start: usize, end: usize, lang: Lang) -> Option<usize> {
    let prefix = &bytes[start..end];
    let next = *bytes.get(end)?;
    match lang {
        Lang::Python => {
            let is_prefix = prefix.len() <= 2
                && prefix.iter().all(|b| b"rRbBuUfF".contains(b))
                && matches!(next, b'"' | b'\'');
            is_prefix.then(|| quoted_end(bytes, end, lang))
        }
        Lang::Rust => match (prefix, next) {
            (b"b" | b"c", b'"') => Some(quoted_end(bytes, end, lang)),
            (b"b", b'\'') => Some(quoted_end(bytes, end, lang)),
            (b"r" | b"br" | b"cr", b'"' | b'#') => raw_string_end(bytes, end),
            _ => None,
        },
    }
}

/// End of a quoted literal opening at `q` (its quote character decides the
/// closing one; Python triple quotes span lines, single ones end at the
/// line's end if unclosed; backslash escapes the next byte).
fn quoted_end(bytes: &[u8], q: usize, lang: Lang) -> usize {
    let quote = bytes[q];
    let triple = lang == Lang::Python && bytes[q..].starts_with(&[quote, quote, quote]);
    let mut i = q + if triple { 3 } else { 1 };
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'\n' if lang == Lang::Python && !triple => return i,
            b if b == quote && (!triple || bytes[i..].starts_with(&[quote, quote, quote])) => {
                return i + if triple { 3 } else { 1 };
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// End of a Rust raw string whose `#`s or quote start at `i`; `None` for a
/// raw identifier (`r#type`).
fn raw_string_end(bytes: &[u8], i: usize) -> Option<usize> {
    let hashes = bytes[i..].iter().take_while(|&&b| b == b'#').count();
    if bytes.get(i + hashes) != Some(&b'"') {
        return None;
    }
    let mut closing = vec![b'"'];
    closing.extend(std::iter::repeat_n(b'#', hashes));
    let body = i + hashes + 1;
    Some(
        bytes[body..]
            .windows(closing.len())
            .position(|w| w == closing.as_slice())
            .map_or(bytes.len(), |p| body + p + closing.len()),
    )
}

/// A Rust `'`: a char literal (`'a'`, `'\n'`, `'é'`) or a lifetime/label.
fn rust_quote_end(text: &str, q: usize) -> (usize, TokenKind) {
    let bytes = text.as_bytes();
    if bytes.get(q + 1) == Some(&b'\\') {
        // The escaped byte itself may be a quote (`'\''`).
        let close = bytes
            .get(q + 3..)
            .and_then(|tail| tail.iter().take(12).position(|&b| b == b'\''))
            .map(|p| q + 3 + p + 1);
        if let Some(end) = close {
            return (end, TokenKind::Str);
        }
    } else if let Some(c) = text[q + 1..].chars().next() {
        let after = q + 1 + c.len_utf8();
        if bytes.get(after) == Some(&b'\'') {
            return (after + 1, TokenKind::Str);
        }
    }
    let mut end = q + 1;
    while end < bytes.len() && is_ident_byte(bytes[end]) {
        end += 1;
    }
    (end, TokenKind::Other)
}

/// Bracket depth after `token`, given the depth before it.
pub(crate) fn depth_after(depth: usize, token: &Token) -> usize {
    match (token.kind, token.text) {
        (TokenKind::Punct, "(" | "[" | "{") => depth + 1,
        (TokenKind::Punct, ")" | "]" | "}") => depth.saturating_sub(1),
        _ => depth,
    }
}

/// Index of the first `keyword` name at bracket depth 0 (decorator and
/// attribute arguments are inside brackets).
pub(crate) fn keyword_index(tokens: &[Token], keyword: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, token) in tokens.iter().enumerate() {
        if depth == 0 && token.kind == TokenKind::Ident && token.text == keyword {
            return Some(i);
        }
        depth = depth_after(depth, token);
    }
    None
}

/// The first index from `from` whose token is not of the `skipped` kinds.
pub(crate) fn skip(tokens: &[Token], from: usize, skipped: &[TokenKind]) -> usize {
    tokens[from.min(tokens.len())..]
        .iter()
        .position(|t| !skipped.contains(&t.kind))
        .map_or(tokens.len(), |p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `source` with the docstrings of all its functions removed.
    fn strip_all(source: &str, lang: Lang) -> String {
        let path = format!("m.{}", lang.extension());
        let found: Vec<Docstring> = functions(&path, source, lang)
            .iter()
            .filter_map(|f| match docstring(f, lang) {
                DocParse::Found(d) => Some(d),
                _ => None,
            })
            .collect();
        remove_docstrings(source, &found.iter().collect::<Vec<_>>())
    }

    fn python_functions(source: &str) -> Vec<Function> {
        functions("m.py", source, Lang::Python)
    }

    fn only_docstring(source: &str) -> DocParse {
        let found = python_functions(source);
        assert_eq!(found.len(), 1, "{found:?}");
        python_docstring(&found[0])
    }

    #[test]
    fn python_single_line_docstring_is_removed() {
        let source = "import os\n\ndef f(x):\n    \"\"\"Return x.\"\"\"\n    return x\n";
        let DocParse::Found(doc) = only_docstring(source) else {
            panic!("no docstring");
        };
        assert_eq!(doc.text, "Return x.");
        assert_eq!(doc.lines, vec![4]);
        assert_eq!(
            remove_docstrings(source, &[&doc]),
            "import os\n\ndef f(x):\n    return x\n"
        );
    }

    #[test]
    fn python_multi_line_docstring_in_a_method_with_a_long_header() {
        let source = "class A:\n    def f(\n        self, a: int = 1,\n    ) -> dict[str, int]:\n        '''Make a mapping.\n\n        :param a: the value\n        '''\n        # keep me\n        return {'a': a}\n";
        let stripped = strip_all(source, Lang::Python);
        assert_eq!(
            stripped,
            "class A:\n    def f(\n        self, a: int = 1,\n    ) -> dict[str, int]:\n        # keep me\n        return {'a': a}\n"
        );
    }

    #[test]
    fn python_prefixed_docstrings_are_found() {
        for (prefix, quote) in [("r", "\"\"\""), ("f", "'"), ("Rb", "\"")] {
            let source =
                format!("def f():\n    {prefix}{quote}Raw \\d text{quote}\n    return 1\n");
            let DocParse::Found(doc) = only_docstring(&source) else {
                panic!("no docstring for prefix {prefix}");
            };
            assert_eq!(doc.text, "Raw \\d text");
            assert_eq!(strip_all(&source, Lang::Python), "def f():\n    return 1\n");
        }
    }

    #[test]
    fn python_body_left_empty_gets_pass() {
        let source = "class A:\n    @property\n    def f(self):\n        \"\"\"Only a docstring.\n        \"\"\"\n\n\ndef g():\n    pass\n";
        assert_eq!(
            strip_all(source, Lang::Python),
            "class A:\n    @property\n    def f(self):\n        pass\n\n\ndef g():\n    pass\n"
        );
        let crlf = "def f():\r\n    \"Doc.\"\r\n";
        assert_eq!(strip_all(crlf, Lang::Python), "def f():\r\n    pass\r\n");
    }

    #[test]
    fn python_functions_without_docstrings_are_untouched() {
        let source = "@decorator(\"not a docstring\")\ndef f(x):\n    y = \"a string later\"\n    return y\n\ndef g(): return \"same line\"\n";
        for function in python_functions(source) {
            assert_eq!(python_docstring(&function), DocParse::Absent);
        }
        assert_eq!(strip_all(source, Lang::Python), source);
    }

    #[test]
    fn python_odd_docstrings_are_unsupported() {
        for source in [
            "def f(): \"\"\"Doc on the def line.\"\"\"\n",
            "def f():\n    \"Doc\" \"concatenated.\"\n    return 1\n",
            "def f():\n    \"Doc {}\".format(1)\n",
        ] {
            assert_eq!(only_docstring(source), DocParse::Unsupported, "{source}");
        }
    }

    #[test]
    fn decorated_python_function_keeps_its_decorators() {
        let source =
            "@app.route(\"/x\")\n@cached\ndef view(request):\n    \"\"\"Serve x.\"\"\"\n    return 1\n";
        let found = python_functions(source);
        assert_eq!(found[0].start_line, 1);
        assert_eq!(found[0].def_line, 3);
        assert_eq!(
            strip_all(source, Lang::Python),
            "@app.route(\"/x\")\n@cached\ndef view(request):\n    return 1\n"
        );
    }

    #[test]
    fn rust_doc_comments_and_doc_attributes_are_removed() {
        let source = "impl A {\n    /// Parse the input.\n    ///\n    /// More.\n    #[inline]\n    #[doc = \"Extra.\"]\n    // plain comment\n    //// not doc\n    pub fn parse(&self) -> u8 {\n        /// inner doc stays\n        let x = 1;\n        x\n    }\n}\n";
        let found = functions("m.rs", source, Lang::Rust);
        let parse = found.iter().find(|f| f.symbol == "A::parse").unwrap();
        assert_eq!(parse.def_line, 9);
        let DocParse::Found(doc) = rust_doc_comment(parse) else {
            panic!("no doc");
        };
        assert_eq!(doc.text, "Parse the input.\n\nMore.\nExtra.");
        assert_eq!(
            remove_docstrings(source, &[&doc]),
            "impl A {\n    #[inline]\n    // plain comment\n    //// not doc\n    pub fn parse(&self) -> u8 {\n        /// inner doc stays\n        let x = 1;\n        x\n    }\n}\n"
        );
        let block = "/** Block doc. */\nfn f() {}\n";
        let found = functions("m.rs", block, Lang::Rust);
        assert_eq!(rust_doc_comment(&found[0]), DocParse::Unsupported);
    }

    #[test]
    fn long_functions_are_merged_from_their_windows() {
        let body: String = (0..300)
            .map(|i| format!("    x{i} = call_{i}(x)\n"))
            .collect();
        let source = format!("def long(x):\n    \"\"\"Doc.\"\"\"\n{body}    return x\n");
        let found = python_functions(&source);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].text.lines().count(), 303);
    }

    #[test]
    fn first_sentence_is_cleaned() {
        assert_eq!(
            first_sentence("Return the :class:`~click.Context` for\n    this command. More text."),
            "Return the click.Context for this command"
        );
        assert_eq!(
            first_sentence("Verify a :class:`HTTPAdapter <requests.adapters.HTTPAdapter>` cert."),
            "Verify a HTTPAdapter cert"
        );
        assert_eq!(
            first_sentence(
                "Parses a [`Regex`](crate::Regex), e.g. `a+`, from [`str`]!\n\n# Examples"
            ),
            "Parses a Regex, e.g. a+, from str!"
        );
        assert_eq!(
            first_sentence("\n  Sends a request\n  :param url: URL\n"),
            "Sends a request"
        );
        assert_eq!(
            first_sentence(
                "Invoke the callbacks registered with\n:meth:`call_on_close`, then exit."
            ),
            "Invoke the callbacks registered with call_on_close, then exit"
        );
        assert_eq!(
            first_sentence("Index into x[i] with [the docs][ref]\nArgs:\n  x: a list"),
            "Index into x[i] with the docs"
        );
        assert_eq!(
            first_sentence("See `requests.get` (v2.0 onwards) for details."),
            "See requests.get (v2.0 onwards) for details"
        );
    }

    #[test]
    fn boilerplate_and_short_sentences_are_not_queries() {
        assert!(is_usable_query("Returns the value of x"));
        assert!(!is_usable_query("Returns the value"));
        assert!(!is_usable_query("TODO: write this docstring"));
        assert!(!is_usable_query("See the module documentation above"));
        assert!(!is_usable_query("Alias for the other function"));
        assert!(!is_usable_query("Same as parse but lenient"));
        assert!(!is_usable_query(""));
    }

    #[test]
    fn tokens_cover_the_text() {
        let rust = "let s = r#\"a \"q\" b\"#; let c = '\\''; fn f<'a>(x: &'a str) -> char { 'é' } /* a /* b */ c */ b\"x\"";
        let tokens = tokenize(rust, Lang::Rust);
        assert_eq!(tokens.iter().map(|t| t.text).collect::<String>(), rust);
        let strings: Vec<&str> = tokens
            .iter()
            .filter(|t| t.kind == TokenKind::Str)
            .map(|t| t.text)
            .collect();
        assert_eq!(strings, ["r#\"a \"q\" b\"#", "'\\''", "'é'", "b\"x\""]);
        let python = "x = f'{a}' + \"\"\"b\n'c'\"\"\" # note\ny = 'open\n";
        let tokens = tokenize(python, Lang::Python);
        assert_eq!(tokens.iter().map(|t| t.text).collect::<String>(), python);
        let kinds: Vec<(TokenKind, &str)> = tokens
            .iter()
            .filter(|t| matches!(t.kind, TokenKind::Str | TokenKind::Comment))
            .map(|t| (t.kind, t.text))
            .collect();
        assert_eq!(
            kinds,
            [
                (TokenKind::Str, "f'{a}'"),
                (TokenKind::Str, "\"\"\"b\n'c'\"\"\""),
                (TokenKind::Comment, "# note"),
                (TokenKind::Str, "'open"),
            ]
        );
    }

    fn hit(path: &str, symbol: &str, start_line: u32, end_line: u32) -> Hit {
        Hit {
            path: path.into(),
            root: "/r".into(),
            symbol: symbol.into(),
            kind: "function".into(),
            language: "python".into(),
            start_line,
            end_line,
            score: 0.0,
            text: String::new(),
            snippet_match: None,
        }
    }

    #[test]
    fn gold_rank_counts_distinct_units_and_accepts_containers() {
        let gold = Gold {
            path: "a.py".into(),
            symbol: "A.f".into(),
            def_line: 12,
        };
        let hits = [
            hit("b.py", "g", 1, 5),
            hit("b.py", "g", 4, 9),
            hit("a.py", "A.f", 20, 30),
        ];
        assert_eq!(gold_rank(&hits, &gold), Some(2));
        let container = [hit("a.py", "h", 1, 3), hit("a.py", "A", 10, 40)];
        assert_eq!(gold_rank(&container, &gold), Some(2));
        let elsewhere = [hit("c.py", "A.f", 10, 40), hit("a.py", "B", 13, 40)];
        assert_eq!(gold_rank(&elsewhere, &gold), None);
    }

    #[test]
    fn spread_sample_is_capped_and_spread() {
        assert_eq!(spread_sample((0..10).collect(), 4), vec![0, 2, 5, 7]);
        assert_eq!(spread_sample((0..3).collect(), 4), vec![0, 1, 2]);
        assert_eq!(spread_sample((0..300).collect::<Vec<_>>(), 150).len(), 150);
    }
}
