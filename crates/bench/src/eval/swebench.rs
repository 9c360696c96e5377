//! Issue → function localization on the SWE-bench Lite dev split: the issue
//! text is the query, the functions its fix edits are what must be found.
//! Metrics as in the CoRNStack paper: file Acc@1/2/3 and function Acc@5/10
//! (an issue counts only when *all* its gold items rank within k).
//!
//! Each project's code is the PyPI source distribution of the last release
//! uploaded before the issue was filed (`created_at`), up to the
//! instance's `major.minor` version: the code its reporter ran. Most
//! issues are filed while that series is in development, so this is often
//! the previous series' last release; it may lack code new in the series
//! (counted as missing gold) but never holds the fix. Each release is
//! indexed once, whole (tests and docs included, as a user would index
//! it), with the real pipeline.
//!
//! Gold is derived from the fix's diff on that snapshot:
//! - gold files: the non-test `.py` files the diff edits (new files are
//!   not gold: the tree the issue was filed against did not have them);
//! - each hunk is placed in the snapshot file by its old-side text (exact,
//!   then whitespace-insensitive, then the longest run of matching lines),
//!   since snapshot and `base_commit` differ by a few commits;
//! - a hunk whose text is gone (its function was rewritten in between)
//!   falls back on the function its `@@` section names, if the file has
//!   exactly one of that name; otherwise it is counted as missing gold;
//! - edited lines are the removed lines; a pure insertion belongs to the
//!   chunk around it, or to the block header above it with less
//!   indentation (a new method belongs to its class; a class indexed only
//!   as its methods is its whole block, found through any of them);
//! - gold functions are the function/method chunks holding edited lines.
//!   Edits outside any function (imports, a class docstring, a module
//!   constant) go with a function fix as glue, so they are gold only in a
//!   file where no function is edited: there the innermost enclosing chunk
//!   (class or module) is gold.
//!
//! A release without an sdist, a malformed patch, a file or hunk missing
//! from the snapshot: each is reported on stderr and costs the issue its
//! hit, never the run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use quarry_chunk::{Chunk, ChunkConfig, ChunkKind, TokenCounter};
use quarry_index::IndexOptions;
use quarry_models::Embedder;
use quarry_search::Hit;
use quarry_store::{EmbeddingCache, IndexMeta, Store};

use super::metrics::{all_within, first_ranks};
use super::{sources, Config, Row};

/// Hits asked for per issue: deep enough for every metric.
const TOP_K: usize = 100;

/// One line of `instances.jsonl` (the fields the suite uses).
#[derive(serde::Deserialize)]
struct Instance {
    instance_id: String,
    repo: String,
    /// `major.minor` of the project at `base_commit`.
    version: String,
    /// When the issue was filed (ISO 8601).
    created_at: String,
    problem_statement: String,
    patch: String,
}

/// The PyPI distribution that carries each SWE-bench repository's code.
fn pypi_name(repo: &str) -> Option<&'static str> {
    Some(match repo {
        "sqlfluff/sqlfluff" => "sqlfluff",
        "marshmallow-code/marshmallow" => "marshmallow",
        "pvlib/pvlib-python" => "pvlib",
        "pylint-dev/astroid" => "astroid",
        "pyvista/pyvista" => "pyvista",
        "pydicom/pydicom" => "pydicom",
        _ => return None,
    })
}

/// Runs the suite under each of `configs`: `data` holds `instances.jsonl`,
/// `work` the sdists and one index per release between runs.
pub async fn run(
    data: &Path,
    work: &Path,
    embedder: &Embedder,
    configs: &[Config],
) -> Result<Vec<Row>> {
    let path = data.join("instances.jsonl");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut instances = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if !line.trim().is_empty() {
            let instance: Instance = serde_json::from_str(line)
                .with_context(|| format!("{} line {}", path.display(), number + 1))?;
            instances.push(instance);
        }
    }

    // Snapshots in order of first use, each with the issues filed against it.
    let mut snapshots: Vec<(PathBuf, Vec<&Instance>)> = Vec::new();
    let mut unavailable = 0;
    for instance in &instances {
        let Some(name) = pypi_name(&instance.repo) else {
            eprintln!(
                "{}: no PyPI name known for {}; counted as a miss",
                instance.instance_id, instance.repo
            );
            continue;
        };
        let tree = match snapshot(work, name, &instance.version, &instance.created_at) {
            Ok(tree) => tree,
            Err(e) => {
                eprintln!(
                    "{}: no source distribution of {name} {} ({e:#}); counted as a miss",
                    instance.instance_id, instance.version
                );
                unavailable += 1;
                continue;
            }
        };
        match snapshots.iter_mut().find(|(t, _)| *t == tree) {
            Some((_, issues)) => issues.push(instance),
            None => snapshots.push((tree, vec![instance])),
        }
    }

    // The astroid and pydicom releases share most functions: one embedding
    // cache for the suite spares re-embedding them (vectors are the same).
    let cache_dir = work.join("embedding-cache");
    let embedding_cache =
        match EmbeddingCache::open(&cache_dir, embedder.model_id(), embedder.dim()).await {
            Ok(cache) => Some(Arc::new(cache)),
            Err(e) => {
                eprintln!(
                    "embedding cache {} unusable ({e}); embedding everything",
                    cache_dir.display()
                );
                None
            }
        };
    let options = IndexOptions {
        embedding_cache,
        ..IndexOptions::default()
    };
    let tokens = ModelTokens(embedder);

    // Per config, per issue: ranks of the gold files and functions. Issues
    // without a snapshot or without gold stay out and count as misses.
    let mut file_ranks: Vec<Vec<Vec<Option<usize>>>> = vec![Vec::new(); configs.len()];
    let mut function_ranks: Vec<Vec<Vec<Option<usize>>>> = vec![Vec::new(); configs.len()];
    let mut coverage = Coverage::default();
    for (tree, issues) in &snapshots {
        let release = tree.file_name().map_or_else(
            || tree.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let store = Store::open_or_create(
            &work.join("index").join(&release),
            &IndexMeta::new(embedder.model_id(), embedder.dim()),
        )
        .await
        .with_context(|| format!("opening the index of {release}"))?;
        eprintln!("indexing {} (incremental)", tree.display());
        let report = quarry_index::index_root(&store, embedder, tree, &options, &mut |_| {})
            .await
            .with_context(|| format!("indexing {}", tree.display()))?;
        eprintln!(
            "{release}: {} chunks, {} embedded this run in {:.0}s",
            report.chunks_total, report.chunks_embedded, report.seconds
        );

        for instance in issues {
            coverage.issues_with_snapshot += 1;
            let gold = match derive_gold(tree, &instance.patch, &tokens, &options.chunking) {
                Ok(gold) => gold,
                Err(e) => {
                    eprintln!(
                        "{}: no gold ({e:#}); counted as a miss",
                        instance.instance_id
                    );
                    continue;
                }
            };
            coverage.add(&gold);
            for note in &gold.notes {
                eprintln!("{}: {note}", instance.instance_id);
            }
            let named: Vec<String> = gold
                .functions
                .iter()
                .map(|g| format!("{}:{} ({})", g.path, g.symbol, g.kind))
                .collect();
            let named = if named.is_empty() {
                "(none in the snapshot)".to_string()
            } else {
                named.join(", ")
            };
            eprintln!("{}: gold {named}", instance.instance_id);
            for (c, config) in configs.iter().enumerate() {
                let outcome = config
                    .search(&store, embedder, &instance.problem_statement, TOP_K)
                    .await
                    .with_context(|| format!("searching for {}", instance.instance_id))?;
                let files = gold.file_ranks(&outcome.hits);
                let functions = gold.function_ranks(&outcome.hits);
                eprintln!(
                    "{} [{}]: file ranks {}, function ranks {}",
                    instance.instance_id,
                    config.name,
                    show_ranks(&files),
                    show_ranks(&functions)
                );
                file_ranks[c].push(files);
                function_ranks[c].push(functions);
            }
        }
    }

    let suite = format!(
        "Issue → function: SWE-bench Lite dev ({} issues, {} with a snapshot from {} releases, {} without; \
         {} of {} gold functions and {} of {} gold files in them)",
        instances.len(),
        coverage.issues_with_snapshot,
        snapshots.len(),
        unavailable,
        coverage.functions_found,
        coverage.functions_found + coverage.functions_missing,
        coverage.files_found,
        coverage.files_found + coverage.files_missing,
    );
    let total = instances.len();
    Ok(configs
        .iter()
        .enumerate()
        .map(|(c, config)| {
            // Issues that produced no ranks are misses: pad to every issue.
            let files = padded(&file_ranks[c], total);
            let functions = padded(&function_ranks[c], total);
            Row {
                suite: suite.clone(),
                config: config.name.clone(),
                metrics: vec![
                    ("file Acc@1".into(), all_within(&files, 1)),
                    ("file Acc@2".into(), all_within(&files, 2)),
                    ("file Acc@3".into(), all_within(&files, 3)),
                    ("fn Acc@5".into(), all_within(&functions, 5)),
                    ("fn Acc@10".into(), all_within(&functions, 10)),
                ],
            }
        })
        .collect())
}

