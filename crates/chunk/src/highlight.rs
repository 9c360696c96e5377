//! Syntax highlighting for showing code: the grammars' own `highlights.scm`
//! queries (shipped as data with each tree-sitter grammar crate) turn a text
//! into lines of classified tokens.
//!
//! The output is plain data (text plus a class name), never markup, so a
//! front end renders indexed code — untrusted text — without interpreting it.

use std::sync::OnceLock;

use tree_sitter::{Parser, Query, QueryCursor, StreamingIterator};

use crate::languages::{self, LANGUAGES};

/// Longest text that is highlighted; longer texts come back as plain lines
/// (a preview never needs more, and parsing megabytes would stall the UI).
pub const MAX_HIGHLIGHT_BYTES: usize = 512 * 1024;

/// The classes a token can have: the first component of a highlight
/// capture name (`@function.method` is a `function`), restricted to these.
pub const CLASSES: &[&str] = &[
    "attribute",
    "comment",
    "constant",
    "constructor",
    "embedded",
    "escape",
    "function",
    "keyword",
    "label",
    "module",
    "number",
    "operator",
    "property",
    "punctuation",
    "string",
    "tag",
    "type",
    "variable",
];

/// A run of text with one highlight class.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Token {
    /// The text, verbatim.
    pub text: String,
    /// One of [`CLASSES`], or `None` for plain text.
    pub class: Option<&'static str>,
}

/// A language's compiled highlight query, with each capture's class.
struct Highlighter {
    language: tree_sitter::Language,
    query: Query,
    classes: Vec<Option<&'static str>>,
}

/// Maps a capture name to its class (`keyword.control` → `keyword`,
/// `constant.builtin` → `constant`, `string.special` → `string`).
fn class_of(capture: &str) -> Option<&'static str> {
    let head = capture.split('.').next().unwrap_or(capture);
    let head = match head {
        "boolean" | "character" => "constant",
        "method" => "function",
        "delimiter" => "punctuation",
        "namespace" => "module",
        "field" => "property",
        "parameter" => "variable",
        other => other,
    };
    CLASSES.iter().copied().find(|c| *c == head)
}

/// The highlight query of a grammar, compiled once.
fn highlighter(language: &str) -> Option<&'static Highlighter> {
    static CACHE: OnceLock<Vec<OnceLock<Option<Highlighter>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| LANGUAGES.iter().map(|_| OnceLock::new()).collect());
    let idx = LANGUAGES.iter().position(|l| l.name == language)?;
    cache[idx]
        .get_or_init(|| match load(LANGUAGES[idx].grammar) {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::error!(language, error = %e, "highlight query failed to load");
                None
            }
        })
        .as_ref()
}

fn load(grammar: &str) -> Result<Highlighter, String> {
    let language =
        languages::grammar(grammar).ok_or_else(|| format!("unknown grammar {grammar}"))?;
    let source = languages::highlight_queries(grammar).concat();
    let query = Query::new(&language, &source).map_err(|e| format!("{grammar}: {e}"))?;
    let classes = query.capture_names().iter().map(|c| class_of(c)).collect();
    Ok(Highlighter {
        language,
        query,
        classes,
    })
}

/// Checks that every language's highlight query compiles (CI runs this, so
/// a grammar upgrade that breaks a query fails the build, not the window).
pub fn check_highlight_queries() -> Result<(), String> {
    for spec in LANGUAGES {
        load(spec.grammar)?;
    }
    Ok(())
}

/// Splits `text` into lines of highlighted tokens. `language` is a name from
/// [`crate::languages`]; an unknown language, a text over
/// [`MAX_HIGHLIGHT_BYTES`] or a parse failure gives plain lines. Line
/// breaks are not part of any token; every line of `text` gives one entry
/// (a trailing newline does not add an empty last line).
pub fn highlight(language: &str, text: &str) -> Vec<Vec<Token>> {
    let classes = match highlighter(language) {
        Some(h) if text.len() <= MAX_HIGHLIGHT_BYTES => classify(h, text),
        _ => None,
    }
    .unwrap_or_else(|| vec![None; text.len()]);
    split_lines(text, &classes)
}

