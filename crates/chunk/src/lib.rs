//! Split a source file into search chunks (functions, methods, small
//! classes/impls/traits, module-level code) with tree-sitter.
//!
//! Languages are data: a grammar, a `.scm` query under
//! `crates/chunk/languages/<lang>/chunks.scm` and one row of the table in
//! `languages.rs`. See `crates/chunk/README.md` for the capture contract and
//! the per-language symbol conventions.

mod extract;
mod highlight;
mod languages;

use std::path::Path;

use extract::{Def, DefKind};
pub use highlight::{check_highlight_queries, highlight, Token, CLASSES, MAX_HIGHLIGHT_BYTES};

/// What kind of code a chunk holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkKind {
    Function,
    Method,
    Class,
    Struct,
    Enum,
    Trait,
    Interface,
    Impl,
    /// Top-level code between definitions (imports, constants, statements).
    Module,
    /// Line window of an unparsable file or a file without a grammar.
    Window,
}

impl ChunkKind {
    const ALL: [ChunkKind; 10] = [
        ChunkKind::Function,
        ChunkKind::Method,
        ChunkKind::Class,
        ChunkKind::Struct,
        ChunkKind::Enum,
        ChunkKind::Trait,
        ChunkKind::Interface,
        ChunkKind::Impl,
        ChunkKind::Module,
        ChunkKind::Window,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            ChunkKind::Function => "function",
            ChunkKind::Method => "method",
            ChunkKind::Class => "class",
            ChunkKind::Struct => "struct",
            ChunkKind::Enum => "enum",
            ChunkKind::Trait => "trait",
            ChunkKind::Interface => "interface",
            ChunkKind::Impl => "impl",
            ChunkKind::Module => "module",
            ChunkKind::Window => "window",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Kinds that hold other definitions (methods).
    fn is_container(self) -> bool {
        matches!(
            self,
            ChunkKind::Class
                | ChunkKind::Struct
                | ChunkKind::Enum
                | ChunkKind::Trait
                | ChunkKind::Interface
                | ChunkKind::Impl
        )
    }

    fn is_callable(self) -> bool {
        matches!(self, ChunkKind::Function | ChunkKind::Method)
    }
}

impl std::fmt::Display for ChunkKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One search chunk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Chunk {
    /// `"rust"`, `"python"`, ..., or `"text"` for files without a grammar.
    pub language: String,
    pub kind: ChunkKind,
    /// Qualified symbol (`Type::method`, `Class.method`, ...); the file stem
    /// for module chunks, the file name for windows.
    pub symbol: String,
    /// 1-based inclusive, including attached doc comments / decorators / attributes.
    pub start_line: u32,
    /// 1-based inclusive.
    pub end_line: u32,
    /// Exact source lines `start_line..=end_line` (capped in size for giant lines).
    pub text: String,
    /// Header line (path, kind, symbol), enclosing context lines, repeated
    /// signature for later windows of a split function, then the text.
    pub embed_text: String,
}

/// Counts model tokens.
pub trait TokenCounter: Sync {
    fn count(&self, text: &str) -> usize;
}

/// Cheap approximation of a BERT wordpiece count: every punctuation
/// character is a token, identifiers are split at case/digit boundaries and
/// `_`, and long pieces count one token per 5 bytes. Slightly over-estimates.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApproxTokenCounter;

impl TokenCounter for ApproxTokenCounter {
    fn count(&self, text: &str) -> usize {
        let mut count = 0usize;
        let mut piece_len = 0usize;
        let mut prev: Option<char> = None;
        let piece_tokens = |len: usize| if len == 0 { 0 } else { 1 + (len - 1) / 5 };
        for c in text.chars() {
            if c.is_ascii_alphanumeric() {
                let boundary = match prev {
                    Some(p) => {
                        (p.is_ascii_lowercase() && c.is_ascii_uppercase())
                            || (p.is_ascii_digit() != c.is_ascii_digit())
                    }
                    None => false,
                };
                if boundary {
                    count += piece_tokens(piece_len);
                    piece_len = 0;
                }
                piece_len += 1;
                prev = Some(c);
            } else {
                count += piece_tokens(piece_len);
                piece_len = 0;
                prev = None;
                if !c.is_whitespace() {
                    count += 1;
                }
            }
        }
        count + piece_tokens(piece_len)
    }
}

/// Chunking parameters.
#[derive(Clone, Debug)]
pub struct ChunkConfig {
    /// Token budget of one chunk (the embedding model window).
    pub max_tokens: usize,
    /// Overlap between windows of a split function, in lines.
    pub window_overlap_lines: usize,
    /// Window size for files without a usable parse, in lines.
    pub fallback_window_lines: usize,
    /// Overlap between fallback windows, in lines.
    pub fallback_overlap_lines: usize,
    /// A class/impl/trait up to this many tokens is also emitted whole.
    pub small_container_tokens: usize,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        ChunkConfig {
            max_tokens: 256,
            window_overlap_lines: 5,
            fallback_window_lines: 40,
            fallback_overlap_lines: 8,
            small_container_tokens: 256,
        }
    }
}