/// The source tree an issue was filed against: the last release uploaded
/// before `created_at` up to its `series` (`major.minor`, SWE-bench's
/// version of the code at `base_commit`). Most issues are filed against a
/// series still in development, so that is usually the previous series'
/// last release: it may lack code new in the series, but it never holds
/// the fix, which every later release might. Without such a release, the
/// series' first.
fn snapshot(work: &Path, name: &str, series: &str, created_at: &str) -> Result<PathBuf> {
    let below =
        next_minor(series).map_or_else(|| format!("=={series}.*"), |next| format!("<{next}"));
    match sources::python_sdist_uploaded_before(work, name, &below, created_at) {
        Ok(tree) => Ok(tree),
        Err(before) => {
            eprintln!(
                "{name} {series}: no release before {created_at} ({before:#}); taking the series' first"
            );
            sources::python_sdist(work, name, &format!("{series}.0"))
        }
    }
}

/// `0.6` -> `0.7`; `None` for anything but `major.minor`.
fn next_minor(series: &str) -> Option<String> {
    let (major, minor) = series.split_once('.')?;
    let major: u32 = major.parse().ok()?;
    let minor: u32 = minor.parse().ok()?;
    Some(format!("{major}.{}", minor + 1))
}

/// `ranks` followed by empty entries (misses) up to `total` issues.
fn padded(ranks: &[Vec<Option<usize>>], total: usize) -> Vec<Vec<Option<usize>>> {
    let mut all = ranks.to_vec();
    all.resize(total.max(ranks.len()), Vec::new());
    all
}

/// Ranks for the log: `[1, 4, -]`, `-` for not retrieved.
fn show_ranks(ranks: &[Option<usize>]) -> String {
    let shown: Vec<String> = ranks
        .iter()
        .map(|r| r.map_or_else(|| "-".to_string(), |r| r.to_string()))
        .collect();
    format!("[{}]", shown.join(", "))
}

/// The model's tokenizer, as the indexer counts, so gold chunks are cut at
/// exactly the boundaries of the indexed ones.
struct ModelTokens<'a>(&'a Embedder);

impl TokenCounter for ModelTokens<'_> {
    fn count(&self, text: &str) -> usize {
        self.0.count_tokens(text)
    }
}

/// How much of the patches' gold the snapshots hold, for the suite title.
#[derive(Debug, Default)]
struct Coverage {
    issues_with_snapshot: usize,
    files_found: usize,
    files_missing: usize,
    functions_found: usize,
    functions_missing: usize,
}

impl Coverage {
    fn add(&mut self, gold: &Gold) {
        self.files_found += gold.files.len();
        self.files_missing += gold.missing_files;
        self.functions_found += gold.functions.len();
        self.functions_missing += gold.missing_functions;
    }
}

// ---------------------------------------------------------------- diffs

/// One file of a unified diff.
#[derive(Debug, Clone, PartialEq)]
struct FilePatch {
    /// Path before the change (`None`: a new file).
    old_path: Option<String>,
    /// Path after the change (`None`: a deleted file).
    new_path: Option<String>,
    hunks: Vec<Hunk>,
}

/// One `@@` hunk.
#[derive(Debug, Clone, PartialEq)]
struct Hunk {
    /// 1-based first old line, as the diff says (a hint: the snapshot drifts).
    old_start: usize,
    /// The text after the second `@@` (git's enclosing-definition guess),
    /// naming a hunk that cannot be placed.
    section: String,
    lines: Vec<HunkLine>,
}

/// One line of a hunk, without its `' '`/`-`/`+` marker.
#[derive(Debug, Clone, PartialEq)]
enum HunkLine {
    Context(String),
    Removed(String),
    Added(String),
}