/// One class per byte of `text`; where captures overlap, the pattern that
/// comes first in the query wins (the convention of tree-sitter's own
/// highlighter, which lists specific patterns before general ones).
fn classify(h: &Highlighter, text: &str) -> Option<Vec<Option<&'static str>>> {
    let mut parser = Parser::new();
    parser.set_language(&h.language).ok()?;
    let tree = parser.parse(text, None)?;
    let mut spans = Vec::new();
    let mut cursor = QueryCursor::new();
    let mut matches = cursor.matches(&h.query, tree.root_node(), text.as_bytes());
    while let Some(m) = matches.next() {
        for capture in m.captures {
            if let Some(class) = h.classes[capture.index as usize] {
                let range = capture.node.byte_range();
                spans.push((m.pattern_index, range.start, range.end, class));
            }
        }
    }
    spans.sort_by_key(|s| s.0);
    let mut classes: Vec<Option<&'static str>> = vec![None; text.len()];
    for (_, start, end, class) in spans {
        for slot in &mut classes[start..end.min(text.len())] {
            slot.get_or_insert(class);
        }
    }
    Some(classes)
}

fn split_lines(text: &str, classes: &[Option<&'static str>]) -> Vec<Vec<Token>> {
    let mut lines = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let content = line.trim_end_matches(['\n', '\r']);
        lines.push(tokens(content, &classes[offset..offset + content.len()]));
        offset += line.len();
    }
    lines
}

/// Groups a line's bytes into runs of one class, cutting only at character
/// boundaries.
fn tokens(line: &str, classes: &[Option<&'static str>]) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::new();
    for (i, ch) in line.char_indices() {
        let class = classes[i];
        match out.last_mut() {
            Some(last) if last.class == class => last.text.push(ch),
            _ => out.push(Token {
                text: ch.to_string(),
                class,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_of_word(lines: &[Vec<Token>], word: &str) -> Option<&'static str> {
        lines
            .iter()
            .flatten()
            .find(|t| t.text.trim() == word)
            .unwrap_or_else(|| panic!("no token `{word}` in {lines:?}"))
            .class
    }

    #[test]
    fn every_language_has_a_working_highlight_query() {
        check_highlight_queries().unwrap();
        for spec in LANGUAGES {
            assert!(highlighter(spec.name).is_some(), "{}", spec.name);
        }
    }

    #[test]
    fn rust_tokens_get_their_classes_and_the_text_is_kept_verbatim() {
        let text = "// add\nfn add(a: u32) -> u32 {\n    let s = \"x<y>\";\n    a + 1\n}\n";
        let lines = highlight("rust", text);
        assert_eq!(lines.len(), 5);
        let rebuilt: Vec<String> = lines
            .iter()
            .map(|l| l.iter().map(|t| t.text.as_str()).collect())
            .collect();
        assert_eq!(rebuilt.join("\n") + "\n", text);
        assert_eq!(class_of_word(&lines, "// add"), Some("comment"));
        assert_eq!(class_of_word(&lines, "fn"), Some("keyword"));
        assert_eq!(class_of_word(&lines, "add"), Some("function"));
        assert_eq!(class_of_word(&lines, "u32"), Some("type"));
        assert_eq!(class_of_word(&lines, "\"x<y>\""), Some("string"));
    }

    #[test]
    fn python_strings_and_keywords() {
        let lines = highlight("python", "def f(x):\n    return '<script>'\n");
        assert_eq!(class_of_word(&lines, "def"), Some("keyword"));
        assert_eq!(class_of_word(&lines, "'<script>'"), Some("string"));
    }

    #[test]
    fn unknown_languages_huge_texts_and_odd_bytes_come_back_plain_and_whole() {
        let lines = highlight("text", "a\r\nb\n\nc");
        let plain: Vec<Vec<Token>> = ["a", "b", "", "c"]
            .iter()
            .map(|s| {
                if s.is_empty() {
                    vec![]
                } else {
                    vec![Token {
                        text: s.to_string(),
                        class: None,
                    }]
                }
            })
            .collect();
        assert_eq!(lines, plain);

        let huge = "x = 1\n".repeat(MAX_HIGHLIGHT_BYTES / 6 + 1);
        let lines = highlight("python", &huge);
        assert_eq!(lines.len(), huge.lines().count());
        assert!(lines.iter().flatten().all(|t| t.class.is_none()));

        // Multi-byte characters inside and across captures stay intact.
        let lines = highlight("rust", "fn é() { let s = \"日本\"; } /* ü */\n");
        let text: String = lines[0].iter().map(|t| t.text.as_str()).collect();
        assert_eq!(text, "fn é() { let s = \"日本\"; } /* ü */");
    }

    #[test]
    fn unparsable_code_still_highlights_what_it_can() {
        let lines = highlight("rust", "fn broken( { let x = 1; \n");
        assert_eq!(class_of_word(&lines, "fn"), Some("keyword"));
    }
}
