//! Run a language's chunk query over a parsed file and turn the matches into
//! a flat, parent-linked list of definitions. Language-agnostic: everything
//! language-specific comes from the [`LangSpec`] table and the `.scm` query.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use tree_sitter::{
    Node, ParseOptions, ParseState, Parser, QueryCursor, QueryCursorOptions, QueryCursorState,
    StreamingIterator,
};

use crate::languages::{LangSpec, Loaded};
use crate::ChunkKind;

/// Parsing is cancelled after this long (pathological input).
const PARSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Query execution is cancelled after this long.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest symbol component kept (in bytes).
const MAX_NAME_BYTES: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DefKind {
    /// Becomes a chunk of this kind.
    Chunk(ChunkKind),
    /// A namespace (Rust `mod`, C++ `namespace`, Ruby `module`): only qualifies names.
    Scope,
}

#[derive(Debug, Clone)]
pub(crate) struct Def {
    pub kind: DefKind,
    pub start_byte: usize,
    pub end_byte: usize,
    /// First row, including attached doc comments / attributes (0-based).
    pub start_row: usize,
    /// Last row (0-based, inclusive).
    pub end_row: usize,
    /// Local name, already prefixed with an explicit receiver if any.
    pub name: String,
    /// Row holding the name: used as the context line for nested chunks.
    pub name_row: usize,
    /// Last row of the signature (rows `name_row..=sig_end_row`).
    pub sig_end_row: usize,
    /// Index of the innermost enclosing definition.
    pub parent: Option<usize>,
}

pub(crate) struct Extracted {
    pub defs: Vec<Def>,
    pub has_error: bool,
}

/// Last row a node really occupies (a node ending at column 0 ends on the previous row).
fn last_row(node: Node) -> usize {
    let end = node.end_position();
    let start = node.start_position();
    if end.column == 0 && end.row > start.row {
        end.row - 1
    } else {
        end.row
    }
}

/// Parse `source` and extract definitions. `None` when parsing failed or timed out.
pub(crate) fn extract(source: &str, spec: &LangSpec, loaded: &Loaded) -> Option<Extracted> {
    let mut parser = Parser::new();
    parser.set_language(&loaded.language).ok()?;
    let bytes = source.as_bytes();
    let started = Instant::now();
    let mut on_progress = |_: &ParseState| started.elapsed() > PARSE_TIMEOUT;
    let tree = parser.parse_with_options(
        &mut |i, _| if i < bytes.len() { &bytes[i..] } else { &[] },
        None,
        Some(ParseOptions::new().progress_callback(&mut on_progress)),
    );
    let Some(tree) = tree else {
        tracing::warn!(language = spec.name, "parse cancelled or failed");
        return None;
    };
    let root = tree.root_node();
    let query = &loaded.query;
    let names = query.capture_names();

    struct Raw<'t> {
        node: Node<'t>,
        kind: DefKind,
        name: Node<'t>,
        receiver: Option<Node<'t>>,
        pattern: usize,
    }
    let mut by_node: HashMap<usize, Raw> = HashMap::new();
    let mut cursor = QueryCursor::new();
    let q_started = Instant::now();
    let mut on_query_progress = |_: &QueryCursorState| q_started.elapsed() > QUERY_TIMEOUT;
    let mut matches = cursor.matches_with_options(
        query,
        root,
        bytes,
        QueryCursorOptions::new().progress_callback(&mut on_query_progress),
    );
    while let Some(m) = matches.next() {
        let mut def = None;
        let mut name = None;
        let mut receiver = None;
        for cap in m.captures {
            let cname = names[cap.index as usize];
            if cname == "name" {
                name = Some(cap.node);
            } else if cname == "receiver" {
                receiver = Some(cap.node);
            } else if cname == "scope" {
                def = Some((cap.node, DefKind::Scope));
            } else if let Some(k) = cname.strip_prefix("definition.").and_then(ChunkKind::parse) {
                def = Some((cap.node, DefKind::Chunk(k)));
            }
        }
        let (Some((node, kind)), Some(name)) = (def, name) else {
            continue;
        };
        let raw = Raw {
            node,
            kind,
            name,
            receiver,
            pattern: m.pattern_index,
        };
        // Several patterns may match one node: the earliest pattern wins.
        match by_node.get(&node.id()) {
            Some(prev) if prev.pattern <= raw.pattern => {}
            _ => {
                by_node.insert(node.id(), raw);
            }
        }
    }
    drop(matches);

    // A wrapper (decorated_definition, export_statement, template_declaration)
    // and the definition it wraps share the name node: keep the outermost.
    let mut by_name: HashMap<usize, Raw> = HashMap::new();
    for raw in by_node.into_values() {
        match by_name.get(&raw.name.id()) {
            Some(prev) if prev.node.byte_range().len() >= raw.node.byte_range().len() => {}
            _ => {
                by_name.insert(raw.name.id(), raw);
            }
        }
    }

    let mut raws: Vec<Raw> = by_name.into_values().collect();
    raws.sort_by_key(|r| (r.node.start_byte(), std::cmp::Reverse(r.node.end_byte())));

    let mut defs: Vec<Def> = Vec::with_capacity(raws.len());
    let mut stack: Vec<usize> = Vec::new();
    for raw in &raws {
        let (start_byte, end_byte) = (raw.node.start_byte(), raw.node.end_byte());
        while let Some(&top) = stack.last() {
            let t = &defs[top];
            if t.start_byte <= start_byte && end_byte <= t.end_byte {
                break;
            }
            stack.pop();
        }
        let parent = stack.last().copied();
        let mut name = node_name(raw.name, source);
        let mut kind = raw.kind;
        if let Some(recv) = raw.receiver {
            name = format!("{}{}{}", node_name(recv, source), spec.separator, name);
            // `Type.method = function` / `func (t Type) M()` / `void T::m()`.
            if kind == DefKind::Chunk(ChunkKind::Function) {
                kind = DefKind::Chunk(ChunkKind::Method);
            }
        }
        let name_row = raw.name.start_position().row;
        let sig_end_row = match kind {
            DefKind::Chunk(ChunkKind::Function | ChunkKind::Method) => {
                signature_end(raw.node, raw.name, source).max(name_row)
            }
            _ => name_row,
        };
        defs.push(Def {
            kind,
            start_byte,
            end_byte,
            start_row: attached_start(raw.node, spec),
            end_row: last_row(raw.node),
            name,
            name_row,
            sig_end_row,
            parent,
        });
        stack.push(defs.len() - 1);
    }
    Some(Extracted {
        defs,
        has_error: root.has_error(),
    })
}

