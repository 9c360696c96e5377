//! Understanding a query before retrieval: which mode it is in, which
//! identifiers, file paths and traceback frames it names, and which terms to
//! send to the full-text index.

use std::collections::HashSet;
use std::sync::OnceLock;

use regex::Regex;

/// What the user is asking for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Decide from the query text.
    Auto,
    /// A description of behaviour in words.
    Text,
    /// A pasted snippet: find similar code.
    Code,
    /// A pasted bug report or feature request: find the functions to change.
    Issue,
}

impl Mode {
    /// Lower-case name, as on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Text => "text",
            Mode::Code => "code",
            Mode::Issue => "issue",
        }
    }
}

/// A `File "x.py", line N, in func` (Python) or `at path:line` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The file path as written in the trace.
    pub path: String,
    /// The line, when the trace gives one.
    pub line: Option<u32>,
    /// The function, when the trace names it.
    pub function: Option<String>,
}

/// Everything the retrievers and the boosts need from the query.
#[derive(Debug, Clone)]
pub struct QueryAnalysis {
    /// The mode after auto-detection.
    pub mode: Mode,
    /// Identifiers written in code style (snake_case, CamelCase, dotted
    /// names' parts, calls `foo(`), most specific first, deduplicated.
    pub identifiers: Vec<String>,
    /// Names whose definitions are boosted and looked up exactly. In text
    /// and issue mode these are the identifiers; in code mode only the names
    /// the snippet itself defines (`def foo`, `fn foo`): a snippet's calls
    /// (`len(`, `min(`) say nothing about which function it resembles.
    pub boost_names: Vec<String>,
    /// File paths mentioned (`src/foo/bar.py`, `lib.rs`).
    pub paths: Vec<String>,
    /// Traceback frames.
    pub frames: Vec<Frame>,
    /// Terms for the full-text index, most useful first.
    pub terms: Vec<String>,
    /// The query is about tests (it names test files or frames in them, or
    /// talks about tests), so test code is not ranked down.
    pub about_tests: bool,
    /// Languages, as the index names them, that the query asks for ("a
    /// rust function that…") or, for a snippet, the language it is in.
    pub languages: Vec<String>,
    /// Words that may name a part of the code base ("in the parser",
    /// "the cache module"), matched against path components.
    pub path_hints: Vec<String>,
}

/// Longest query text that is analysed; longer pastes are cut (the model
/// sees 256 tokens anyway, and BM25 gains nothing from megabytes).
pub const MAX_ANALYSED_BYTES: usize = 64 * 1024;
/// Most terms sent to the full-text index.
const MAX_TERMS: usize = 64;

const STOPWORDS: &[&str] = &[
    "a",
    "an",
    "the",
    "and",
    "or",
    "but",
    "if",
    "then",
    "else",
    "of",
    "to",
    "in",
    "on",
    "at",
    "by",
    "for",
    "with",
    "from",
    "into",
    "as",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "it",
    "its",
    "this",
    "that",
    "these",
    "those",
    "there",
    "here",
    "i",
    "we",
    "you",
    "he",
    "she",
    "they",
    "me",
    "my",
    "our",
    "your",
    "their",
    "do",
    "does",
    "did",
    "doing",
    "have",
    "has",
    "had",
    "not",
    "no",
    "so",
    "can",
    "could",
    "should",
    "would",
    "will",
    "shall",
    "may",
    "might",
    "must",
    "when",
    "where",
    "what",
    "which",
    "who",
    "whom",
    "how",
    "why",
    "all",
    "any",
    "some",
    "such",
    "than",
    "too",
    "very",
    "just",
    "also",
    "only",
    "about",
    "up",
    "down",
    "out",
    "over",
    "under",
    "again",
    "once",
    "after",
    "before",
    "while",
    "because",
    "both",
    "each",
    "few",
    "more",
    "most",
    "other",
    "same",
    "own",
    "get",
    "got",
    "like",
    "using",
    "use",
    "used",
    "way",
    "want",
    "need",
    "see",
    "e",
    "g",
    "eg",
    "ie",
    "etc",
    "please",
    "thanks",
    "hi",
    "hello",
    "am",
    "let",
    "s",
    "t",
    "don",
    "doesn",
    "isn",
    "wasn",
    "aren",
    "instead",
    "however",
    "still",
    "even",
    "one",
    "two",
    "new",
    "make",
    "made",
    "expected",
    "actual",
    "behavior",
    "behaviour",
    "bug",
    "issue",
    "problem",
    "error",
    "following",
    "example",
    "code",
    "run",
    "version",
];

