//! Code → code retrieval: paste a function, find its counterpart in the
//! code base. Two variants over the newer release of each project (indexed
//! with the real pipeline):
//!
//! - changed between releases: the query is a function as it was in the
//!   older release, the gold is the same function (same path, same
//!   qualified symbol) in the newer one, for functions that were edited but
//!   are still recognisably the same ([`is_same_function_edited`]);
//! - identifiers renamed: the query is a function of the newer release with
//!   its parameters and local variables consistently renamed to `v1, v2, …`
//!   ([`rename_locals`]), the gold is the function itself.
//!
//! Both are capped at [`MAX_QUERIES_PER_VARIANT`] queries, evenly spaced
//! over the list sorted by project, path and symbol, so runs are
//! reproducible.

use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;
use std::path::Path;

use anyhow::Result;
use quarry_models::Embedder;
use quarry_store::Store;

use super::docstrings::{
    depth_after, functions, index_corpus, keyword_index, python_header_end, rank_of, skip,
    source_files, spread_sample, tokenize, write_corpus, Function, Gold, Lang, Query, Token,
    TokenKind,
};
use super::metrics::Metrics;
use super::{Config, Row};

/// Projects with many edited functions between two releases: (name, older
/// version, newer version, language).
const RELEASE_PAIRS: [(&str, &str, &str, Lang); 3] = [
    ("click", "8.0.4", "8.1.7", Lang::Python),
    ("flask", "2.3.3", "3.0.3", Lang::Python),
    ("regex-syntax", "0.7.5", "0.8.5", Lang::Rust),
];

/// Cap per variant, pooled over the projects.
const MAX_QUERIES_PER_VARIANT: usize = 200;

/// Normalised line similarity ([`line_similarity`]) of an edited function
/// to its new version: below, it was rewritten rather than edited; above,
/// the edit is a line or two in a long function, nearly a copy.
const SAME_FUNCTION_EDITED: RangeInclusive<f64> = 0.5..=0.97;

/// A renamed function must have this many names renamed to differ from the
/// indexed text in more than a parameter.
const MIN_RENAMED_NAMES: usize = 2;

/// ... and this many non-blank lines, so one-line accessors (which look
/// alike across a project) do not make up the set.
const MIN_RENAMED_LINES: usize = 3;