impl Hunk {
    /// The hunk's text before the change: context and removed lines.
    fn old_side(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                HunkLine::Context(t) | HunkLine::Removed(t) => Some(t.as_str()),
                HunkLine::Added(_) => None,
            })
            .collect()
    }

    /// The hunk's text after the change: context and added lines.
    fn new_side(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                HunkLine::Context(t) | HunkLine::Added(t) => Some(t.as_str()),
                HunkLine::Removed(_) => None,
            })
            .collect()
    }

    /// What the hunk changes, in old-side line indices.
    fn edits(&self) -> Vec<Edit> {
        let mut edits = Vec::new();
        let mut old_index = 0;
        // The run of changed lines since the last context line: whether it
        // removes anything, and its first non-blank added line.
        let mut run: (bool, Option<&str>) = (false, None);
        for line in &self.lines {
            match line {
                HunkLine::Context(_) => {
                    edits.extend(insertion(old_index, run));
                    run = (false, None);
                    old_index += 1;
                }
                HunkLine::Removed(_) => {
                    edits.push(Edit::Removed(old_index));
                    run.0 = true;
                    old_index += 1;
                }
                HunkLine::Added(text) => {
                    if run.1.is_none() && !text.trim().is_empty() {
                        run.1 = Some(text);
                    }
                }
            }
        }
        edits.extend(insertion(old_index, run));
        edits
    }
}

/// The edit of a run of changed lines ending before old line `before`, if
/// it is a pure insertion of code: `(removes anything, first added line)`.
fn insertion(before: usize, (removes, first_added): (bool, Option<&str>)) -> Option<Edit> {
    match (removes, first_added) {
        (false, Some(text)) => Some(Edit::Inserted {
            before,
            indent: indentation(text),
        }),
        _ => None,
    }
}

/// A change, in old-side line indices of its hunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    /// This old line is removed (or replaced).
    Removed(usize),
    /// Lines are inserted before old line `before` (== the old side's
    /// length: at its end); the first non-blank one is indented `indent`.
    /// Insertions of blank lines only are not edits.
    Inserted { before: usize, indent: usize },
}

/// Columns of leading whitespace (a tab counts as one, as Python code here
/// is indented with spaces).
fn indentation(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Parses a unified diff (`git diff` output, with or without the
/// `diff --git` lines). Hunk line counts decide where a hunk ends, so a
/// removed line that reads `--- x` is not taken for a file header.
fn parse_patch(patch: &str) -> Result<Vec<FilePatch>> {
    let mut files: Vec<FilePatch> = Vec::new();
    // Old and new lines the current hunk still has to deliver.
    let mut remaining = (0usize, 0usize);
    for (number, line) in patch.lines().enumerate() {
        let at = || format!("patch line {}", number + 1);
        if remaining != (0, 0) {
            let hunk = files
                .last_mut()
                .and_then(|f| f.hunks.last_mut())
                .with_context(at)?;
            let (marker, text) = match line.char_indices().nth(1) {
                Some((i, _)) => (&line[..i], &line[i..]),
                None => (line, ""),
            };
            let entry = match marker {
                // A blank context line whose space was stripped in transit.
                "" | " " => HunkLine::Context(text.to_string()),
                "-" => HunkLine::Removed(text.to_string()),
                "+" => HunkLine::Added(text.to_string()),
                "\\" => continue, // "\ No newline at end of file"
                _ => bail!("{}: hunk ends early at {line:?}", at()),
            };
            let (old, new) = match entry {
                HunkLine::Context(_) => (1, 1),
                HunkLine::Removed(_) => (1, 0),
                HunkLine::Added(_) => (0, 1),
            };
            if remaining.0 < old || remaining.1 < new {
                bail!("{}: hunk longer than its header says", at());
            }
            remaining = (remaining.0 - old, remaining.1 - new);
            hunk.lines.push(entry);
        } else if line.starts_with("diff --git ") {
            files.push(FilePatch {
                old_path: None,
                new_path: None,
                hunks: Vec::new(),
            });
        } else if let Some(rest) = line.strip_prefix("--- ") {
            let starts_file = files
                .last()
                .is_none_or(|f| !f.hunks.is_empty() || f.new_path.is_some());
            if starts_file {
                files.push(FilePatch {
                    old_path: None,
                    new_path: None,
                    hunks: Vec::new(),
                });
            }
            if let Some(file) = files.last_mut() {
                file.old_path = diff_path(rest);
            }
        } else if let Some(rest) = line.strip_prefix("+++ ") {
            let file = files.last_mut().with_context(at)?;
            file.new_path = diff_path(rest);
        } else if line.starts_with("@@") {
            let file = files
                .last_mut()
                .with_context(|| format!("{}: hunk before any file header", at()))?;
            let (old_start, old_count, new_count, section) =
                parse_hunk_header(line).with_context(|| format!("{}: {line:?}", at()))?;
            remaining = (old_count, new_count);
            file.hunks.push(Hunk {
                old_start,
                section,
                lines: Vec::new(),
            });
        }
        // Other lines (index, mode, rename, binary) say nothing about lines.
    }
    if remaining != (0, 0) {
        bail!("patch ends inside a hunk");
    }
    Ok(files)
}

/// The path of a `---`/`+++` header: `a/`/`b/` prefix and a trailing
/// timestamp removed; `None` for `/dev/null`.
fn diff_path(header: &str) -> Option<String> {
    let path = header.split('\t').next().unwrap_or(header).trim_end();
    if path == "/dev/null" {
        return None;
    }
    let path = path
        .strip_prefix("a/")
        .or_else(|| path.strip_prefix("b/"))
        .unwrap_or(path);
    Some(path.to_string())
}

/// `@@ -12,7 +12,8 @@ def f():` → (12, 7, 8, "def f():"); a missing
/// count means 1.
fn parse_hunk_header(line: &str) -> Result<(usize, usize, usize, String)> {
    let inner = line.strip_prefix("@@ ").context("no @@")?;
    let (ranges, section) = inner.split_once(" @@").context("no closing @@")?;
    let (old, new) = ranges.split_once(' ').context("no new range")?;
    let range = |text: &str, sign: char| -> Result<(usize, usize)> {
        let text = text.strip_prefix(sign).context("range without sign")?;
        let (start, count) = text.split_once(',').unwrap_or((text, "1"));
        Ok((start.parse()?, count.parse()?))
    };
    let (old_start, old_count) = range(old, '-')?;
    let (_, new_count) = range(new, '+')?;
    Ok((old_start, old_count, new_count, section.trim().to_string()))
}

/// Test code, which SWE-bench keeps out of the gold patch and localizers
/// are not asked to find.
fn is_test_file(path: &str) -> bool {
    let mut parts = path.split('/');
    let file_name = parts.next_back().unwrap_or("");
    parts.any(|dir| matches!(dir, "test" | "tests" | "testing"))
        || file_name.starts_with("test_")
        || file_name.ends_with("_test.py")
        || file_name == "conftest.py"
}

// ------------------------------------------------------- hunk placement

/// How closely a hunk's old side matched the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fit {
    /// Every line, byte for byte.
    Exact,
    /// Every line, whitespace aside (reformatting, changed indentation).
    Whitespace,
    /// Most lines, at one offset; the rest drifted.
    Partial,
}

/// Where a hunk's old side sits in a snapshot file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Placement {
    /// Old-side line `i` is snapshot line `i + offset` (both 0-based).
    offset: isize,
    fit: Fit,
}