fn stopwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| STOPWORDS.iter().copied().collect())
}

fn regex(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("static regex"))
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Analyses `query` for `mode` (`Auto` is resolved here).
pub fn analyse(query: &str, mode: Mode) -> QueryAnalysis {
    let query = truncate(query, MAX_ANALYSED_BYTES);
    let mode = match mode {
        Mode::Auto => detect_mode(query),
        other => other,
    };
    let frames = frames(query);
    let paths = paths(query);
    let identifiers = identifiers(query, &frames);
    let terms = terms(query, &identifiers, mode);
    let boost_names = if mode == Mode::Code {
        defined_names(query)
    } else {
        identifiers.clone()
    };
    let about_tests = about_tests(query, &paths, &frames);
    let (languages, path_hints) = if mode == Mode::Code {
        (snippet_language(query), Vec::new())
    } else {
        (named_languages(query), path_hints(query))
    };
    QueryAnalysis {
        mode,
        identifiers,
        boost_names,
        paths,
        frames,
        terms,
        about_tests,
        languages,
        path_hints,
    }
}

/// The languages a query names: `rust`, `python`, `golang`, `c++`, "in C"…
/// (plain "go" is too common a word to count).
fn named_languages(query: &str) -> Vec<String> {
    static NAMED: OnceLock<Regex> = OnceLock::new();
    static C: OnceLock<Regex> = OnceLock::new();
    let named = regex(
        &NAMED,
        r"(?i)\b(rust|python|javascript|js|node\.?js|typescript|golang|java|c\+\+|cpp|ruby|php)(?:\b|$|[^\w+])",
    );
    let mut out: Vec<String> = Vec::new();
    let mut add = |language: &str| {
        if !out.iter().any(|l| l == language) {
            out.push(language.to_string());
        }
    };
    for cap in named.captures_iter(query) {
        match cap[1].to_ascii_lowercase().as_str() {
            "rust" => add("rust"),
            "python" => add("python"),
            "javascript" | "js" | "nodejs" | "node.js" => add("javascript"),
            "typescript" => {
                add("typescript");
                add("tsx");
            }
            "golang" => add("go"),
            "java" => add("java"),
            "c++" | "cpp" => add("cpp"),
            "ruby" => add("ruby"),
            "php" => add("php"),
            _ => {}
        }
    }
    if regex(&C, r"\b(?:in|with|for) C(?:$|[^\w+#])").is_match(query) {
        add("c");
    }
    out
}