/// Runs both variants under each of `configs`: `work` holds the sources,
/// corpora and indexes between runs.
pub async fn run(work: &Path, embedder: &Embedder, configs: &[Config]) -> Result<Vec<Row>> {
    let mut stores: Vec<(String, Store)> = Vec::new();
    let mut changed: Vec<(usize, Query)> = Vec::new();
    let mut renamed: Vec<(usize, Query)> = Vec::new();
    for (name, old_version, new_version, lang) in RELEASE_PAIRS {
        let project = format!("{name}-{new_version}");
        let (old_files, _) = source_files(&lang.fetch(work, name, old_version)?, lang)?;
        let (new_files, skipped) = source_files(&lang.fetch(work, name, new_version)?, lang)?;
        let corpus = work.join("corpus").join(&project);
        write_corpus(&corpus, &new_files)?;

        let mut before: HashMap<(String, String), Function> = HashMap::new();
        for (path, source) in &old_files {
            for function in functions(path, source, lang) {
                before.insert((function.path.clone(), function.symbol.clone()), function);
            }
        }
        let project_index = stores.len();
        let (mut common, mut edited, mut with_locals) = (0, 0, 0);
        let mut project_changed = Vec::new();
        let mut project_renamed = Vec::new();
        for (path, source) in &new_files {
            for function in functions(path, source, lang) {
                if let Some(old) = before.get(&(function.path.clone(), function.symbol.clone())) {
                    common += 1;
                    if old.text != function.text {
                        edited += 1;
                    }
                    if is_same_function_edited(&old.text, &function.text) {
                        project_changed.push(Query {
                            text: old.text.clone(),
                            gold: Gold::of(&function),
                        });
                    }
                }
                let lines = function
                    .text
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .count();
                let (text, count) = rename_locals(&function.text, lang);
                if count > 0 {
                    with_locals += 1;
                }
                if count >= MIN_RENAMED_NAMES && lines >= MIN_RENAMED_LINES {
                    project_renamed.push(Query {
                        text,
                        gold: Gold::of(&function),
                    });
                }
            }
        }
        eprintln!(
            "{project}: {} files ({skipped} skipped), {common} functions in both releases, \
             {edited} differ, {} edited in the band; {with_locals} with locals, {} renamable",
            new_files.len(),
            project_changed.len(),
            project_renamed.len()
        );
        for queries in [&mut project_changed, &mut project_renamed] {
            queries.sort_by(|a, b| {
                (&a.gold.path, &a.gold.symbol).cmp(&(&b.gold.path, &b.gold.symbol))
            });
        }
        changed.extend(project_changed.into_iter().map(|q| (project_index, q)));
        renamed.extend(project_renamed.into_iter().map(|q| (project_index, q)));
        stores.push((
            project.clone(),
            index_corpus(work, &project, embedder, &corpus).await?,
        ));
    }
    let changed = spread_sample(changed, MAX_QUERIES_PER_VARIANT);
    let renamed = spread_sample(renamed, MAX_QUERIES_PER_VARIANT);

    let mut rows = Vec::new();
    for config in configs {
        for (suite, queries) in [
            (
                format!(
                    "Code → code: changed between releases ({} pairs)",
                    changed.len()
                ),
                &changed,
            ),
            (
                format!(
                    "Code → code: identifiers renamed ({} functions)",
                    renamed.len()
                ),
                &renamed,
            ),
        ] {
            let mut ranks = Vec::with_capacity(queries.len());
            let mut per_project: Vec<Vec<Option<usize>>> = vec![Vec::new(); stores.len()];
            for (project_index, query) in queries {
                let rank = rank_of(&stores[*project_index].1, embedder, config, query).await?;
                ranks.push(rank);
                per_project[*project_index].push(rank);
            }
            for ((project, _), project_ranks) in stores.iter().zip(&per_project) {
                let m = Metrics::from_ranks(project_ranks);
                eprintln!(
                    "{}: {suite}: {project}: {} queries, Acc@1 {:.1}, MRR@100 {:.1}",
                    config.name,
                    project_ranks.len(),
                    m.recall1 * 100.0,
                    m.mrr * 100.0
                );
            }
            let m = Metrics::from_ranks(&ranks);
            rows.push(Row {
                suite,
                config: config.name.clone(),
                metrics: vec![("Acc@1".into(), m.recall1), ("MRR@100".into(), m.mrr)],
            });
        }
    }
    Ok(rows)
}

/// Whether `old` and `new` are one function edited between releases: the
/// texts differ and their [`line_similarity`] is in
/// [`SAME_FUNCTION_EDITED`] (so whitespace-only changes, which score 1,
/// are out).
fn is_same_function_edited(old: &str, new: &str) -> bool {
    old != new && SAME_FUNCTION_EDITED.contains(&line_similarity(old, new))
}

/// Similarity of two texts by lines, ignoring indentation and blank lines:
/// 2 × (longest common subsequence of lines) / (lines of both), as
/// difflib's ratio computes it on lines. 1 for identical, 0 for disjoint.
fn line_similarity(a: &str, b: &str) -> f64 {
    let normalise = |text| -> Vec<&str> {
        str::lines(text)
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    };
    let (a, b) = (normalise(a), normalise(b));
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    2.0 * longest_common_subsequence(&a, &b) as f64 / (a.len() + b.len()) as f64
}

/// Length of the longest common subsequence, one row of the table at a time.
fn longest_common_subsequence<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut previous = vec![0usize; b.len() + 1];
    let mut current = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            current[j + 1] = if x == y {
                previous[j] + 1
            } else {
                previous[j + 1].max(current[j])
            };
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Python keywords and the conventional receivers, never renamed.
const PYTHON_RESERVED: [&str; 37] = [
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield", "self", "cls",
];

/// Rust keywords (`self` included), never renamed.
const RUST_RESERVED: [&str; 40] = [
    "as", "async", "await", "box", "break", "const", "continue", "crate", "dyn", "else", "enum",
    "extern", "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move",
    "mut", "pub", "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true",
    "type", "unsafe", "use", "where", "while", "union",
];