/// Language detected from the file name/extension, or a `#!` first line.
/// `None` if no grammar applies.
pub fn detect_language(path: &Path, first_line: Option<&str>) -> Option<&'static str> {
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if let Some(l) = languages::LANGUAGES
        .iter()
        .find(|l| l.file_names.contains(&file_name))
    {
        return Some(l.name);
    }
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        let ext = ext.to_ascii_lowercase();
        if let Some(l) = languages::LANGUAGES
            .iter()
            .find(|l| l.extensions.contains(&ext.as_str()))
        {
            return Some(l.name);
        }
    }
    let interpreter = shebang_interpreter(first_line?)?;
    languages::LANGUAGES
        .iter()
        .find(|l| {
            l.shebangs.iter().any(|s| {
                interpreter
                    .strip_prefix(s)
                    .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '.'))
            })
        })
        .map(|l| l.name)
}

/// `#!/usr/bin/env -S python3 -u` -> `python3`.
fn shebang_interpreter(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("#!")?;
    let mut words = rest.split_whitespace();
    let first = words.next()?;
    let base = first.rsplit('/').next()?;
    if base == "env" {
        words.find(|w| !w.starts_with('-') && !w.contains('='))
    } else {
        Some(base)
    }
}

/// All supported language names.
pub fn languages() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| languages::LANGUAGES.iter().map(|l| l.name).collect())
}

/// Compile every language's grammar and query; `Err` lists the failures.
/// (Used by tests/CI to check the checked-in `.scm` files.)
pub fn check_queries() -> Result<(), String> {
    let errors: Vec<String> = languages::LANGUAGES
        .iter()
        .filter_map(|l| languages::load(l).err())
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// A line longer than this marks the file as minified/generated: it is
/// windowed instead of parsed into definitions.
const MINIFIED_LINE_BYTES: usize = 64 * 1024;

/// Chunk one file. `rel_path` is the path relative to the indexed root.
/// Never panics on any input; empty input yields no chunks.
pub fn chunk_source(
    rel_path: &Path,
    source: &str,
    config: &ChunkConfig,
    tokens: &dyn TokenCounter,
) -> Vec<Chunk> {
    if source.trim().is_empty() {
        return Vec::new();
    }
    let cfg = sanitize(config);
    let first_line = source.lines().next();
    let language = detect_language(rel_path, first_line);
    let file = File::new(rel_path, source, &cfg, tokens);

    let Some(lang) = language else {
        return file.windows("text");
    };
    if file.lines.iter().any(|&(s, e)| e - s > MINIFIED_LINE_BYTES) {
        return file.windows(lang);
    }
    let spec = languages::spec(lang).expect("detected languages are in the table");
    let Some(loaded) = languages::loaded(lang) else {
        return file.windows(lang);
    };
    let Some(extracted) = extract::extract(source, spec, loaded) else {
        return file.windows(lang);
    };
    let mut chunks = file.def_chunks(lang, spec.separator, &extracted.defs);
    let has_defs = chunks.iter().any(|c| c.kind != ChunkKind::Module);
    if extracted.has_error && !has_defs {
        tracing::debug!(path = %rel_path.display(), "unparsable file, using line windows");
        return file.windows(lang);
    }
    chunks.sort_by_key(|c| (c.start_line, std::cmp::Reverse(c.end_line)));
    chunks
}

fn sanitize(c: &ChunkConfig) -> ChunkConfig {
    ChunkConfig {
        max_tokens: c.max_tokens.max(16),
        window_overlap_lines: c.window_overlap_lines,
        fallback_window_lines: c.fallback_window_lines.max(1),
        fallback_overlap_lines: c.fallback_overlap_lines,
        small_container_tokens: c.small_container_tokens,
    }
}

/// Truncate to at most `max` bytes at a char boundary.
pub(crate) fn truncate_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A line holding nothing worth indexing on its own.
fn is_trivial_line(line: &str) -> bool {
    let t = line.trim();
    // `}  // namespace foo` closes something and says nothing new.
    let closing = t.starts_with(['}', ')', ']']);
    let t = match t.find("//") {
        Some(i) if closing => t[..i].trim_end(),
        _ => t,
    };
    t.chars().all(|c| "{}[]();,".contains(c)) || matches!(t, "end" | "<?php" | "?>")
}

/// The file being chunked: lines, per-line token counts and helpers.
struct File<'a> {
    rel: String,
    stem: String,
    file_name: String,
    source: &'a str,
    /// Byte range of each line, without the line terminator.
    lines: Vec<(usize, usize)>,
    /// Prefix sums of per-line token counts.
    prefix: Vec<usize>,
    cfg: &'a ChunkConfig,
    tokens: &'a dyn TokenCounter,
    max_text_bytes: usize,
}