/// The language a snippet is written in, from its distinctive syntax,
/// when one language clearly leads (else none: no preference).
fn snippet_language(snippet: &str) -> Vec<String> {
    static SIGNS: OnceLock<Vec<(&'static str, Regex)>> = OnceLock::new();
    let signs = SIGNS.get_or_init(|| {
        [
            ("rust", r"\bfn\s+\w+|\blet\s+mut\b|\bimpl\b|&self\b|&mut\b|\w::\w|\bpub\s+(fn|struct|enum)\b|\bmatch\b.*\{|=>\s*\{?|\b(Vec|Option|Result)<"),
            ("python", r"(?m)\bdef\s+\w+\(.*\)\s*(->.*)?:\s*$|\bself\.\w|\belif\b|\bNone\b|^\s*(from\s+\S+\s+)?import\s+[\w.]+\s*$|:\s*$|\blambda\b"),
            ("go", r"\bfunc\s+(\(\w+\s+\*?\w+\)\s*)?\w+\(|:=|\bpackage\s+\w+|\berr\s*!=\s*nil\b|\bchan\b"),
            ("javascript", r"\bfunction\s*\w*\s*\(|\bconst\s+\w+\s*=|=>|===|\bconsole\.\w+|\brequire\("),
            ("typescript", r":\s*(string|number|boolean|void)\b|\binterface\s+\w+\s*\{|\bexport\s+(type|interface)\b|<\w+>\("),
            ("java", r"\b(public|private|protected)\s+(static\s+)?(final\s+)?\w+(<[^>]*>)?\s+\w+\s*\(|@Override|System\.out|\bnew\s+\w+<"),
            ("c", r"#include\s*<\w+\.h>|\bprintf\(|\bmalloc\(|\bNULL\b|->\w"),
            ("cpp", r"\bstd::|#include\s*<\w+>|\bnullptr\b|\btemplate\s*<|::\w+\(|->\w"),
            ("ruby", r"(?m)^\s*end\s*$|\bdo\s*\|\w+|\bputs\b|^\s*def\s+\w+[^:]*$|@\w+\s*="),
            ("php", r"<\?php|\$this->|\bfunction\s+\w+\s*\(\$|\$\w+\s*="),
        ]
        .into_iter()
        .map(|(language, pattern)| (language, Regex::new(pattern).expect("static regex")))
        .collect()
    });
    let mut scores: Vec<(&str, usize)> = signs
        .iter()
        .map(|(language, sign)| (*language, sign.find_iter(snippet).count()))
        .collect();
    scores.sort_by_key(|s| std::cmp::Reverse(s.1));
    match scores.as_slice() {
        [(best, n), (_, runner_up), ..] if *n >= 2 && *n > runner_up + 1 => {
            let mut out = vec![best.to_string()];
            if *best == "typescript" {
                out.push("tsx".into());
            }
            out
        }
        _ => Vec::new(),
    }
}

/// Words naming a part of the code base: "in the parser", "in parser",
/// "the cache module", "the http package". Common words are left out;
/// a hint only counts where a path has it as a component.
fn path_hints(query: &str) -> Vec<String> {
    static HINT: OnceLock<Regex> = OnceLock::new();
    let hint = regex(
        &HINT,
        r"(?i)\b(?:in|inside|under|from) (?:the |our |my )?([a-z][a-z0-9_]{2,})\b|\b([a-z][a-z0-9_]{2,}) (?:module|package|crate|folder|directory|subsystem|component|plugin)s?\b",
    );
    let mut out: Vec<String> = Vec::new();
    for cap in hint.captures_iter(query) {
        // "in the X" is often not a place in the code ("in the list");
        // "the X module" always means one.
        let (word, after_in) = match (cap.get(1), cap.get(2)) {
            (Some(m), _) => (m.as_str().to_ascii_lowercase(), true),
            (None, Some(m)) => (m.as_str().to_ascii_lowercase(), false),
            (None, None) => continue,
        };
        if stopwords().contains(word.as_str())
            || (after_in && GENERIC_HINTS.contains(&word.as_str()))
            || !named_languages(&word).is_empty()
            || out.contains(&word)
        {
            continue;
        }
        out.push(word);
    }
    out
}

/// Words that follow "in the" without naming a part of a code base.
const GENERIC_HINTS: &[&str] = &[
    "case",
    "order",
    "place",
    "memory",
    "file",
    "files",
    "list",
    "array",
    "string",
    "way",
    "loop",
    "middle",
    "end",
    "beginning",
    "start",
    "future",
    "past",
    "background",
    "same",
    "current",
    "given",
    "form",
    "range",
    "dict",
    "dictionary",
    "map",
    "function",
    "method",
    "class",
    "code",
    "repo",
    "repository",
    "project",
    "directory",
    "folder",
    "path",
    "line",
    "lines",
    "text",
    "output",
    "input",
    "console",
    "terminal",
    "browser",
    "database",
    "table",
    "row",
    "column",
    "cell",
    "world",
    "format",
    "python",
    "rust",
    "java",
    "order",
    "reverse",
    "parallel",
];

/// Whether a query is about tests rather than the code under test: it
/// names a test file, a traceback frame lies in one, or it speaks of tests
/// (pytest, unittest, "the test", "tests fail") more than in passing.
fn about_tests(query: &str, paths: &[String], frames: &[Frame]) -> bool {
    static TEST_TALK: OnceLock<Regex> = OnceLock::new();
    let test_file = |p: &str| {
        let p = p.to_ascii_lowercase();
        p.contains("test_")
            || p.contains("_test.")
            || p.contains("/tests/")
            || p.contains("conftest")
    };
    if paths.iter().any(|p| test_file(p)) || frames.iter().any(|f| test_file(&f.path)) {
        return true;
    }
    let talk = regex(
        &TEST_TALK,
        r"(?i)\b(pytest|unittest|test suite|test case|tests? (fail|pass)|flaky)",
    );
    talk.find_iter(query).count() >= 2
}

/// Splits a long query into parts of about `bytes` each, at blank lines
/// where it can (a paragraph, a code block, a traceback stay whole), then
/// at line ends, then anywhere; the first `max` parts. A short query is one
/// part. Each part is embedded on its own, so the model reads all of a long
/// issue instead of its first ~256 tokens.
pub fn segments(query: &str, bytes: usize, max: usize) -> Vec<String> {
    let bytes = bytes.max(16);
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let push = |piece: &str, out: &mut Vec<String>, current: &mut String| {
        if !current.is_empty() && current.len() + piece.len() > bytes {
            out.push(std::mem::take(current));
        }
        current.push_str(piece);
    };
    for paragraph in query.split_inclusive("\n\n") {
        if paragraph.len() <= bytes {
            push(paragraph, &mut out, &mut current);
            continue;
        }
        for line in paragraph.split_inclusive('\n') {
            let mut rest = line;
            while rest.len() > bytes {
                // Never empty: `bytes` is at least 16, a char at most 4.
                let piece = truncate(rest, bytes);
                push(piece, &mut out, &mut current);
                rest = &rest[piece.len()..];
            }
            push(rest, &mut out, &mut current);
        }
        if out.len() >= max {
            break;
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out.retain(|part| !part.trim().is_empty());
    out.truncate(max.max(1));
    if out.is_empty() {
        out.push(query.to_string());
    }
    out
}

/// Guesses whether a query is prose, code or an issue report.
pub fn detect_mode(query: &str) -> Mode {
    static TRACEBACK: OnceLock<Regex> = OnceLock::new();
    let traceback = regex(
        &TRACEBACK,
        r#"(?m)Traceback \(most recent call last\)|^\s*File "[^"]+", line \d+|panicked at|^\s+at [\w.$]+\(|^#{1,3} |Steps to reproduce|Expected (behaviou?r|result|output)"#,
    );
    let lines: Vec<&str> = query.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return Mode::Text;
    }
    let code_lines = lines.iter().filter(|l| looks_like_code(l)).count();
    let prose_lines = lines.iter().filter(|l| looks_like_prose(l)).count();
    // A pasted stack trace is a bug report without the prose: the frames
    // name the functions to look at.
    if traceback.is_match(query) && (prose_lines >= 1 || lines.len() >= 3) {
        return Mode::Issue;
    }
    let sentences = query.matches(". ").count()
        + query.matches(".\n").count()
        + usize::from(query.trim_end().ends_with('.'));
    if (prose_lines >= 2 || (prose_lines >= 1 && sentences >= 2)) && query.len() > 120 {
        return Mode::Issue;
    }
    if prose_lines >= 1 && code_lines >= 1 && lines.len() >= 3 {
        return Mode::Issue;
    }
    if code_lines * 2 >= lines.len() && prose_lines * 3 <= lines.len() {
        return Mode::Code;
    }
    Mode::Text
}

fn looks_like_code(line: &str) -> bool {
    static CODE: OnceLock<Regex> = OnceLock::new();
    let code = regex(
        &CODE,
        r"(^\s*(def|fn|pub|class|impl|struct|enum|trait|let|const|var|function|import|from|return|if|elif|for|while|match|switch|case|#include|package|func|async|await|self\.|try|except|catch|throw|raise|static|private|public|protected|use|mod)\b)|([;{}]\s*$)|(\)\s*(->|=>|:)\s*)|(^\s*[\w.\[\]]+\s*(=|\+=|-=|:=)\s*\S)|(^\s*@\w+)|(^\s*(//|#|/\*|\*)\s)",
    );
    code.is_match(line)
}

fn looks_like_prose(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.len() < 5 {
        return false;
    }
    let stop = words
        .iter()
        .filter(|w| {
            let w = w
                .trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase();
            stopwords().contains(w.as_str())
        })
        .count();
    stop * 5 >= words.len() && !looks_like_code(line)
}

fn frames(query: &str) -> Vec<Frame> {
    static PY: OnceLock<Regex> = OnceLock::new();
    static AT: OnceLock<Regex> = OnceLock::new();
    let py = regex(&PY, r#"File "([^"]+)", line (\d+)(?:, in ([\w<>]+))?"#);
    let at = regex(&AT, r"(?:at|in) ([\w./\\-]+\.[A-Za-z]{1,5}):(\d+)");
    let mut out = Vec::new();
    for cap in py.captures_iter(query) {
        out.push(Frame {
            path: cap[1].to_string(),
            line: cap[2].parse().ok(),
            function: cap
                .get(3)
                .map(|m| m.as_str().to_string())
                .filter(|f| !f.starts_with('<')),
        });
    }
    for cap in at.captures_iter(query) {
        out.push(Frame {
            path: cap[1].to_string(),
            line: cap[2].parse().ok(),
            function: None,
        });
    }
    out
}

fn paths(query: &str) -> Vec<String> {
    static PATH: OnceLock<Regex> = OnceLock::new();
    let path = regex(
        &PATH,
        r"(?:[\w.-]+/)*[\w-]+\.(?:rs|py|pyi|js|jsx|mjs|ts|tsx|go|java|c|h|cc|cpp|hpp|cxx|rb|php|toml|md)\b",
    );
    let mut seen = HashSet::new();
    path.find_iter(query)
        .map(|m| m.as_str().trim_start_matches("./").to_string())
        .filter(|p| seen.insert(p.clone()))
        .collect()
}

/// Splits an identifier into its lower-case words: `parseHTTPConfig_v2` ->
/// `parse http config v2`.
pub fn split_identifier(ident: &str) -> Vec<String> {
    let mut words = Vec::new();
    for part in ident.split(|c: char| !c.is_alphanumeric()) {
        let chars: Vec<char> = part.chars().collect();
        let mut start = 0;
        for i in 1..chars.len() {
            let (prev, cur) = (chars[i - 1], chars[i]);
            let next_lower = chars.get(i + 1).is_some_and(|c| c.is_lowercase());
            let boundary = (prev.is_lowercase() && cur.is_uppercase())
                || (prev.is_uppercase() && cur.is_uppercase() && next_lower)
                || (prev.is_alphabetic() != cur.is_alphabetic());
            if boundary {
                words.push(chars[start..i].iter().collect::<String>());
                start = i;
            }
        }
        if start < chars.len() {
            words.push(chars[start..].iter().collect::<String>());
        }
    }
    words
        .into_iter()
        .map(|w| w.to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

fn is_code_style(word: &str) -> bool {
    let has_lower = word.chars().any(|c| c.is_lowercase());
    let has_upper = word.chars().any(|c| c.is_uppercase());
    let inner_upper = word.chars().skip(1).any(|c| c.is_uppercase());
    word.contains('_')
        || (has_lower && inner_upper)
        || (has_upper && !has_lower && word.len() > 3 && word.contains('_'))
}

fn identifiers(query: &str, frames: &[Frame]) -> Vec<String> {
    static WORD: OnceLock<Regex> = OnceLock::new();
    static CALL: OnceLock<Regex> = OnceLock::new();
    static DOTTED: OnceLock<Regex> = OnceLock::new();
    let word = regex(&WORD, r"[A-Za-z_][A-Za-z0-9_]*");
    let call = regex(&CALL, r"([A-Za-z_][A-Za-z0-9_]*)\s*\(");
    let dotted = regex(
        &DOTTED,
        r"[A-Za-z_][A-Za-z0-9_]*(?:(?:\.|::)[A-Za-z_][A-Za-z0-9_]*)+",
    );
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut push = |name: &str, out: &mut Vec<String>| {
        if name.len() >= 3
            && !stopwords().contains(name.to_lowercase().as_str())
            && seen.insert(name.to_string())
        {
            out.push(name.to_string());
        }
    };
    for frame in frames {
        if let Some(f) = &frame.function {
            push(f, &mut out);
        }
    }
    for m in dotted.find_iter(query) {
        let text = m.as_str();
        // `foo.py` is a file name, not a dotted identifier.
        if paths(text).first().is_some_and(|p| p == text) {
            continue;
        }
        for part in text.split(['.', ':']).filter(|p| !p.is_empty()) {
            if is_code_style(part) || part.chars().next().is_some_and(|c| c.is_uppercase()) {
                push(part, &mut out);
            }
        }
        if let Some(last) = text.rsplit(['.', ':']).next() {
            push(last, &mut out);
        }
    }
    for cap in call.captures_iter(query) {
        push(&cap[1], &mut out);
    }
    for m in word.find_iter(query) {
        if is_code_style(m.as_str()) {
            push(m.as_str(), &mut out);
        }
    }
    out
}

/// Names a snippet defines: `def foo`, `fn foo`, `function foo`, `class Foo`...
fn defined_names(query: &str) -> Vec<String> {
    static DEF: OnceLock<Regex> = OnceLock::new();
    let def = regex(
        &DEF,
        r"\b(?:def|fn|func|function|class|struct|enum|trait|interface|type)\s+([A-Za-z_][A-Za-z0-9_]*)",
    );
    let mut seen = HashSet::new();
    def.captures_iter(query)
        .map(|c| c[1].to_string())
        .filter(|name| seen.insert(name.clone()))
        .collect()
}

fn terms(query: &str, identifiers: &[String], mode: Mode) -> Vec<String> {
    static WORD: OnceLock<Regex> = OnceLock::new();
    let word = regex(&WORD, r"[A-Za-z_][A-Za-z0-9_]*");
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for ident in identifiers {
        let lower = ident.to_lowercase();
        if seen.insert(lower.clone()) {
            out.push(lower);
        }
    }
    for m in word.find_iter(query) {
        for part in split_identifier(m.as_str()) {
            if part.len() < 2 || stopwords().contains(part.as_str()) {
                continue;
            }
            // Prose words from code mode keywords add noise.
            if mode == Mode::Code && is_keyword(&part) {
                continue;
            }
            if seen.insert(part.clone()) {
                out.push(part);
            }
        }
        if out.len() >= MAX_TERMS {
            break;
        }
    }
    if mode != Mode::Text {
        // Distinctive literals (status codes, magic numbers) are strong
        // lexical evidence in code.
        static NUMBER: OnceLock<Regex> = OnceLock::new();
        let number = regex(&NUMBER, r"\b(?:0[xX][0-9A-Fa-f]{2,}|[0-9]{3,})\b");
        for m in number.find_iter(query) {
            let literal = m.as_str().to_lowercase();
            if out.len() < MAX_TERMS && seen.insert(literal.clone()) {
                out.push(literal);
            }
        }
    }
    out.truncate(MAX_TERMS);
    out
}

fn is_keyword(word: &str) -> bool {
    matches!(
        word,
        "def"
            | "fn"
            | "pub"
            | "class"
            | "impl"
            | "struct"
            | "enum"
            | "trait"
            | "let"
            | "const"
            | "var"
            | "function"
            | "import"
            | "return"
            | "self"
            | "mut"
            | "elif"
            | "while"
            | "match"
            | "async"
            | "await"
            | "none"
            | "true"
            | "false"
            | "null"
            | "str"
            | "int"
            | "string"
            | "void"
            | "static"
            | "public"
            | "private"
            | "new"
            | "this"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_queries_split_at_paragraphs_then_lines_and_keep_every_byte() {
        let short = "Retry fails after the second attempt.";
        assert_eq!(segments(short, 100, 4), vec![short.to_string()]);
        let para = |c: char| format!("{}\n", c.to_string().repeat(59));
        let issue = format!("{}\n{}\n{}", para('a'), para('b'), para('c'));
        let parts = segments(&issue, 130, 8);
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert!(parts[0].starts_with('a') && parts[0].contains('b'));
        assert!(parts[1].starts_with('c'));
        assert_eq!(parts.concat(), issue);
        // A paragraph longer than a part goes by lines, a line by bytes
        // (on character boundaries).
        let long_line = "é".repeat(100);
        let parts = segments(&long_line, 50, 10);
        assert!(parts.iter().all(|p| p.len() <= 50), "{parts:?}");
        assert_eq!(parts.concat(), long_line);
        // At most `max` parts.
        assert_eq!(segments(&"word ".repeat(1000), 100, 3).len(), 3);
        assert_eq!(segments("\n\n\n", 100, 3), vec!["\n\n\n".to_string()]);
    }

    #[test]
    fn queries_about_tests_are_told_apart_from_bugs_in_the_code() {
        let bug = "Calling load() with an empty file raises KeyError.\nI added a test for it.";
        assert!(!analyse(bug, Mode::Issue).about_tests);
        let flaky = "test_retry is flaky: the test suite fails on CI with pytest -x";
        assert!(analyse(flaky, Mode::Issue).about_tests);
        let trace = "Traceback (most recent call last):\n  File \"tests/test_io.py\", line 3, in test_load\n    load()\nKeyError: 'x'";
        assert!(analyse(trace, Mode::Issue).about_tests);
    }

    use super::*;

    #[test]
    fn detects_modes() {
        assert_eq!(
            detect_mode("retry an http request with backoff"),
            Mode::Text
        );
        assert_eq!(detect_mode("parse_config"), Mode::Text);
        assert_eq!(
            detect_mode("fn add(a: i32, b: i32) -> i32 {\n    a + b\n}"),
            Mode::Code
        );
        assert_eq!(
            detect_mode("def retry(fn, attempts=3):\n    for i in range(attempts):\n        try:\n            return fn()\n        except Exception:\n            time.sleep(2 ** i)"),
            Mode::Code
        );
        let issue = "Crash when the config file is empty\n\nWhen I run the tool with an empty config file it crashes instead of using the defaults.\n\nTraceback (most recent call last):\n  File \"app/config.py\", line 12, in load_config\n    return parse(text)\nValueError: empty";
        assert_eq!(detect_mode(issue), Mode::Issue);
        let bare_trace = "Traceback (most recent call last):\n  File \"app/db.py\", line 3, in connect\nValueError: bad dsn";
        assert_eq!(detect_mode(bare_trace), Mode::Issue);
        let rust_panic = "thread 'main' panicked at src/cache.rs:17:9:\ncapacity must be positive\nnote: run with `RUST_BACKTRACE=1`";
        assert_eq!(detect_mode(rust_panic), Mode::Issue);
        assert_eq!(
            detect_mode("The cache is never invalidated when the file changes on disk, so stale results are shown to the user after they edit a file. It should be refreshed."),
            Mode::Issue
        );
    }

    #[test]
    fn extracts_identifiers_paths_and_frames() {
        let q = "Calling `Config::from_path` in src/config.rs panics; see parseHTTPHeader() and self.max_retries.\n  File \"pkg/net/http.py\", line 3, in send_request";
        let a = analyse(q, Mode::Auto);
        assert_eq!(a.frames[0].path, "pkg/net/http.py");
        assert_eq!(a.frames[0].function.as_deref(), Some("send_request"));
        assert_eq!(a.frames[0].line, Some(3));
        let panic = analyse(
            "thread 'main' panicked at src/cache.rs:17:9:\nboom",
            Mode::Issue,
        );
        assert_eq!(panic.frames[0].path, "src/cache.rs");
        assert_eq!(panic.frames[0].line, Some(17));
        assert_eq!(a.identifiers[0], "send_request");
        for ident in ["Config", "from_path", "parseHTTPHeader", "max_retries"] {
            assert!(
                a.identifiers.iter().any(|i| i == ident),
                "{ident} in {:?}",
                a.identifiers
            );
        }
        assert!(
            a.paths.contains(&"src/config.rs".to_string()),
            "{:?}",
            a.paths
        );
        assert!(a.paths.contains(&"pkg/net/http.py".to_string()));
        assert!(!a.identifiers.iter().any(|i| i == "config.rs" || i == "rs"));
    }

    #[test]
    fn code_mode_boosts_only_defined_names() {
        let a = analyse(
            "def should_retry(code):\n    return len(code) in (408, 429)",
            Mode::Code,
        );
        assert_eq!(a.boost_names, vec!["should_retry"]);
        assert!(a.terms.contains(&"408".to_string()), "{:?}", a.terms);
        let a = analyse("why does parse_config fail", Mode::Text);
        assert_eq!(a.boost_names, vec!["parse_config"]);
    }

    #[test]
    fn splits_identifiers() {
        assert_eq!(
            split_identifier("parseHTTPHeader"),
            vec!["parse", "http", "header"]
        );
        assert_eq!(
            split_identifier("max_retries2"),
            vec!["max", "retries", "2"]
        );
        assert_eq!(split_identifier("XMLParser"), vec!["xml", "parser"]);
    }

    #[test]
    fn terms_drop_stopwords_and_are_capped() {
        let a = analyse(
            "how do I retry the request with exponential backoff",
            Mode::Text,
        );
        assert_eq!(a.terms, vec!["retry", "request", "exponential", "backoff"]);
        let huge = "lorem ipsum dolor sit amet consectetur ".repeat(100_000);
        let a = analyse(&huge, Mode::Auto);
        assert!(a.terms.len() <= MAX_TERMS);
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[test]
    fn languages_named_in_prose_are_hints() {
        assert_eq!(named_languages("parse a toml file in rust"), ["rust"]);
        assert_eq!(named_languages("Python: read lines lazily"), ["python"]);
        assert_eq!(
            named_languages("typescript debounce"),
            ["typescript", "tsx"]
        );
        assert_eq!(named_languages("a golang http handler"), ["go"]);
        assert_eq!(named_languages("smart pointers in C++"), ["cpp"]);
        assert_eq!(named_languages("string copy in C"), ["c"]);
        assert!(named_languages("go to the next page").is_empty());
        assert!(named_languages("trusty rusted pythons").is_empty());
    }

    #[test]
    fn a_snippet_s_language_is_guessed_only_when_clear() {
        let rust = "pub fn load(path: &Path) -> Result<Config> {\n    let mut text = String::new();\n    Ok(parse(&text)?)\n}";
        assert_eq!(snippet_language(rust), ["rust"]);
        let python = "def load(self, path):\n    if path is None:\n        return self.default\n    return parse(path)\n";
        assert_eq!(snippet_language(python), ["python"]);
        let go = "func Load(path string) (*Config, error) {\n\tdata, err := os.ReadFile(path)\n\tif err != nil {\n\t\treturn nil, err\n\t}\n}";
        assert_eq!(snippet_language(go), ["go"]);
        assert!(snippet_language("x = 1").is_empty());
        assert_eq!(analyse(python, Mode::Code).languages, ["python"]);
        assert!(analyse(python, Mode::Code).path_hints.is_empty());
    }

    #[test]
    fn path_hints_come_from_places_named_in_prose() {
        assert_eq!(
            path_hints("where does the lexer handle escapes in the parser"),
            ["parser"]
        );
        assert_eq!(path_hints("retry logic of the http module"), ["http"]);
        assert_eq!(path_hints("reverse a list in place"), Vec::<String>::new());
        assert_eq!(path_hints("sort in python"), Vec::<String>::new());
        let analysis = analyse("cache eviction in the storage layer", Mode::Text);
        assert_eq!(analysis.path_hints, ["storage"]);
    }
}