/// `text` (one function) with its parameters and local variables renamed
/// to `v1, v2, …` in order of first binding (skipping numbers the function
/// already uses as names), and how many names were renamed.
///
/// Tokenizer-level, not a compiler: bindings are the parameters of the
/// function's own signature and the targets of plain assignments at the
/// start of a statement (`a = …`, `a, b = …`, `a: int = …`, `a += …`),
/// `for … in`, `as`, `:=` (Python), `let` and `for` patterns (Rust).
/// Lambda/closure parameters and `match` bindings are left alone; names
/// declared `global`/`nonlocal` are not renamed. An occurrence is renamed
/// unless it is an attribute or field after `.`, a path segment next to
/// `::`, a macro name, or a keyword-argument name (`f(name=…)`) / struct
/// field (`S { name: … }`) outside the signature. Builtins are renamed
/// only when the function binds the name itself (it then shadows the
/// builtin), keywords never. Strings and comments are untouched.
fn rename_locals(text: &str, lang: Lang) -> (String, usize) {
    let tokens = tokenize(text, lang);
    let Some((signature, bindings)) = (match lang {
        Lang::Python => python_bindings(&tokens),
        Lang::Rust => rust_bindings(&tokens),
    }) else {
        return (text.to_string(), 0);
    };
    let taken: HashSet<&str> = tokens
        .iter()
        .filter(|t| t.kind == TokenKind::Ident)
        .map(|t| t.text)
        .collect();
    let mut new_names: HashMap<&str, String> = HashMap::new();
    let mut number = 0;
    for name in bindings {
        let new_name = loop {
            number += 1;
            let candidate = format!("v{number}");
            if !taken.contains(candidate.as_str()) {
                break candidate;
            }
        };
        new_names.insert(name, new_name);
    }
    let mut out = String::with_capacity(text.len());
    let mut renamed: HashSet<&str> = HashSet::new();
    // Per open bracket: whether it is the `{` of a Rust struct literal or
    // pattern (after a capitalised name).
    let mut open_brackets: Vec<bool> = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        if token.kind == TokenKind::Str && is_format_string(token.text, lang) {
            out.push_str(&rename_in_format_string(
                token.text,
                &new_names,
                &mut renamed,
            ));
            continue;
        }
        let depth = open_brackets.len();
        match new_names.get(token.text) {
            Some(new_name)
                if token.kind == TokenKind::Ident
                    && !keeps_its_name(&tokens, i, depth, signature.contains(&i), lang) =>
            {
                // `S { name }` means `S { name: name }`: the field stays.
                let (previous, next) = neighbours(&tokens, i);
                if open_brackets.last() == Some(&true)
                    && matches!(previous, Some("{" | ","))
                    && matches!(next, Some("," | "}"))
                {
                    out.push_str(token.text);
                    out.push_str(": ");
                }
                out.push_str(new_name);
                renamed.insert(token.text);
            }
            _ => out.push_str(token.text),
        }
        match (token.kind, token.text) {
            (TokenKind::Punct, "(" | "[") => open_brackets.push(false),
            (TokenKind::Punct, "{") => {
                let after_type_name = tokens[..i]
                    .iter()
                    .rev()
                    .find(|t| !GAPS.contains(&t.kind))
                    .is_some_and(|t| {
                        t.kind == TokenKind::Ident && t.text.starts_with(char::is_uppercase)
                    });
                open_brackets.push(lang == Lang::Rust && after_type_name);
            }
            (TokenKind::Punct, ")" | "]" | "}") => {
                open_brackets.pop();
            }
            _ => {}
        }
    }
    (out, renamed.len())
}

/// Whether a string literal can name variables inside `{…}`: a Python
/// f-string, or a plain Rust string (format macros' inline arguments).
fn is_format_string(literal: &str, lang: Lang) -> bool {
    match lang {
        Lang::Python => literal
            .split(['"', '\''])
            .next()
            .is_some_and(|prefix| prefix.contains(['f', 'F'])),
        Lang::Rust => literal.starts_with('"'),
    }
}