impl Placement {
    /// The snapshot line of old-side line `index`, if inside the file.
    fn line(&self, index: usize, file_len: usize) -> Option<usize> {
        let line = usize::try_from(index as isize + self.offset).ok()?;
        (line < file_len).then_some(line)
    }
}

/// Equal apart from whitespace.
fn same_words(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// Places the old side of a hunk in `file`: an exact block match first,
/// then one ignoring whitespace, then the alignment where most non-blank
/// lines match (at least two, or the only one), so a hunk whose removed
/// lines are gone (the snapshot has the fix) or whose context changed is
/// still placed by the rest. Ties go to the place nearest `hint` (the
/// 0-based line the diff names). `None` when nothing fits or there is no
/// old side.
fn locate_hunk(old: &[&str], file: &[&str], hint: usize) -> Option<Placement> {
    if old.is_empty() || file.is_empty() {
        return None;
    }
    let distance = |offset: isize| offset.abs_diff(hint as isize);
    let whole_block = |equal: fn(&str, &str) -> bool| {
        (0..=file.len().checked_sub(old.len())?)
            .filter(|&start| old.iter().zip(&file[start..]).all(|(a, b)| equal(a, b)))
            .map(|start| start as isize)
            .min_by_key(|&start| distance(start))
    };
    if let Some(offset) = whole_block(|a, b| a == b) {
        return Some(Placement {
            offset,
            fit: Fit::Exact,
        });
    }
    if let Some(offset) = whole_block(same_words) {
        return Some(Placement {
            offset,
            fit: Fit::Whitespace,
        });
    }
    let non_blank = old.iter().filter(|l| !l.trim().is_empty()).count();
    let needed = non_blank.min(2);
    if needed == 0 {
        return None;
    }
    // (matching non-blank lines, offset): the best alignment of all.
    let mut best: Option<(usize, isize)> = None;
    for offset in -(old.len() as isize - 1)..file.len() as isize {
        let matching = old
            .iter()
            .enumerate()
            .filter(|(index, old_line)| {
                !old_line.trim().is_empty()
                    && usize::try_from(*index as isize + offset)
                        .ok()
                        .and_then(|l| file.get(l))
                        .is_some_and(|file_line| same_words(old_line, file_line))
            })
            .count();
        let better = best.is_none_or(|(score, at)| {
            matching > score || (matching == score && distance(offset) < distance(at))
        });
        if matching >= needed && better {
            best = Some((matching, offset));
        }
    }
    best.map(|(_, offset)| Placement {
        offset,
        fit: Fit::Partial,
    })
}

// ----------------------------------------------------------------- gold

/// A function (or, failing one, class or module chunk) the fix edits.
#[derive(Debug, Clone, PartialEq)]
struct GoldFunction {
    /// Relative to the snapshot root.
    path: String,
    symbol: String,
    kind: ChunkKind,
    /// The line ranges (1-based, inclusive) of its edited chunks.
    ranges: Vec<(u32, u32)>,
}

impl GoldFunction {
    /// A hit finds this function when it is in the same file and has its
    /// symbol or overlaps an edited chunk. Module chunks all carry the file
    /// stem as symbol, so only their lines identify them.
    fn found_by(&self, hit: &Hit) -> bool {
        hit.path == self.path
            && ((self.kind != ChunkKind::Module && hit.symbol == self.symbol)
                || self
                    .ranges
                    .iter()
                    .any(|&(start, end)| hit.start_line <= end && start <= hit.end_line))
    }
}

/// The gold of one issue in its snapshot.
#[derive(Debug, Default)]
struct Gold {
    /// Gold files present in the snapshot (relative paths).
    files: Vec<String>,
    /// Gold files the snapshot lacks.
    missing_files: usize,
    functions: Vec<GoldFunction>,
    /// Gold functions that could not be placed: one per distinct hunk
    /// section among the hunks of missing files and unplaced hunks.
    missing_functions: usize,
    /// What deserves a line in the log (drift, fixes already applied).
    notes: Vec<String>,
}

impl Gold {
    /// Rank of each gold file in the order files first appear among
    /// `hits`; missing files are never found.
    fn file_ranks(&self, hits: &[Hit]) -> Vec<Option<usize>> {
        let ranking = first_ranks(hits.iter().map(|h| h.path.as_str()));
        self.files
            .iter()
            .map(|file| ranking.iter().position(|p| p == file).map(|i| i + 1))
            .chain(std::iter::repeat_n(None, self.missing_files))
            .collect()
    }

    /// Rank of each gold function among the distinct (path, symbol) of
    /// `hits` (a split function's windows count once); unplaced gold is
    /// never found.
    fn function_ranks(&self, hits: &[Hit]) -> Vec<Option<usize>> {
        let mut seen: Vec<(&str, &str)> = Vec::new();
        let mut ranks = vec![None; self.functions.len()];
        for hit in hits {
            let key = (hit.path.as_str(), hit.symbol.as_str());
            let rank = match seen.iter().position(|k| *k == key) {
                Some(i) => i + 1,
                None => {
                    seen.push(key);
                    seen.len()
                }
            };
            for (gold, found) in self.functions.iter().zip(&mut ranks) {
                if found.is_none() && gold.found_by(hit) {
                    *found = Some(rank);
                }
            }
        }
        ranks
            .into_iter()
            .chain(std::iter::repeat_n(None, self.missing_functions))
            .collect()
    }
}

/// The gold of `patch` in the snapshot `tree`, chunked as the indexer does.
fn derive_gold(
    tree: &Path,
    patch: &str,
    tokens: &dyn TokenCounter,
    chunking: &ChunkConfig,
) -> Result<Gold> {
    let mut gold = Gold::default();
    let mut tree_files: Option<Vec<String>> = None;
    for file in parse_patch(patch)? {
        // New files are not gold: the issue's tree did not have them.
        let Some(patch_path) = file.old_path.as_deref() else {
            continue;
        };
        if !patch_path.ends_with(".py") || is_test_file(patch_path) {
            continue;
        }
        let unplaced = |hunks: &[&Hunk]| {
            let mut sections: Vec<&str> = hunks.iter().map(|h| h.section.as_str()).collect();
            sections.sort_unstable();
            sections.dedup();
            sections.len()
        };
        let rel = if tree.join(patch_path).is_file() {
            Some(patch_path.to_string())
        } else {
            let candidates = tree_files.get_or_insert_with(|| python_files(tree));
            best_suffix_match(patch_path, candidates).map(str::to_string)
        };
        let source = rel.as_ref().and_then(|rel| {
            std::fs::read(tree.join(rel))
                .ok()
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        });
        let (Some(rel), Some(source)) = (rel, source) else {
            gold.notes
                .push(format!("{patch_path} is not in the snapshot"));
            gold.missing_files += 1;
            gold.missing_functions += unplaced(&file.hunks.iter().collect::<Vec<_>>());
            continue;
        };
        if rel != patch_path {
            gold.notes
                .push(format!("{patch_path} is {rel} in the snapshot"));
        }
        let chunks = quarry_chunk::chunk_source(Path::new(&rel), &source, chunking, tokens);
        let in_file = gold_in_file(&rel, &source, &chunks, &file.hunks);
        for (fit, count) in [
            (Fit::Whitespace, in_file.whitespace),
            (Fit::Partial, in_file.partial),
        ] {
            if count > 0 {
                gold.notes
                    .push(format!("{rel}: {count} hunk(s) placed with fit {fit:?}"));
            }
        }
        if in_file.by_section > 0 {
            gold.notes.push(format!(
                "{rel}: {} hunk(s) not found, taken from the function their section names",
                in_file.by_section
            ));
        }
        if in_file.already_applied > 0 {
            gold.notes.push(format!(
                "{rel}: the snapshot already has {} hunk(s) of the fix",
                in_file.already_applied
            ));
        }
        if !in_file.unplaced.is_empty() {
            gold.notes.push(format!(
                "{rel}: {} hunk(s) not found in the snapshot",
                in_file.unplaced.len()
            ));
        }
        gold.missing_functions += unplaced(&in_file.unplaced);
        gold.functions.extend(in_file.functions);
        gold.files.push(rel);
    }
    Ok(gold)
}

/// The gold found in one snapshot file.
#[derive(Debug, Default)]
struct FileGold<'h> {
    functions: Vec<GoldFunction>,
    /// Hunks neither placed nor named by their section.
    unplaced: Vec<&'h Hunk>,
    /// Hunks placed ignoring whitespace.
    whitespace: usize,
    /// Hunks placed by a partial run of lines.
    partial: usize,
    /// Hunks not placed whose section names a function of the file.
    by_section: usize,
    /// Hunks whose new side is in the file, verbatim or for whitespace,
    /// while the old side is not: the snapshot postdates the fix.
    already_applied: usize,
}