/// Extra text placed in front of a chunk's text in `embed_text`.
struct Framing<'s> {
    kind: ChunkKind,
    symbol: &'s str,
    context: Vec<String>,
    /// Signature lines (rows) to repeat in windows that start after them.
    signature: Option<(usize, usize)>,
}

impl<'a> File<'a> {
    fn new(
        rel_path: &Path,
        source: &'a str,
        cfg: &'a ChunkConfig,
        tokens: &'a dyn TokenCounter,
    ) -> Self {
        let max_text_bytes = (cfg.max_tokens * 16).max(1024);
        let mut lines = Vec::new();
        let mut start = 0;
        for (i, b) in source.bytes().enumerate() {
            if b == b'\n' {
                let end = if i > start && source.as_bytes()[i - 1] == b'\r' {
                    i - 1
                } else {
                    i
                };
                lines.push((start, end));
                start = i + 1;
            }
        }
        if start < source.len() {
            lines.push((start, source.len()));
        }
        let mut prefix = Vec::with_capacity(lines.len() + 1);
        prefix.push(0);
        let mut sum = 0;
        for &(s, e) in &lines {
            // Giant lines are counted on their kept prefix only (they get truncated anyway).
            sum += tokens
                .count(truncate_str(&source[s..e], max_text_bytes))
                .max(1);
            prefix.push(sum);
        }
        let file_name = rel_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = rel_path
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        File {
            rel: rel_path.to_string_lossy().replace('\\', "/"),
            stem,
            file_name,
            source,
            lines,
            prefix,
            cfg,
            tokens,
            max_text_bytes,
        }
    }