/// `literal` with the names in its replacement fields renamed: inside
/// `{…}` (not `{{`), up to the field's `:` format spec or `!` conversion,
/// names not after `.`.
fn rename_in_format_string<'a>(
    literal: &str,
    new_names: &HashMap<&'a str, String>,
    renamed: &mut HashSet<&'a str>,
) -> String {
    let mut out = String::with_capacity(literal.len());
    let mut chars = literal.char_indices().peekable();
    let mut depth = 0usize;
    let mut in_spec = false;
    let mut previous: Option<char> = None;
    while let Some((at, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        if depth == 0 {
            if c == '{' && next == Some('{') {
                out.push_str("{{");
                chars.next();
            } else {
                if c == '{' {
                    depth = 1;
                    in_spec = false;
                }
                out.push(c);
            }
            previous = Some(c);
            continue;
        }
        let starts_name = (c.is_alphabetic() || c == '_')
            && !previous.is_some_and(|p| p.is_alphanumeric() || p == '_' || p == '.');
        if starts_name && !in_spec {
            let mut end = at + c.len_utf8();
            while let Some(&(i, n)) = chars.peek() {
                if !(n.is_alphanumeric() || n == '_') {
                    break;
                }
                end = i + n.len_utf8();
                chars.next();
            }
            let name = &literal[at..end];
            match new_names.get_key_value(name) {
                Some((key, new_name)) => {
                    out.push_str(new_name);
                    renamed.insert(key);
                }
                None => out.push_str(name),
            }
            previous = name.chars().last();
            continue;
        }
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ':' | '!' if depth == 1 && next != Some('=') => in_spec = true,
            _ => {}
        }
        out.push(c);
        if !c.is_whitespace() {
            previous = Some(c);
        }
    }
    out
}

/// Whether the name at `i` refers to something other than a local: an
/// attribute, a path segment, a macro, a keyword argument (Python, at
/// bracket `depth` > 0) or struct field.
fn keeps_its_name(
    tokens: &[Token],
    i: usize,
    depth: usize,
    in_signature: bool,
    lang: Lang,
) -> bool {
    let (previous, next) = neighbours(tokens, i);
    if previous == Some(".") {
        return true;
    }
    match lang {
        Lang::Python => !in_signature && depth > 0 && next == Some("="),
        Lang::Rust => {
            previous == Some("::")
                || next == Some("::")
                || next.is_some_and(|n| n.starts_with('!') && n != "!=")
                || (!in_signature && matches!(previous, Some("{" | ",")) && next == Some(":"))
        }
    }
}

/// Tokens that separate others without meaning anything.
const GAPS: [TokenKind; 3] = [TokenKind::Space, TokenKind::Comment, TokenKind::Newline];

/// The texts of the tokens around `i`, gaps skipped.
fn neighbours<'a>(tokens: &[Token<'a>], i: usize) -> (Option<&'a str>, Option<&'a str>) {
    let previous = previous_significant(tokens, i, &GAPS).map(|t| t.text);
    let next = tokens.get(skip(tokens, i + 1, &GAPS)).map(|t| t.text);
    (previous, next)
}

/// Names a binding pattern binds: `(signature token indices, names in
/// order of first binding)`.
type Bindings<'a> = (RangeInclusive<usize>, Vec<&'a str>);

/// The parameters and locals of a Python function (see [`rename_locals`]).
fn python_bindings<'a>(tokens: &[Token<'a>]) -> Option<Bindings<'a>> {
    let def = keyword_index(tokens, "def")?;
    let header_end = python_header_end(tokens)?;
    let mut names: Vec<&str> = Vec::new();
    let mut declared_global: HashSet<&str> = HashSet::new();
    let mut depth = 0usize;
    for i in def..=header_end {
        let token = &tokens[i];
        if token.kind == TokenKind::Ident && depth == 1 {
            let previous = previous_significant(tokens, i, &GAPS).map(|t| t.text);
            if matches!(previous, Some("(" | "," | "*" | "**")) {
                names.push(token.text);
            }
        }
        depth = depth_after(depth, token);
    }
    depth = 0;
    // Within one line: a newline ends a statement.
    let inline_gaps = [TokenKind::Space, TokenKind::Comment];
    for i in header_end + 1..tokens.len() {
        let token = &tokens[i];
        let starts_statement = depth == 0
            && token.kind == TokenKind::Ident
            && previous_significant(tokens, i, &inline_gaps)
                .is_none_or(|t| t.kind == TokenKind::Newline || t.text == ";");
        if starts_statement {
            if matches!(token.text, "global" | "nonlocal") {
                declared_global.extend(comma_separated_names(tokens, i + 1));
            } else {
                names.extend(assignment_targets(tokens, i));
            }
        }
        if token.kind == TokenKind::Ident {
            match token.text {
                "for" => names.extend(names_until_in(tokens, i + 1, &PYTHON_RESERVED)),
                "as" => {
                    let next = skip(tokens, i + 1, &inline_gaps);
                    if tokens.get(next).is_some_and(|t| t.kind == TokenKind::Ident) {
                        names.push(tokens[next].text);
                    }
                }
                _ => {
                    let next = skip(tokens, i + 1, &inline_gaps);
                    if tokens.get(next).is_some_and(|t| t.text == ":=") {
                        names.push(token.text);
                    }
                }
            }
        }
        depth = depth_after(depth, token);
    }
    let names = distinct(names, |name| {
        !PYTHON_RESERVED.contains(&name)
            && !declared_global.contains(name)
            && !name.chars().all(|c| c == '_')
    });
    Some((def..=header_end, names))
}