/// What an edit falls in: a chunk, or the block of a class that has no
/// chunk of its own.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    symbol: String,
    kind: ChunkKind,
    /// 1-based, inclusive.
    lines: (u32, u32),
}

impl From<&Chunk> for Target {
    fn from(chunk: &Chunk) -> Self {
        Target {
            symbol: chunk.symbol.clone(),
            kind: chunk.kind,
            lines: (chunk.start_line, chunk.end_line),
        }
    }
}

/// Places `hunks` in `source` (cut into `chunks`) and collects what they
/// edit: functions and methods, or, when the file has no edited function,
/// the innermost enclosing class or module chunks. A hunk that cannot be
/// placed (the function was rewritten since) still counts when its
/// section names exactly one function or class of the file.
fn gold_in_file<'h>(path: &str, source: &str, chunks: &[Chunk], hunks: &'h [Hunk]) -> FileGold<'h> {
    let lines: Vec<&str> = source.lines().collect();
    let mut found = FileGold::default();
    let mut edited: Vec<Target> = Vec::new();
    let mut add = |target: Target| {
        if !edited.contains(&target) {
            edited.push(target);
        }
    };
    for hunk in hunks {
        let old = hunk.old_side();
        let Some(placement) = locate_hunk(&old, &lines, hunk.old_start.saturating_sub(1)) else {
            match section_target(chunks, &hunk.section) {
                Some(target) => {
                    found.by_section += 1;
                    add(target);
                }
                None => found.unplaced.push(hunk),
            }
            continue;
        };
        match placement.fit {
            Fit::Exact => {}
            Fit::Whitespace => found.whitespace += 1,
            Fit::Partial => found.partial += 1,
        }
        if placement.fit != Fit::Exact {
            let new = hunk.new_side();
            let hint = hunk.old_start.saturating_sub(1);
            if locate_hunk(&new, &lines, hint).is_some_and(|p| p.fit != Fit::Partial) {
                found.already_applied += 1;
            }
        }
        for edit in hunk.edits() {
            if let Some(target) = edit_target(&lines, chunks, placement, edit) {
                add(target);
            }
        }
    }
    let callable = |t: &Target| matches!(t.kind, ChunkKind::Function | ChunkKind::Method);
    if edited.iter().any(callable) {
        edited.retain(callable);
    }
    for target in edited {
        match found
            .functions
            .iter_mut()
            .find(|g| g.symbol == target.symbol && g.kind == target.kind)
        {
            Some(gold) => gold.ranges.push(target.lines),
            None => found.functions.push(GoldFunction {
                path: path.to_string(),
                symbol: target.symbol,
                kind: target.kind,
                ranges: vec![target.lines],
            }),
        }
    }
    found
}

/// What an edit falls in. A removed line: the innermost chunk holding it.
/// An insertion: the innermost chunk holding the non-blank lines on both
/// sides of it (inside a function body), else the nearest line above with
/// less indentation than the inserted code (the `def` or `class` it
/// extends): its chunk, or the class's block when the class has no chunk
/// of its own. A top-level insertion between chunks falls in nothing.
fn edit_target(
    lines: &[&str],
    chunks: &[Chunk],
    placement: Placement,
    edit: Edit,
) -> Option<Target> {
    match edit {
        Edit::Removed(index) => {
            innermost_chunk(chunks, placement.line(index, lines.len())?).map(Target::from)
        }
        Edit::Inserted { before, indent } => {
            // Snapshot line the insertion comes before (may be past the end).
            let at = usize::try_from(before as isize + placement.offset).ok()?;
            let is_code = |l: &usize| lines.get(*l).is_some_and(|t| !t.trim().is_empty());
            let above = (0..at.min(lines.len())).rev().find(is_code);
            let below = (at..lines.len()).find(is_code);
            if let (Some(above), Some(below)) = (above, below) {
                let around = innermost_chunk(chunks, above)
                    .filter(|c| c.start_line as usize <= below + 1 && below < c.end_line as usize);
                if let Some(chunk) = around {
                    return Some(Target::from(chunk));
                }
            }
            if indent == 0 {
                return None;
            }
            let header = (0..at.min(lines.len()))
                .rev()
                .find(|l| is_code(l) && indentation(lines[*l]) < indent)?;
            match innermost_chunk(chunks, header) {
                Some(chunk) => Some(Target::from(chunk)),
                None => class_block(lines, chunks, header),
            }
        }
    }
}