/// The text of a name node: first line, trimmed, bounded.
fn node_name(node: Node, source: &str) -> String {
    let text = source.get(node.byte_range()).unwrap_or("");
    let line = text.lines().next().unwrap_or("").trim();
    crate::truncate_str(line, MAX_NAME_BYTES).to_string()
}

/// Row where a definition starts once directly preceding doc comments,
/// attributes and decorators (per the language table) are included.
fn attached_start(node: Node, spec: &LangSpec) -> usize {
    let mut start = node.start_position().row;
    let mut cur = node;
    for _ in 0..10_000 {
        // A definition that opens its parent node (e.g. the first statement of
        // a body) may have its comments just before that parent.
        while cur.prev_sibling().is_none() {
            match cur.parent() {
                Some(p) if p.start_byte() == cur.start_byte() => cur = p,
                _ => break,
            }
        }
        let Some(prev) = cur.prev_sibling() else {
            break;
        };
        if !spec.attach.contains(&prev.kind()) || last_row(prev) + 1 < start {
            break;
        }
        // A trailing comment on the previous statement's line is not ours.
        if let Some(pp) = prev.prev_sibling() {
            if last_row(pp) >= prev.start_position().row {
                break;
            }
        }
        start = prev.start_position().row;
        cur = prev;
    }
    start
}

/// Last row of a function's signature: the row before its body starts, or the
/// body's first row when the body opens mid-line (`fn f() {`).
fn signature_end(def: Node, name: Node, source: &str) -> usize {
    let name_row = name.start_position().row;
    let mut queue = VecDeque::from([def]);
    let mut visited = 0usize;
    while let Some(node) = queue.pop_front() {
        visited += 1;
        if visited > 4_000 {
            break;
        }
        let mut cursor = node.walk();
        if !cursor.goto_first_child() {
            continue;
        }
        loop {
            let child = cursor.node();
            if cursor.field_name() == Some("body") && child.start_byte() >= name.end_byte() {
                let pos = child.start_position();
                let line_start = child.start_byte() - pos.column;
                let line = source.get(line_start..child.start_byte()).unwrap_or("");
                let opens_mid_line = !line.trim().is_empty();
                return if opens_mid_line || pos.row == 0 {
                    pos.row
                } else {
                    pos.row - 1
                };
            }
            queue.push_back(child);
            if !cursor.goto_next_sibling() {
                break;
            }
        }
    }
    name_row
}