/// Names listed after `global` / `nonlocal` at `from`.
fn comma_separated_names<'a>(tokens: &[Token<'a>], from: usize) -> Vec<&'a str> {
    tokens[from..]
        .iter()
        .take_while(|t| t.kind != TokenKind::Newline && t.text != ";")
        .filter(|t| t.kind == TokenKind::Ident)
        .map(|t| t.text)
        .collect()
}

/// The targets of a Python assignment statement starting at `start`:
/// `a = …`, `a, b = …`, `a: T = …`, `a += …`; nothing for other statements.
fn assignment_targets<'a>(tokens: &[Token<'a>], start: usize) -> Vec<&'a str> {
    let gaps = [TokenKind::Space, TokenKind::Comment];
    let mut targets = vec![tokens[start].text];
    let mut at = skip(tokens, start + 1, &gaps);
    while tokens.get(at).is_some_and(|t| t.text == ",") {
        let name = skip(tokens, at + 1, &gaps);
        match tokens.get(name) {
            Some(t) if t.kind == TokenKind::Ident => targets.push(t.text),
            _ => return Vec::new(),
        }
        at = skip(tokens, name + 1, &gaps);
    }
    match tokens.get(at) {
        Some(t) if t.kind == TokenKind::Punct && is_assignment(t.text) => targets,
        Some(t) if t.text == ":" && targets.len() == 1 => targets,
        _ => Vec::new(),
    }
}

/// Whether an operator run assigns: `=`, `+=`, `//=`, `>>=`, … (also `=-`
/// as in `x=-1`), but not `==`, `=>`, `<=`, `!=`.
fn is_assignment(run: &str) -> bool {
    let rest = ["//", "**", ">>", "<<"]
        .iter()
        .find_map(|p| run.strip_prefix(p))
        .or_else(|| run.strip_prefix(['+', '-', '*', '/', '%', '&', '|', '^', '@']))
        .unwrap_or(run);
    rest.starts_with('=') && !rest.starts_with("==") && !rest.starts_with("=>")
}

/// The names of a `for` target from `from` up to its `in` (at the same
/// bracket depth), leaving out attributes and keywords.
fn names_until_in<'a>(tokens: &[Token<'a>], from: usize, reserved: &[&str]) -> Vec<&'a str> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    for i in from..tokens.len() {
        let token = &tokens[i];
        if depth == 0 && token.kind == TokenKind::Ident && token.text == "in" {
            return names;
        }
        if depth == 0 && (token.kind == TokenKind::Newline || token.text == "{") {
            break;
        }
        if token.kind == TokenKind::Ident
            && !reserved.contains(&token.text)
            && previous_significant(tokens, i, &[TokenKind::Space]).map(|t| t.text) != Some(".")
        {
            names.push(token.text);
        }
        depth = depth_after(depth, token);
    }
    Vec::new()
}

