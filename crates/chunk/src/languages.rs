//! The language table: everything language-specific is data here plus the
//! `.scm` query files under `crates/chunk/languages/<lang>/chunks.scm`.
//! There is deliberately no per-language code path anywhere else.

use std::sync::OnceLock;

use tree_sitter::{Language, Query};

/// One supported language.
pub(crate) struct LangSpec {
    /// Canonical name (`Chunk::language`, `--lang`).
    pub name: &'static str,
    /// File extensions (lower-case, without the dot).
    pub extensions: &'static [&'static str],
    /// Exact file names (e.g. `Rakefile`).
    pub file_names: &'static [&'static str],
    /// Interpreter names recognised in a `#!` line.
    pub shebangs: &'static [&'static str],
    /// Grammar name, resolved by [`grammar`].
    pub grammar: &'static str,
    /// Separator between qualified-name components.
    pub separator: &'static str,
    /// Node kinds that, directly preceding a definition, are part of it
    /// (doc comments, attributes, decorators, annotations).
    pub attach: &'static [&'static str],
    /// The chunk query source.
    pub query: &'static str,
}

pub(crate) static LANGUAGES: &[LangSpec] = &[
    LangSpec {
        name: "rust",
        extensions: &["rs"],
        file_names: &[],
        shebangs: &[],
        grammar: "rust",
        separator: "::",
        attach: &["line_comment", "block_comment", "attribute_item"],
        query: include_str!("../languages/rust/chunks.scm"),
    },
    LangSpec {
        name: "python",
        extensions: &["py", "pyi", "pyw"],
        file_names: &["SConstruct", "SConscript"],
        shebangs: &["python", "python2", "python3"],
        grammar: "python",
        separator: ".",
        attach: &["comment"],
        query: include_str!("../languages/python/chunks.scm"),
    },
    LangSpec {
        name: "javascript",
        extensions: &["js", "mjs", "cjs", "jsx"],
        file_names: &[],
        shebangs: &["node", "nodejs"],
        grammar: "javascript",
        separator: ".",
        attach: &["comment", "decorator"],
        query: include_str!("../languages/javascript/chunks.scm"),
    },
    LangSpec {
        name: "typescript",
        extensions: &["ts", "mts", "cts"],
        file_names: &[],
        shebangs: &["ts-node", "deno", "bun"],
        grammar: "typescript",
        separator: ".",
        attach: &["comment", "decorator"],
        query: include_str!("../languages/typescript/chunks.scm"),
    },
    LangSpec {
        name: "tsx",
        extensions: &["tsx"],
        file_names: &[],
        shebangs: &[],
        grammar: "tsx",
        separator: ".",
        attach: &["comment", "decorator"],
        query: include_str!("../languages/typescript/chunks.scm"),
    },
    LangSpec {
        name: "go",
        extensions: &["go"],
        file_names: &[],
        shebangs: &[],
        grammar: "go",
        separator: ".",
        attach: &["comment"],
        query: include_str!("../languages/go/chunks.scm"),
    },
    LangSpec {
        name: "java",
        extensions: &["java"],
        file_names: &[],
        shebangs: &[],
        grammar: "java",
        separator: ".",
        attach: &["line_comment", "block_comment"],
        query: include_str!("../languages/java/chunks.scm"),
    },
    LangSpec {
        name: "c",
        extensions: &["c", "h"],
        file_names: &[],
        shebangs: &[],
        grammar: "c",
        separator: "::",
        attach: &["comment"],
        query: include_str!("../languages/c/chunks.scm"),
    },
    LangSpec {
        name: "cpp",
        extensions: &[
            "cc", "cpp", "cxx", "c++", "hpp", "hh", "hxx", "h++", "ipp", "tpp", "inl",
        ],
        file_names: &[],
        shebangs: &[],
        grammar: "cpp",
        separator: "::",
        attach: &["comment"],
        query: include_str!("../languages/cpp/chunks.scm"),
    },
    LangSpec {
        name: "ruby",
        extensions: &["rb", "rake", "gemspec", "ru"],
        file_names: &["Rakefile", "Gemfile", "Guardfile", "Vagrantfile"],
        shebangs: &["ruby"],
        grammar: "ruby",
        separator: ".",
        attach: &["comment"],
        query: include_str!("../languages/ruby/chunks.scm"),
    },
    LangSpec {
        name: "php",
        extensions: &["php", "phtml", "php8", "php7"],
        file_names: &[],
        shebangs: &["php"],
        grammar: "php",
        separator: ".",
        attach: &["comment", "attribute_list"],
        query: include_str!("../languages/php/chunks.scm"),
    },
];