/// The class whose header is 0-based line `header` when no chunk holds
/// that line (a class without docstring or fields is indexed as its
/// methods only): its lines, through the last one indented deeper, named
/// after the methods in it. Any of them found counts as finding it.
fn class_block(lines: &[&str], chunks: &[Chunk], header: usize) -> Option<Target> {
    let header_line = lines.get(header)?;
    if !header_line.trim_start().starts_with("class ") {
        return None;
    }
    let depth = indentation(header_line);
    let last = (header + 1..lines.len())
        .take_while(|&l| lines[l].trim().is_empty() || indentation(lines[l]) > depth)
        .filter(|&l| !lines[l].trim().is_empty())
        .last()?;
    let span = (header as u32 + 1, last as u32 + 1);
    let member = chunks
        .iter()
        .find(|c| span.0 < c.start_line && c.end_line <= span.1)?;
    let (class, _) = member.symbol.rsplit_once('.')?;
    Some(Target {
        symbol: class.to_string(),
        kind: ChunkKind::Class,
        lines: span,
    })
}

/// The function or class a hunk's section (`def name(...):`, git's
/// enclosing-definition line) names, when exactly one chunk symbol of the
/// file ends in that name.
fn section_target(chunks: &[Chunk], section: &str) -> Option<Target> {
    let definition = section.trim_start().trim_start_matches("async ");
    let rest = definition
        .strip_prefix("def ")
        .or_else(|| definition.strip_prefix("class "))?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let named = |c: &&Chunk| {
        !matches!(c.kind, ChunkKind::Module | ChunkKind::Window)
            && c.symbol.rsplit('.').next() == Some(name.as_str())
    };
    let mut matching = chunks.iter().filter(named);
    let first = matching.next()?;
    // Windows of one split function share its symbol; two symbols are ambiguous.
    if matching.any(|c| c.symbol != first.symbol) {
        return None;
    }
    let (start, end) = chunks
        .iter()
        .filter(|c| c.symbol == first.symbol && c.kind == first.kind)
        .fold((first.start_line, first.end_line), |(s, e), c| {
            (s.min(c.start_line), e.max(c.end_line))
        });
    Some(Target {
        symbol: first.symbol.clone(),
        kind: first.kind,
        lines: (start, end),
    })
}

/// The smallest chunk holding 0-based `line` (a method rather than its
/// class), a function or method when two are the same size.
fn innermost_chunk(chunks: &[Chunk], line: usize) -> Option<&Chunk> {
    let line = line as u32 + 1;
    chunks
        .iter()
        .filter(|c| c.start_line <= line && line <= c.end_line)
        .min_by_key(|c| {
            let callable = matches!(c.kind, ChunkKind::Function | ChunkKind::Method);
            (c.end_line - c.start_line, !callable)
        })
}

/// Every `.py` file under `root`, relative, `/`-separated (symlinks not
/// followed).
fn python_files(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() && path.extension().is_some_and(|e| e == "py") {
                if let Ok(rel) = path.strip_prefix(root) {
                    let parts: Vec<String> = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect();
                    found.push(parts.join("/"));
                }
            }
        }
    }
    found
}

/// The candidate sharing the longest tail of path components with
/// `wanted` (`src/pkg/mod.py` for `pkg/mod.py` and the reverse), at least
/// the file and its directory; the shortest path among equals.
fn best_suffix_match<'a>(wanted: &str, candidates: &'a [String]) -> Option<&'a str> {
    let wanted: Vec<&str> = wanted.split('/').collect();
    let shared = |candidate: &str| {
        candidate
            .split('/')
            .rev()
            .zip(wanted.iter().rev())
            .take_while(|(a, b)| a == *b)
            .count()
    };
    let needed = wanted.len().min(2);
    candidates
        .iter()
        .map(|c| (shared(c), c))
        .filter(|(n, _)| *n >= needed)
        .min_by_key(|(n, c)| (std::cmp::Reverse(*n), c.len()))
        .map(|(_, c)| c.as_str())
}

// ---------------------------------------------------------------- tests

#[cfg(test)]
mod tests {
    use super::*;
    use quarry_chunk::ApproxTokenCounter;

    /// Two files: one edited in two hunks, one new.
    const TWO_FILES: &str = "\
diff --git a/pkg/a.py b/pkg/a.py
--- a/pkg/a.py
+++ b/pkg/a.py
@@ -10,4 +10,4 @@ def f():
     x = 1
-    y = 2
+    y = 3
     return x
 
@@ -40,2 +40,4 @@ class C:
     def g(self):
+        log()
+
         pass
diff --git a/pkg/new.py b/pkg/new.py
new file mode 100644
--- /dev/null
+++ b/pkg/new.py
@@ -0,0 +1,2 @@
+def h():
+    return 1
";