/// The parameters and `let`/`for` bindings of a Rust function (see
/// [`rename_locals`]).
fn rust_bindings<'a>(tokens: &[Token<'a>]) -> Option<Bindings<'a>> {
    let fn_at = keyword_index(tokens, "fn")?;
    // The parameter list: the first `(` at angle depth 0 after the name
    // (generics such as `<F: Fn(u8)>` come first).
    let mut angle = 0i32;
    let mut open = None;
    for (i, token) in tokens.iter().enumerate().skip(fn_at) {
        if token.kind == TokenKind::Punct && token.text != "->" && token.text != "=>" {
            angle += token.text.matches('<').count() as i32;
            angle -= token.text.matches('>').count() as i32;
        }
        if angle <= 0 && token.text == "(" {
            open = Some(i);
            break;
        }
    }
    let open = open?;
    let mut names: Vec<&str> = Vec::new();
    let mut depth = 0usize;
    let mut close = open;
    for (i, token) in tokens.iter().enumerate().skip(open) {
        depth = depth_after(depth, token);
        if depth == 0 {
            close = i;
            break;
        }
        if depth == 1 && token.kind == TokenKind::Ident {
            let mut previous = previous_significant_index(tokens, i, &GAPS);
            if let Some(p) = previous.filter(|&p| tokens[p].text == "mut") {
                previous = previous_significant_index(tokens, p, &GAPS);
            }
            let next = tokens.get(skip(tokens, i + 1, &GAPS)).map(|t| t.text);
            if previous.is_some_and(|p| matches!(tokens[p].text, "(" | ",")) && next == Some(":") {
                names.push(token.text);
            }
        }
    }
    for (i, token) in tokens.iter().enumerate().skip(close + 1) {
        if token.kind != TokenKind::Ident {
            continue;
        }
        match token.text {
            "let" => names.extend(rust_pattern_names(tokens, i + 1, &["=", ":", ";"])),
            "for" => {
                let next = tokens.get(skip(tokens, i + 1, &GAPS)).map(|t| t.text);
                if next != Some("<") {
                    names.extend(rust_pattern_names(tokens, i + 1, &["in"]));
                }
            }
            _ => {}
        }
    }
    let names = distinct(names, |name| {
        !RUST_RESERVED.contains(&name)
            && name.starts_with(|c: char| c.is_lowercase() || c == '_')
            && !name.chars().all(|c| c == '_')
    });
    Some((fn_at..=close, names))
}

/// The names a Rust pattern from `from` binds, up to one of `ends` at its
/// own bracket depth: lower-case names that are not constructors (`Some(`),
/// struct names (`S {`), paths, macros or field labels (`a:` inside).
fn rust_pattern_names<'a>(tokens: &[Token<'a>], from: usize, ends: &[&str]) -> Vec<&'a str> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    for i in from..tokens.len() {
        let token = &tokens[i];
        let ends_here = ends.contains(&token.text)
            || (token.kind == TokenKind::Punct && is_assignment(token.text));
        if depth == 0 && ends_here {
            return names;
        }
        let opens_block = token.text == "{"
            && previous_significant(tokens, i, &GAPS).is_none_or(|t| t.kind != TokenKind::Ident);
        if depth == 0 && opens_block {
            break;
        }
        if token.kind == TokenKind::Ident {
            let previous = previous_significant(tokens, i, &GAPS).map(|t| t.text);
            let next = tokens.get(skip(tokens, i + 1, &GAPS)).map(|t| t.text);
            let names_something_else = matches!(previous, Some("::" | "."))
                || matches!(next, Some("(" | "{" | "::" | ":"))
                || next.is_some_and(|n| n.starts_with('!'));
            if !names_something_else {
                names.push(token.text);
            }
        }
        depth = depth_after(depth, token);
    }
    Vec::new()
}

/// The last token before `i` that is not of the `gaps` kinds.
fn previous_significant<'t, 'a>(
    tokens: &'t [Token<'a>],
    i: usize,
    gaps: &[TokenKind],
) -> Option<&'t Token<'a>> {
    previous_significant_index(tokens, i, gaps).map(|p| &tokens[p])
}

/// Index of [`previous_significant`].
fn previous_significant_index(tokens: &[Token], i: usize, gaps: &[TokenKind]) -> Option<usize> {
    tokens[..i].iter().rposition(|t| !gaps.contains(&t.kind))
}

