//! Human-readable output: colours only on a terminal (and never with
//! `NO_COLOR`), matched query identifiers highlighted in snippets.

use std::io::IsTerminal;

use quarry_index::IndexReport;
use quarry_search::{SearchOutcome, SnippetMatch};
use quarry_store::IndexStatus;
use quarry_workspace::watch::WatchEvent;

/// Lines of each hit shown in the terminal.
const SNIPPET_LINES: usize = 12;
/// Skipped files listed individually before summarising the rest.
const SKIPPED_SHOWN: usize = 10;

struct Style {
    color: bool,
}

impl Style {
    fn detect() -> Self {
        Self {
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

pub fn print_index_report(report: &IndexReport) {
    println!(
        "Indexed {}: {} files scanned, {} changed, {} deleted, {} skipped; {} chunks ({} embedded{}) in {:.1}s (searchable by text after {:.1}s)",
        report.root,
        report.files_scanned,
        report.files_changed,
        report.files_deleted,
        report.skipped.len(),
        report.chunks_total,
        report.chunks_embedded,
        if report.chunks_from_cache > 0 {
            format!(", {} from the embedding cache", report.chunks_from_cache)
        } else {
            String::new()
        },
        report.seconds,
        report.searchable_seconds
    );
    if report.chunks_pending > 0 {
        println!(
            "  {} chunks are searchable by text only; run `quarry index` again to embed them for search by meaning",
            report.chunks_pending
        );
    }
    for skipped in report.skipped.iter().take(SKIPPED_SHOWN) {
        println!("  skipped {}: {}", skipped.path, skipped.reason);
    }
    if report.skipped.len() > SKIPPED_SHOWN {
        println!(
            "  ... and {} more skipped",
            report.skipped.len() - SKIPPED_SHOWN
        );
    }
    if !report.lossy_files.is_empty() {
        println!(
            "  {} file(s) were not valid UTF-8 and were indexed with replacement characters, e.g. {}",
            report.lossy_files.len(),
            report.lossy_files[0]
        );
    }
}

pub fn print_hits(outcome: &SearchOutcome) {
    let style = Style::detect();
    if outcome.hits.is_empty() {
        println!("No results ({} mode).", outcome.mode.as_str());
        return;
    }
    let mut needles: Vec<String> = outcome
        .analysis
        .identifiers
        .iter()
        .chain(outcome.analysis.terms.iter())
        .filter(|t| t.len() >= 3)
        .map(|t| t.to_lowercase())
        .collect();
    needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    needles.dedup();
    println!(
        "{} results ({} mode)",
        outcome.hits.len(),
        outcome.mode.as_str()
    );
    for (rank, hit) in outcome.hits.iter().enumerate() {
        println!();
        println!(
            "{} {} {}  {}  {}",
            style.paint("1;36", &format!("{:>2}.", rank + 1)),
            style.paint("2", &format!("{:.4}", hit.score)),
            style.paint(
                "1;32",
                &format!("{}:{}-{}", hit.path, hit.start_line, hit.end_line)
            ),
            style.paint("1", &hit.symbol),
            style.paint(
                "2",
                &format!("{} {} in {}", hit.language, hit.kind, hit.root)
            ),
        );
        match hit.snippet_match {
            Some(SnippetMatch::Exact) => println!("    {}", style.paint("1;33", "your snippet")),
            Some(SnippetMatch::Contains) => {
                println!("    {}", style.paint("1;33", "contains your snippet"))
            }
            None => {}
        }
        let lines: Vec<&str> = hit.text.lines().collect();
        for (i, line) in lines.iter().take(SNIPPET_LINES).enumerate() {
            let number = hit.start_line as usize + i;
            println!(
                "{} {}",
                style.paint("2", &format!("{number:>5} │")),
                highlight(line, &needles, &style)
            );
        }
        if lines.len() > SNIPPET_LINES {
            println!(
                "{}",
                style.paint(
                    "2",
                    &format!("      │ ... {} more lines", lines.len() - SNIPPET_LINES)
                )
            );
        }
    }
}

/// Marks case-insensitive occurrences of `needles` in `line`.
fn highlight(line: &str, needles: &[String], style: &Style) -> String {
    if !style.color || needles.is_empty() {
        return line.to_string();
    }
    let lower = line.to_lowercase();
    if lower.len() != line.len() {
        // Lower-casing changed byte offsets (non-ASCII): show it plain.
        return line.to_string();
    }
    let mut marked = vec![false; line.len()];
    for needle in needles {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(needle.as_str()) {
            let start = from + pos;
            marked[start..start + needle.len()]
                .iter_mut()
                .for_each(|m| *m = true);
            from = start + needle.len();
        }
    }
    let mut out = String::new();
    let mut in_mark = false;
    for (i, ch) in line.char_indices() {
        if marked[i] != in_mark {
            out.push_str(if marked[i] { "\x1b[1;33m" } else { "\x1b[0m" });
            in_mark = marked[i];
        }
        out.push(ch);
    }
    if in_mark {
        out.push_str("\x1b[0m");
    }
    out
}

pub fn print_status(status: &IndexStatus) {
    println!("Index:   {}", status.db.display());
    println!(
        "Model:   {} ({}-d, schema v{})",
        status.meta.model, status.meta.dim, status.meta.schema_version
    );
    println!(
        "Size:    {:.1} MiB on disk, {} versions",
        status.bytes as f64 / (1024.0 * 1024.0),
        status.versions
    );
    println!(
        "Totals:  {} files, {} chunks, {} distinct texts embedded",
        status.files, status.chunks, status.vectors
    );
    if status.pending > 0 {
        println!(
            "Pending: {} chunks not embedded yet (searchable by text; `quarry index` finishes them)",
            status.pending
        );
    }
    if status.roots.is_empty() {
        println!("Nothing indexed yet: `quarry index DIR`.");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for root in &status.roots {
        let indexed = match root.last_indexed {
            Some(at) => format!("indexed {} ago", age(now.saturating_sub(at))),
            None => "last run unknown".to_string(),
        };
        println!(
            "  {}  {} files, {} chunks, {indexed}",
            root.root, root.files, root.chunks
        );
    }
}

/// A duration in the largest whole unit: `42 s`, `5 min`, `3 h`, `2 days`.
fn age(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

/// One line per watcher event: a time stamp and what happened, or a JSON
/// object with an `event` field.
pub fn print_watch_event(event: &WatchEvent, json: bool) {
    let value = match event {
        WatchEvent::Ready => serde_json::json!({ "event": "ready" }),
        WatchEvent::Waited => serde_json::json!({ "event": "waited" }),
        WatchEvent::Batch(batch) => serde_json::json!({
            "event": "batch",
            "root": batch.root,
            "paths": batch.paths,
            "full": batch.full,
            "files_changed": batch.report.files_changed,
            "files_deleted": batch.report.files_deleted,
            "chunks_embedded": batch.report.chunks_embedded,
            "chunks_reused": batch.report.chunks_reused,
            "chunks_from_cache": batch.report.chunks_from_cache,
            "searchable_seconds": batch.report.searchable_seconds,
            "seconds": batch.report.seconds,
        }),
        WatchEvent::Failed { root, problem } => serde_json::json!({
            "event": "failed", "root": root, "message": problem.message, "hint": problem.hint,
        }),
        WatchEvent::Optimized { seconds } => {
            serde_json::json!({ "event": "optimized", "seconds": seconds })
        }
    };
    if json {
        println!("{value}");
        return;
    }
    let line = match event {
        WatchEvent::Ready => "watching for changes (Ctrl-C stops)".to_string(),
        WatchEvent::Waited => "waited for another quarry process writing to the index".to_string(),
        WatchEvent::Batch(b) => format!(
            "{}: {} changed, {} deleted, {} chunks embedded ({:.2} s){}",
            b.root,
            b.report.files_changed,
            b.report.files_deleted,
            b.report.chunks_embedded,
            b.report.seconds,
            if b.full {
                ", ignore rules changed: checked everything"
            } else {
                ""
            }
        ),
        WatchEvent::Failed { root, problem } => format!(
            "{root}: {}{}",
            problem.message,
            problem
                .hint
                .as_deref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default()
        ),
        WatchEvent::Optimized { seconds } => format!("compacted the index ({seconds:.2} s)"),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (h, m, s) = ((now / 3600) % 24, (now / 60) % 60, now % 60);
    println!("{h:02}:{m:02}:{s:02} UTC  {line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlight_marks_case_insensitively() {
        let style = Style { color: true };
        let out = highlight("fn parse_config(p)", &["parse_config".into()], &style);
        assert_eq!(out, "fn \x1b[1;33mparse_config\x1b[0m(p)");
        let plain = Style { color: false };
        assert_eq!(highlight("abc", &["b".into()], &plain), "abc");
        // Lower-casing `İ` changes byte offsets: the line is shown unmarked.
        assert_eq!(highlight("İ parse", &["parse".into()], &style), "İ parse");
    }
}