    #[test]
    fn parses_files_hunks_and_new_files() {
        let files = parse_patch(TWO_FILES).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].old_path.as_deref(), Some("pkg/a.py"));
        assert_eq!(files[0].new_path.as_deref(), Some("pkg/a.py"));
        assert_eq!(files[0].hunks.len(), 2);
        let first = &files[0].hunks[0];
        assert_eq!(first.old_start, 10);
        assert_eq!(first.section, "def f():");
        // The blank context line at the end belongs to the hunk.
        assert_eq!(
            first.old_side(),
            ["    x = 1", "    y = 2", "    return x", ""]
        );
        assert_eq!(
            first.new_side(),
            ["    x = 1", "    y = 3", "    return x", ""]
        );
        assert_eq!(first.edits(), [Edit::Removed(1)]);
        let insert = &files[0].hunks[1];
        assert_eq!(
            insert.edits(),
            [Edit::Inserted {
                before: 1,
                indent: 8
            }]
        );
        assert_eq!(files[1].old_path, None);
        assert_eq!(files[1].new_path.as_deref(), Some("pkg/new.py"));
        assert_eq!(files[1].hunks[0].old_side(), Vec::<&str>::new());
        assert_eq!(
            files[1].hunks[0].edits(),
            [Edit::Inserted {
                before: 0,
                indent: 0
            }]
        );
    }

    #[test]
    fn hunk_counts_decide_what_is_a_header() {
        // A removed line reading "-- x" looks like a file header; the
        // header's counts say it is part of the hunk.
        let patch =
            "--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n--- x\n+x = 1\n\\ No newline at end of file\n";
        let files = parse_patch(patch).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].hunks[0].old_side(), ["-- x"]);
        assert_eq!(files[0].hunks[0].new_side(), ["x = 1"]);
        assert!(parse_patch("--- a/m.py\n+++ b/m.py\n@@ -1,3 +1,3 @@\n a\n").is_err());
        assert!(parse_patch("--- a/m.py\n+++ b/m.py\n@@ -x +1 @@\n").is_err());
        assert!(parse_patch("--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n?what\n").is_err());
    }

    #[test]
    fn deleted_file_keeps_its_old_path() {
        let patch = "diff --git a/gone.py b/gone.py\ndeleted file mode 100644\n--- a/gone.py\n+++ /dev/null\n@@ -1,1 +0,0 @@\n-x = 1\n";
        let files = parse_patch(patch).unwrap();
        assert_eq!(files[0].old_path.as_deref(), Some("gone.py"));
        assert_eq!(files[0].new_path, None);
        assert_eq!(files[0].hunks[0].edits(), [Edit::Removed(0)]);
    }

    #[test]
    fn replacement_is_no_insertion_and_blank_inserts_are_no_edits() {
        let patch = "--- a/m.py\n+++ b/m.py\n@@ -1,3 +1,5 @@\n a\n-b\n+c\n+d\n e\n+\n";
        let hunk = &parse_patch(patch).unwrap()[0].hunks[0];
        assert_eq!(hunk.edits(), [Edit::Removed(1)]);
    }

    #[test]
    fn locates_hunks_that_drifted() {
        let file: Vec<String> = (0..30).map(|i| format!("line {i}")).collect();
        let file: Vec<&str> = file.iter().map(String::as_str).collect();
        let old = ["line 12", "line 13", "line 14"];
        // The diff says line 5; the text is at 12.
        assert_eq!(
            locate_hunk(&old, &file, 4),
            Some(Placement {
                offset: 12,
                fit: Fit::Exact
            })
        );
        assert_eq!(locate_hunk(&["not here"], &file, 0), None);
        assert_eq!(locate_hunk(&[], &file, 0), None);
    }

    #[test]
    fn equal_blocks_go_to_the_nearest() {
        let file = ["a", "b", "x", "a", "b"];
        assert_eq!(locate_hunk(&["a", "b"], &file, 0).unwrap().offset, 0);
        assert_eq!(locate_hunk(&["a", "b"], &file, 4).unwrap().offset, 3);
    }

    #[test]
    fn locates_hunks_despite_whitespace() {
        let file = ["def f():", "  if  x:", "        return 1", ""];
        let old = ["def f():", "    if x:", "        return 1"];
        assert_eq!(
            locate_hunk(&old, &file, 0),
            Some(Placement {
                offset: 0,
                fit: Fit::Whitespace
            })
        );
    }

    #[test]
    fn locates_hunks_by_the_best_alignment() {
        let file = [
            "import os",
            "",
            "def f():",
            "    a = 1",
            "    b = 2",
            "    c = 3",
            "    d = 4",
            "    return a",
        ];
        // One context line changed since the diff was made.
        let old = [
            "    a = 1",
            "    b = 2",
            "    c = 3",
            "    d = 5",
            "    return a",
        ];
        assert_eq!(
            locate_hunk(&old, &file, 0),
            Some(Placement {
                offset: 3,
                fit: Fit::Partial
            })
        );
        // One matching line of several is too little to trust.
        let weak = ["    a = 1", "    zzz", "    yyy"];
        assert_eq!(locate_hunk(&weak, &file, 0), None);
    }

    /// A small module: imports, a function, a class with two methods.
    const SOURCE: &str = "\
import os
import sys


def top(x):
    y = x + 1
    return y


class Shape:
    \"\"\"A shape.\"\"\"

    def area(self):
        return 0

    def name(self):
        return 'shape'