/// `names` without repeats and without those `keep` rejects, in order.
fn distinct(names: Vec<&str>, keep: impl Fn(&str) -> bool) -> Vec<&str> {
    let mut seen = HashSet::new();
    names
        .into_iter()
        .filter(|name| keep(name) && seen.insert(*name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_band_keeps_edits_and_drops_rewrites_and_copies() {
        let old = "def f(a):\n    x = a + 1\n    y = x * 2\n    z = y - 3\n    return z\n";
        let edited = "def f(a):\n    x = a + 1\n    y = x * 3\n    z = y - 3\n    return z\n";
        assert!((line_similarity(old, edited) - 0.8).abs() < 1e-9);
        assert!(is_same_function_edited(old, edited));
        let reindented = old.replace("    ", "\t");
        assert_eq!(line_similarity(old, &reindented), 1.0);
        assert!(!is_same_function_edited(old, &reindented));
        assert!(!is_same_function_edited(old, old));
        let rewritten = "def f(a):\n    return sum(range(a))\n";
        assert!(line_similarity(old, rewritten) < 0.5);
        assert!(!is_same_function_edited(old, rewritten));
    }

    #[test]
    fn longest_common_subsequence_of_lines() {
        assert_eq!(longest_common_subsequence(&[1, 2, 3, 4], &[2, 4, 5]), 2);
        assert_eq!(longest_common_subsequence::<u8>(&[], &[1]), 0);
    }

    #[test]
    fn python_locals_are_renamed_consistently() {
        let source = "def load(path, *args, mode='r', **kw):\n    \"\"\"Read path.\"\"\"\n    data = open(path, mode=mode).read()\n    total, count = 0, len(data)\n    for line in data.splitlines():\n        total += len(line)  # line count\n    self.path = path\n    return [x for x in args if x], kw.get(total)\n";
        let (renamed, count) = rename_locals(source, Lang::Python);
        assert_eq!(
            renamed,
            "def load(v1, *v2, v3='r', **v4):\n    \"\"\"Read path.\"\"\"\n    v5 = open(v1, mode=v3).read()\n    v6, v7 = 0, len(v5)\n    for v8 in v5.splitlines():\n        v6 += len(v8)  # line count\n    self.path = v1\n    return [v9 for v9 in v2 if v9], v4.get(v6)\n"
        );
        assert_eq!(count, 9);
    }

    #[test]
    fn python_renaming_keeps_keywords_globals_and_existing_names() {
        let source = "def f(self, v1):\n    global cache\n    cache = v1\n    with open(v1) as fh:\n        return f'{fh.read()!r:>fh} {{fh}} {self.fh}' + '{fh}'\n";
        let (renamed, count) = rename_locals(source, Lang::Python);
        assert_eq!(
            renamed,
            "def f(self, v2):\n    global cache\n    cache = v2\n    with open(v2) as v3:\n        return f'{v3.read()!r:>fh} {{fh}} {self.fh}' + '{fh}'\n"
        );
        assert_eq!(count, 2);
    }

    #[test]
    fn rust_locals_are_renamed_consistently() {
        let source = "/// Sum `items`.\nfn total<F: Fn(u8) -> u8>(&self, items: &[u8], mut f: F) -> u32 {\n    let mut sum = 0u32;\n    let Point { x, y: height } = self.origin;\n    for (i, item) in items.iter().enumerate() {\n        sum += f(*item) as u32 + i as u32 + x + height;\n    }\n    let out = Total {\n        sum: sum,\n        f,\n    };\n    println!(\"{sum} {:?} {{sum}}\", sum);\n    self.items.len() as u32 + out.sum\n}\n";
        let (renamed, count) = rename_locals(source, Lang::Rust);
        assert_eq!(
            renamed,
            "/// Sum `items`.\nfn total<F: Fn(u8) -> u8>(&self, v1: &[u8], mut v2: F) -> u32 {\n    let mut v3 = 0u32;\n    let Point { x: v4, y: v5 } = self.origin;\n    for (v6, v7) in v1.iter().enumerate() {\n        v3 += v2(*v7) as u32 + v6 as u32 + v4 + v5;\n    }\n    let v8 = Total {\n        sum: v3,\n        f: v2,\n    };\n    println!(\"{v3} {:?} {{sum}}\", v3);\n    self.items.len() as u32 + v8.sum\n}\n"
        );
        assert_eq!(count, 8);
    }

    #[test]
    fn functions_without_locals_are_unchanged() {
        let source = "def f():\n    return compute()\n";
        assert_eq!(rename_locals(source, Lang::Python), (source.to_string(), 0));
        let source = "fn f() -> u8 { helper::value() }\n";
        assert_eq!(rename_locals(source, Lang::Rust), (source.to_string(), 0));
    }

    #[test]
    fn assignment_operators() {
        for run in ["=", "+=", "//=", ">>=", "**=", "=-", "|="] {
            assert!(is_assignment(run), "{run}");
        }
        for run in ["==", "=>", "<=", ">=", "!=", ":", "->"] {
            assert!(!is_assignment(run), "{run}");
        }
    }
}