    fn line(&self, row: usize) -> &'a str {
        self.lines.get(row).map_or("", |&(s, e)| &self.source[s..e])
    }

    fn last_row(&self) -> usize {
        self.lines.len().saturating_sub(1)
    }

    /// Token count of rows `s..=e`.
    fn row_tokens(&self, s: usize, e: usize) -> usize {
        self.prefix[e + 1] - self.prefix[s]
    }

    fn make_chunk(&self, lang: &str, f: &Framing, s: usize, e: usize) -> Chunk {
        let raw = &self.source[self.lines[s].0..self.lines[e].1];
        let text = truncate_str(raw, self.max_text_bytes);
        let e = if text.len() < raw.len() {
            s + text.matches('\n').count()
        } else {
            e
        };
        let mut embed = self.header(f);
        for c in &f.context {
            embed.push_str(c);
            embed.push('\n');
        }
        if let Some((sig_s, sig_e)) = f.signature {
            if s > sig_s {
                for row in sig_s..=sig_e.min(s - 1) {
                    embed.push_str(truncate_str(self.line(row), 400));
                    embed.push('\n');
                }
            }
        }
        embed.push_str(text);
        Chunk {
            language: lang.to_string(),
            kind: f.kind,
            symbol: f.symbol.to_string(),
            start_line: (s + 1) as u32,
            end_line: (e + 1) as u32,
            text: text.to_string(),
            embed_text: embed,
        }
    }

    fn header(&self, f: &Framing) -> String {
        if f.symbol.is_empty() {
            format!("{}: {}\n", self.rel, f.kind)
        } else {
            format!("{}: {} {}\n", self.rel, f.kind, f.symbol)
        }
    }

    /// Tokens the framing adds in front of the text (header, context, signature).
    fn framing_tokens(&self, f: &Framing) -> usize {
        let mut n = self.tokens.count(&self.header(f));
        for c in &f.context {
            n += self.tokens.count(c);
        }
        if let Some((s, e)) = f.signature {
            n += self.row_tokens(s, e);
        }
        n
    }

    /// Split rows `s..=e` into windows of at most `budget` tokens (and at most
    /// `max_lines` lines), overlapping by up to `overlap` lines. A tail of
    /// trivial lines (closing braces) is folded into the previous window.
    fn split(
        &self,
        s: usize,
        e: usize,
        budget: usize,
        max_lines: usize,
        overlap: usize,
    ) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut start = s;
        loop {
            let mut end = start;
            while end < e
                && end + 1 - start < max_lines
                && self.row_tokens(start, end + 1) <= budget
            {
                end += 1;
            }
            if end < e && (end + 1..=e).all(|r| is_trivial_line(self.line(r))) {
                end = e;
            }
            out.push((start, end));
            if end >= e {
                break;
            }
            let len = end + 1 - start;
            start = end + 1 - overlap.min(len / 2);
        }
        out
    }

    /// Emit rows `s..=e` as one chunk, or as windows when over the budget.
    fn emit(
        &self,
        out: &mut Vec<Chunk>,
        lang: &str,
        f: &Framing,
        s: usize,
        e: usize,
        overlap: usize,
    ) {
        if self.row_tokens(s, e) <= self.cfg.max_tokens {
            out.push(self.make_chunk(lang, f, s, e));
            return;
        }
        let max = self.cfg.max_tokens;
        let budget = max.saturating_sub(self.framing_tokens(f)).max(max / 2);
        for (ws, we) in self.split(s, e, budget, usize::MAX, overlap) {
            out.push(self.make_chunk(lang, f, ws, we));
        }
    }

    /// The non-trivial runs of rows in `s..` not marked in `covered`
    /// (indexed from `s`), trimmed of blank lines.
    fn gap_runs(&self, s: usize, covered: &[bool]) -> Vec<(usize, usize)> {
        let mut runs = Vec::new();
        let mut row = 0;
        while row < covered.len() {
            if covered[row] {
                row += 1;
                continue;
            }
            let run_start = row;
            while row < covered.len() && !covered[row] {
                row += 1;
            }
            let (mut a, mut b) = (s + run_start, s + row - 1);
            while a <= b && self.line(a).trim().is_empty() {
                a += 1;
            }
            while b > a && self.line(b).trim().is_empty() {
                b -= 1;
            }
            if a > b || (a..=b).all(|r| is_trivial_line(self.line(r))) {
                continue;
            }
            runs.push((a, b));
        }
        runs
    }

    /// Line windows over the whole file (no grammar, or no usable parse).
    fn windows(&self, lang: &str) -> Vec<Chunk> {
        let Some(last) = self.lines.len().checked_sub(1) else {
            return Vec::new();
        };
        let f = Framing {
            kind: ChunkKind::Window,
            symbol: &self.file_name,
            context: Vec::new(),
            signature: None,
        };
        let max = self.cfg.max_tokens;
        let budget = max.saturating_sub(self.framing_tokens(&f)).max(max / 2);
        let (mut s, mut e) = (0, last);
        while s < e && self.line(s).trim().is_empty() {
            s += 1;
        }
        while e > s && self.line(e).trim().is_empty() {
            e -= 1;
        }
        self.split(
            s,
            e,
            budget,
            self.cfg.fallback_window_lines,
            self.cfg.fallback_overlap_lines,
        )
        .into_iter()
        .map(|(a, b)| self.make_chunk(lang, &f, a, b))
        .collect()
    }

    /// Chunks from extracted definitions, plus module-level gap chunks.
    fn def_chunks(&self, lang: &str, sep: &str, defs: &[Def]) -> Vec<Chunk> {
        let last = self.last_row();
        // Resolve each definition: dropped (nested in a function), effective
        // kind (a function directly inside a container is a method), symbol.
        let mut dropped = vec![false; defs.len()];
        let mut kinds: Vec<DefKind> = Vec::with_capacity(defs.len());
        let mut symbols: Vec<String> = Vec::with_capacity(defs.len());
        for (i, d) in defs.iter().enumerate() {
            let mut kind = d.kind;
            let mut symbol = d.name.clone();
            if let Some(p) = d.parent {
                dropped[i] = dropped[p] || matches!(kinds[p], DefKind::Chunk(k) if k.is_callable());
                if let (DefKind::Chunk(ChunkKind::Function), DefKind::Chunk(pk)) = (kind, kinds[p])
                {
                    if pk.is_container() {
                        kind = DefKind::Chunk(ChunkKind::Method);
                    }
                }
                symbol = format!("{}{}{}", symbols[p], sep, d.name);
            }
            kinds.push(kind);
            symbols.push(symbol);
        }
        let context_of = |i: usize| -> Vec<String> {
            let mut ctx = Vec::new();
            let mut p = defs[i].parent;
            while let Some(pi) = p {
                ctx.push(truncate_str(self.line(defs[pi].name_row).trim(), 400).to_string());
                p = defs[pi].parent;
                if ctx.len() > 16 {
                    break;
                }
            }
            ctx.reverse();
            ctx
        };

        let mut out = Vec::new();
        let mut covered = vec![false; last + 1];
        for (i, d) in defs.iter().enumerate() {
            let DefKind::Chunk(kind) = kinds[i] else {
                continue;
            };
            if dropped[i] {
                continue;
            }
            let (s, e) = (d.start_row.min(last), d.end_row.min(last));
            covered[s..=e].iter_mut().for_each(|c| *c = true);
            if kind.is_callable() {
                let sig_e = d.sig_end_row.min(d.name_row + 8);
                let f = Framing {
                    kind,
                    symbol: &symbols[i],
                    context: context_of(i),
                    signature: Some((d.name_row, sig_e)),
                };
                self.emit(&mut out, lang, &f, s, e, self.cfg.window_overlap_lines);
                continue;
            }
            // A container.
            let context = context_of(i);
            if self.row_tokens(s, e) <= self.cfg.small_container_tokens {
                let f = Framing {
                    kind,
                    symbol: &symbols[i],
                    context,
                    signature: None,
                };
                self.emit(&mut out, lang, &f, s, e, self.cfg.window_overlap_lines);
                continue;
            }
            // Large: the lines not covered by nested definitions (header,
            // fields, ...) become chunks of the container's kind.
            let mut inner = vec![false; e + 1 - s];
            for (j, c) in defs.iter().enumerate().skip(i + 1) {
                if c.start_byte >= d.end_byte {
                    break;
                }
                if dropped[j] || matches!(kinds[j], DefKind::Scope) {
                    continue;
                }
                let (cs, ce) = (c.start_row.max(s), c.end_row.min(e));
                if cs <= ce {
                    inner[cs - s..=ce - s].iter_mut().for_each(|x| *x = true);
                }
            }
            let header_line = truncate_str(self.line(d.name_row).trim(), 400).to_string();
            let has_children = inner.iter().any(|&x| x);
            for (a, b) in self.gap_runs(s, &inner) {
                // A lone `impl Foo {` / `class Foo:` line says nothing the
                // method chunks (which carry it as context) do not.
                if has_children && a == b && a == d.name_row {
                    continue;
                }
                // The container's own header line is context for runs after it.
                let mut context = context.clone();
                if a > d.name_row {
                    context.push(header_line.clone());
                }
                let f = Framing {
                    kind,
                    symbol: &symbols[i],
                    context,
                    signature: None,
                };
                self.emit(&mut out, lang, &f, a, b, 0);
            }
        }
        let f = Framing {
            kind: ChunkKind::Module,
            symbol: &self.stem,
            context: Vec::new(),
            signature: None,
        };
        for (a, b) in self.gap_runs(0, &covered) {
            self.emit(&mut out, lang, &f, a, b, 0);
        }
        out
    }
}