";

    /// `source` chunked as a Python file.
    fn chunks_of(source: &str) -> Vec<Chunk> {
        quarry_chunk::chunk_source(
            Path::new("pkg/shapes.py"),
            source,
            &ChunkConfig::default(),
            &ApproxTokenCounter,
        )
    }

    /// The hunks of a one-file patch.
    fn hunks_of(patch: &str) -> Vec<Hunk> {
        parse_patch(patch).unwrap().remove(0).hunks
    }

    /// Symbol and kind of each gold chunk of `patch` on [`SOURCE`].
    fn gold_symbols(patch: &str) -> Vec<(String, ChunkKind)> {
        let chunks = chunks_of(SOURCE);
        let hunks = hunks_of(patch);
        gold_in_file("pkg/shapes.py", SOURCE, &chunks, &hunks)
            .functions
            .into_iter()
            .map(|gold| (gold.symbol, gold.kind))
            .collect()
    }

    #[test]
    fn gold_is_the_edited_functions_and_skips_import_glue() {
        // Line numbers off by 3; an import added too.
        let patch = "\
--- a/pkg/shapes.py
+++ b/pkg/shapes.py
@@ -1,2 +1,3 @@
 import os
+import re
 import sys
@@ -16,3 +17,3 @@ class Shape:
     def area(self):
-        return 0
+        return 1
 
";
        assert_eq!(
            gold_symbols(patch),
            [("Shape.area".to_string(), ChunkKind::Method)]
        );
    }

    #[test]
    fn insertion_inside_a_function_belongs_to_it() {
        let patch = "\
--- a/pkg/shapes.py
+++ b/pkg/shapes.py
@@ -5,3 +5,4 @@
 def top(x):
     y = x + 1
+    y += 1
     return y
";
        assert_eq!(
            gold_symbols(patch),
            [("top".to_string(), ChunkKind::Function)]
        );
    }

    #[test]
    fn new_method_belongs_to_its_class_and_import_to_the_module() {
        let patch = "\
--- a/pkg/shapes.py
+++ b/pkg/shapes.py
@@ -1,2 +1,3 @@
 import os
+import re
 import sys
@@ -14,3 +15,6 @@ class Shape:
         return 0
 
+    def sides(self):
+        return 0
+
     def name(self):
";
        let gold = gold_symbols(patch);
        assert_eq!(gold.len(), 2, "{gold:?}");
        assert!(gold.contains(&("Shape".to_string(), ChunkKind::Class)));
        assert!(gold.iter().any(|(_, kind)| *kind == ChunkKind::Module));
    }

    #[test]
    fn new_method_of_a_class_without_its_own_chunk_is_its_block() {
        // Too big to be emitted whole, no docstring: only its methods are chunks.
        let mut source = String::from("class Big:\n");
        for i in 0..30 {
            source.push_str(&format!(
                "    def m{i}(self, value):\n        total = value * {i} + self.offset\n        return total\n\n"
            ));
        }
        source.push_str("\nx = 1\n");
        let chunks = chunks_of(&source);
        assert!(chunks.iter().all(|c| c.start_line > 1), "{chunks:?}");
        let patch = "\
--- a/pkg/shapes.py
+++ b/pkg/shapes.py
@@ -7,3 +7,5 @@ class Big:
         return total
 
+    def added(self):
+        return 0
     def m2(self, value):
";
        let hunks = hunks_of(patch);
        let found = gold_in_file("pkg/shapes.py", &source, &chunks, &hunks);
        assert_eq!(found.functions.len(), 1, "{:?}", found.functions);
        let class = &found.functions[0];
        assert_eq!(
            (class.symbol.as_str(), class.kind),
            ("Big", ChunkKind::Class)
        );
        assert_eq!(class.ranges, [(1, 120)]);
    }

    #[test]
    fn a_rewritten_function_is_found_by_the_hunk_section() {
        let patch = "\
--- a/pkg/shapes.py
+++ b/pkg/shapes.py
@@ -30,3 +30,3 @@ def top(x):
     z = compute(x)
-    z += 2
+    z += 3
     return z
";
        let chunks = chunks_of(SOURCE);
        let hunks = hunks_of(patch);
        let found = gold_in_file("pkg/shapes.py", SOURCE, &chunks, &hunks);
        assert_eq!(found.by_section, 1);
        assert!(found.unplaced.is_empty());
        assert_eq!(found.functions[0].symbol, "top");
        assert_eq!(found.functions[0].ranges, [(5, 7)]);
        // A name two methods share says nothing.
        let two = "class A:\n    def run(self):\n        pass\n\nclass B:\n    def run(self):\n        pass\n";
        assert_eq!(section_target(&chunks_of(two), "def run(self):"), None);
        assert_eq!(
            section_target(&chunks_of(two), "class B:").unwrap().symbol,
            "B"
        );
    }

    #[test]
    fn the_snapshot_stays_below_the_next_series() {
        assert_eq!(next_minor("0.6").as_deref(), Some("0.7"));
        assert_eq!(next_minor("2.14").as_deref(), Some("2.15"));
        assert_eq!(next_minor("3"), None);
        assert_eq!(next_minor("1.x"), None);
    }

    #[test]
    fn unplaced_hunks_are_reported() {
        let patch = "\
--- a/pkg/shapes.py
+++ b/pkg/shapes.py
@@ -40,3 +40,3 @@ def gone():
     nothing
-    like
+    this
     here
";
        let chunks = chunks_of(SOURCE);
        let hunks = hunks_of(patch);
        let found = gold_in_file("pkg/shapes.py", SOURCE, &chunks, &hunks);
        assert!(found.functions.is_empty());
        assert_eq!(found.unplaced.len(), 1);
    }

    #[test]
    fn notices_a_fix_the_snapshot_already_has() {
        let fixed = SOURCE.replace("return 0", "return 1");
        let patch = "\
--- a/pkg/shapes.py
+++ b/pkg/shapes.py
@@ -10,7 +10,7 @@
 class Shape:
     \"\"\"A shape.\"\"\"
 
     def area(self):
-        return 0
+        return 1
 
     def name(self):
";
        let chunks = chunks_of(&fixed);
        let hunks = hunks_of(patch);
        let found = gold_in_file("pkg/shapes.py", &fixed, &chunks, &hunks);
        assert_eq!(found.already_applied, 1);
        assert_eq!(found.functions[0].symbol, "Shape.area");
        assert_eq!(found.functions[0].path, "pkg/shapes.py");
    }

    /// A search hit with just what ranking looks at.
    fn hit(path: &str, symbol: &str, lines: (u32, u32)) -> Hit {
        Hit {
            path: path.into(),
            root: "/r".into(),
            symbol: symbol.into(),
            kind: "function".into(),
            language: "python".into(),
            start_line: lines.0,
            end_line: lines.1,
            score: 0.0,
            text: String::new(),
            snippet_match: None,
        }
    }

    #[test]
    fn ranks_files_and_functions() {
        let gold = Gold {
            files: vec!["a.py".into()],
            missing_files: 1,
            functions: vec![
                GoldFunction {
                    path: "a.py".into(),
                    symbol: "C.f".into(),
                    kind: ChunkKind::Method,
                    ranges: vec![(10, 20)],
                },
                GoldFunction {
                    path: "a.py".into(),
                    symbol: "a".into(),
                    kind: ChunkKind::Module,
                    ranges: vec![(1, 3)],
                },
            ],
            missing_functions: 0,
            notes: Vec::new(),
        };
        let hits = [
            hit("b.py", "g", (1, 5)),
            hit("b.py", "g", (6, 9)),   // a second window of g: same rank
            hit("a.py", "a", (30, 40)), // another module chunk: not the gold one
            hit("a.py", "C", (8, 25)),  // the class around C.f overlaps it
            hit("a.py", "a", (1, 2)),
        ];
        assert_eq!(gold.file_ranks(&hits), [Some(2), None]);
        assert_eq!(gold.function_ranks(&hits), [Some(3), Some(2)]);
        assert_eq!(gold.function_ranks(&hits[..2]), [None, None]);
    }

    #[test]
    fn recognises_tests_and_moved_paths() {
        assert!(is_test_file("tests/test_x.py"));
        assert!(is_test_file("pkg/tests/helpers.py"));
        assert!(is_test_file("pkg/conftest.py"));
        assert!(!is_test_file("pkg/testimony.py"));
        let files = vec![
            "src/pkg/mod.py".to_string(),
            "other/mod.py".to_string(),
            "build/lib/src/pkg/mod.py".to_string(),
        ];
        assert_eq!(
            best_suffix_match("pkg/mod.py", &files),
            Some("src/pkg/mod.py")
        );
        assert_eq!(
            best_suffix_match("src/pkg/mod.py", &files[1..]),
            Some("build/lib/src/pkg/mod.py")
        );
        assert_eq!(best_suffix_match("lib/mod.py", &files), None);
    }
}