/// The one table mapping a grammar name to its tree-sitter language.
pub(crate) fn grammar(name: &str) -> Option<Language> {
    let lang: Language = match name {
        "rust" => tree_sitter_rust::LANGUAGE.into(),
        "python" => tree_sitter_python::LANGUAGE.into(),
        "javascript" => tree_sitter_javascript::LANGUAGE.into(),
        "typescript" => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
        "tsx" => tree_sitter_typescript::LANGUAGE_TSX.into(),
        "go" => tree_sitter_go::LANGUAGE.into(),
        "java" => tree_sitter_java::LANGUAGE.into(),
        "c" => tree_sitter_c::LANGUAGE.into(),
        "cpp" => tree_sitter_cpp::LANGUAGE.into(),
        "ruby" => tree_sitter_ruby::LANGUAGE.into(),
        "php" => tree_sitter_php::LANGUAGE_PHP.into(),
        _ => return None,
    };
    Some(lang)
}

/// The highlight queries of a grammar, as its crate ships them; a grammar
/// that extends another (TypeScript of JavaScript, C++ of C) comes after
/// the one it extends, as tree-sitter's highlighter combines them.
pub(crate) fn highlight_queries(grammar: &str) -> Vec<&'static str> {
    match grammar {
        "rust" => vec![tree_sitter_rust::HIGHLIGHTS_QUERY],
        "python" => vec![tree_sitter_python::HIGHLIGHTS_QUERY],
        "javascript" => vec![
            tree_sitter_javascript::HIGHLIGHT_QUERY,
            tree_sitter_javascript::JSX_HIGHLIGHT_QUERY,
        ],
        "typescript" => vec![
            tree_sitter_typescript::HIGHLIGHTS_QUERY,
            tree_sitter_javascript::HIGHLIGHT_QUERY,
        ],
        "tsx" => vec![
            tree_sitter_typescript::HIGHLIGHTS_QUERY,
            tree_sitter_javascript::HIGHLIGHT_QUERY,
            tree_sitter_javascript::JSX_HIGHLIGHT_QUERY,
        ],
        "go" => vec![tree_sitter_go::HIGHLIGHTS_QUERY],
        "java" => vec![tree_sitter_java::HIGHLIGHTS_QUERY],
        "c" => vec![tree_sitter_c::HIGHLIGHT_QUERY],
        "cpp" => vec![
            tree_sitter_cpp::HIGHLIGHT_QUERY,
            tree_sitter_c::HIGHLIGHT_QUERY,
        ],
        "ruby" => vec![tree_sitter_ruby::HIGHLIGHTS_QUERY],
        "php" => vec![tree_sitter_php::HIGHLIGHTS_QUERY],
        _ => Vec::new(),
    }
}

pub(crate) fn spec(name: &str) -> Option<&'static LangSpec> {
    LANGUAGES.iter().find(|l| l.name == name)
}

/// A language ready to use: grammar plus compiled query.
pub(crate) struct Loaded {
    pub language: Language,
    pub query: Query,
}

/// Compile (once) and return the grammar and query for a language.
pub(crate) fn loaded(name: &str) -> Option<&'static Loaded> {
    static CACHE: OnceLock<Vec<OnceLock<Option<Loaded>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| LANGUAGES.iter().map(|_| OnceLock::new()).collect());
    let idx = LANGUAGES.iter().position(|l| l.name == name)?;
    cache[idx]
        .get_or_init(|| match load(&LANGUAGES[idx]) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::error!(language = name, error = %e, "chunk query failed to load");
                None
            }
        })
        .as_ref()
}

/// Compile a language's grammar and query; errors describe what is wrong.
pub(crate) fn load(spec: &LangSpec) -> Result<Loaded, String> {
    let language =
        grammar(spec.grammar).ok_or_else(|| format!("unknown grammar {}", spec.grammar))?;
    let query = Query::new(&language, spec.query).map_err(|e| format!("{}: {e}", spec.name))?;
    for name in query.capture_names() {
        let ok = *name == "name"
            || *name == "receiver"
            || *name == "scope"
            || name
                .strip_prefix("definition.")
                .is_some_and(|k| crate::ChunkKind::parse(k).is_some());
        if !ok {
            return Err(format!("{}: unknown capture @{name}", spec.name));
        }
    }
    Ok(Loaded { language, query })
}
