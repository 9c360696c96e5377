//! Behavioural tests of `quarry-chunk`.

use std::path::Path;

use quarry_chunk::{
    check_queries, chunk_source, detect_language, languages, ApproxTokenCounter, Chunk,
    ChunkConfig, ChunkKind, TokenCounter,
};

fn chunks(path: &str, src: &str) -> Vec<Chunk> {
    chunk_source(
        Path::new(path),
        src,
        &ChunkConfig::default(),
        &ApproxTokenCounter,
    )
}

fn find<'a>(chunks: &'a [Chunk], kind: ChunkKind, symbol: &str) -> &'a Chunk {
    chunks
        .iter()
        .find(|c| c.kind == kind && c.symbol == symbol)
        .unwrap_or_else(|| panic!("no {kind} {symbol} in {:#?}", listing(chunks)))
}

fn listing(chunks: &[Chunk]) -> Vec<String> {
    chunks
        .iter()
        .map(|c| format!("{} {} {}-{}", c.kind, c.symbol, c.start_line, c.end_line))
        .collect()
}

#[test]
fn every_language_query_compiles() {
    check_queries().expect("all chunk queries compile");
    let langs = languages();
    for l in [
        "rust",
        "python",
        "javascript",
        "typescript",
        "tsx",
        "go",
        "java",
        "c",
        "cpp",
        "ruby",
        "php",
    ] {
        assert!(langs.contains(&l), "{l} missing");
    }
    // Every language actually chunks a trivial program without falling back.
    let samples = [
        ("a.rs", "fn main() {}\n"),
        ("a.py", "def main():\n    pass\n"),
        ("a.js", "function main() {}\n"),
        ("a.ts", "function main(): void {}\n"),
        ("a.tsx", "function main() { return <div/>; }\n"),
        ("a.go", "package a\n\nfunc main() {}\n"),
        ("A.java", "class A { void main() {} }\n"),
        ("a.c", "int main(void) { return 0; }\n"),
        ("a.cpp", "int main() { return 0; }\n"),
        ("a.rb", "def main\nend\n"),
        ("a.php", "<?php\nfunction main() {}\n"),
    ];
    for (path, src) in samples {
        let cs = chunks(path, src);
        assert!(
            cs.iter()
                .any(|c| c.symbol.ends_with("main") && c.kind != ChunkKind::Window),
            "{path}: {:?}",
            listing(&cs)
        );
    }
}

const PY: &str = r#"import os

CONST = 1


@decorator
@other(arg=1)
def top(a, b):
    """Docstring."""
    return a + b


class Outer(Base):
    """Outer docs."""

    class Inner:
        def deep(self):
            return 1

    def method(self):
        def helper():
            return 2
        return helper()
"#;

#[test]
fn python_qualified_names_and_decorators() {
    let cs = chunks("pkg/mod.py", PY);
    let top = find(&cs, ChunkKind::Function, "top");
    assert_eq!(
        (top.start_line, top.end_line),
        (6, 10),
        "decorators are included"
    );
    assert!(top.text.starts_with("@decorator\n@other(arg=1)\ndef top"));
    find(&cs, ChunkKind::Class, "Outer");
    find(&cs, ChunkKind::Class, "Outer.Inner");
    let deep = find(&cs, ChunkKind::Method, "Outer.Inner.deep");
    assert_eq!((deep.start_line, deep.end_line), (17, 18));
    let method = find(&cs, ChunkKind::Method, "Outer.method");
    assert!(
        method.text.contains("def helper"),
        "nested function stays in its parent"
    );
    assert!(
        !cs.iter().any(|c| c.symbol.contains("helper")),
        "{:?}",
        listing(&cs)
    );
    // embed_text: header with path + symbol, then enclosing context lines.
    assert!(deep.embed_text.starts_with(
        "pkg/mod.py: method Outer.Inner.deep\nclass Outer(Base):\nclass Inner:\n        def deep"
    ));
    // Module-level code is kept.
    let module = find(&cs, ChunkKind::Module, "mod");
    assert_eq!((module.start_line, module.end_line), (1, 3));
    assert_eq!(module.text, "import os\n\nCONST = 1");
}

const RS: &str = r#"use std::fmt;

/// A point.
#[derive(Debug)]
pub struct Point {
    x: i32,
}

impl Point {
    /// Make one.
    #[inline]
    pub fn new(x: i32) -> Self {
        Point { x }
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.x)
    }
}

impl<T: Clone> From<T> for Wrapper<T> {
    fn from(t: T) -> Self {
        Wrapper(t)
    }
}

// Free function.
fn free() {}

mod inner {
    pub fn nested() {}
}
"#;

#[test]
fn rust_qualified_names_docs_and_attributes() {
    let cs = chunks("src/point.rs", RS);
    let point = find(&cs, ChunkKind::Struct, "Point");
    assert_eq!(
        (point.start_line, point.end_line),
        (3, 7),
        "doc + attribute attached"
    );
    let new = find(&cs, ChunkKind::Method, "Point::new");
    assert_eq!((new.start_line, new.end_line), (10, 14));
    assert!(new
        .text
        .starts_with("    /// Make one.\n    #[inline]\n    pub fn new"));
    let fmt = find(&cs, ChunkKind::Method, "Point::fmt");
    assert!(fmt
        .embed_text
        .starts_with("src/point.rs: method Point::fmt\nimpl fmt::Display for Point {\n"));
    find(&cs, ChunkKind::Impl, "Point");
    find(&cs, ChunkKind::Method, "Wrapper::from");
    let free = find(&cs, ChunkKind::Function, "free");
    assert_eq!(
        (free.start_line, free.end_line),
        (29, 30),
        "plain comment attached"
    );
    find(&cs, ChunkKind::Function, "inner::nested");
    let module = find(&cs, ChunkKind::Module, "point");
    assert_eq!(module.text, "use std::fmt;");
    assert!(cs.iter().all(|c| c.language == "rust"));
}

#[test]
fn go_receiver_methods() {
    let src = "package s\n\ntype S struct{ n int }\n\n// Get returns n.\nfunc (s *S) Get() int { return s.n }\n\nfunc (s S) Put(n int) {}\n\nfunc Free() {}\n";
    let cs = chunks("s.go", src);
    let get = find(&cs, ChunkKind::Method, "S.Get");
    assert_eq!(get.start_line, 5, "comment attached");
    find(&cs, ChunkKind::Method, "S.Put");
    find(&cs, ChunkKind::Function, "Free");
    find(&cs, ChunkKind::Struct, "S");
}

#[test]
fn cpp_out_of_line_methods_and_classes() {
    let src = "namespace ns {\nclass Foo {\n public:\n  int bar() const;\n  void inl() { }\n};\n\nint Foo::bar() const {\n  return 1;\n}\n}\n\nvoid Other::Nested::baz() {}\n";
    let cs = chunks("foo.cc", src);
    find(&cs, ChunkKind::Class, "ns::Foo");
    find(&cs, ChunkKind::Method, "ns::Foo::inl");
    let bar = find(&cs, ChunkKind::Method, "ns::Foo::bar");
    assert_eq!((bar.start_line, bar.end_line), (8, 10));
    find(&cs, ChunkKind::Method, "Other::Nested::baz");
}

#[test]
fn java_js_ts_ruby_php_methods() {
    let cs = chunks(
        "A.java",
        "class A {\n  /** Doc. */\n  @Override\n  public String toString() { return \"\"; }\n}\n",
    );
    let m = find(&cs, ChunkKind::Method, "A.toString");
    assert_eq!(m.start_line, 2, "javadoc attached");

    let cs = chunks(
        "a.js",
        "/** Doc. */\nexport class A {\n  m() { return 1; }\n}\n",
    );
    assert_eq!(find(&cs, ChunkKind::Class, "A").start_line, 1);
    find(&cs, ChunkKind::Method, "A.m");

    let cs = chunks(
        "a.ts",
        "export default class A {\n  private m(x: number): number { return x; }\n}\n",
    );
    find(&cs, ChunkKind::Method, "A.m");

    let cs = chunks(
        "a.rb",
        "class A\n  # Doc.\n  def m\n    1\n  end\n\n  def self.s\n  end\nend\n",
    );
    assert_eq!(find(&cs, ChunkKind::Method, "A.m").start_line, 2);
    find(&cs, ChunkKind::Method, "A.s");

    let cs = chunks(
        "a.php",
        "<?php\nclass A {\n  public function m() { return 1; }\n}\n",
    );
    find(&cs, ChunkKind::Method, "A.m");
}

fn long_function(lines: usize) -> String {
    let mut src = String::from("use std::io;\n\n/// Does a lot.\npub fn long_one(\n    alpha: usize,\n    beta: usize,\n) -> usize {\n");
    for i in 0..lines {
        src.push_str(&format!(
            "    let value_{i} = compute(alpha, beta, {i}) + other_thing({i});\n"
        ));
    }
    src.push_str("    0\n}\n");
    src
}

#[test]
fn long_function_is_split_into_windows_repeating_the_signature() {
    let src = long_function(120);
    let total_lines = src.lines().count() as u32;
    let cfg = ChunkConfig::default();
    let cs = chunk_source(Path::new("src/long.rs"), &src, &cfg, &ApproxTokenCounter);
    let windows: Vec<&Chunk> = cs.iter().filter(|c| c.symbol == "long_one").collect();
    assert!(windows.len() > 3, "{:?}", listing(&cs));
    assert!(windows.iter().all(|w| w.kind == ChunkKind::Function));
    assert_eq!(
        windows[0].start_line, 3,
        "first window starts at the doc comment"
    );
    assert_eq!(windows.last().unwrap().end_line, total_lines);
    for pair in windows.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert!(b.start_line > a.start_line);
        assert!(b.start_line <= a.end_line + 1, "contiguous or overlapping");
        assert_eq!(
            a.end_line + 1 - b.start_line,
            cfg.window_overlap_lines as u32,
            "overlap"
        );
    }
    for w in &windows[1..] {
        assert!(
            w.embed_text
                .starts_with("src/long.rs: function long_one\npub fn long_one(\n    alpha: usize,\n    beta: usize,\n) -> usize {\n"),
            "{}",
            w.embed_text
        );
        assert!(!w.text.contains("pub fn long_one"));
    }
    for w in &windows {
        let tokens = ApproxTokenCounter.count(&w.embed_text);
        assert!(tokens <= cfg.max_tokens + 20, "window too large: {tokens}");
    }
}

#[test]
fn unknown_extension_gets_line_windows() {
    let src: String = (1..=100).map(|i| format!("line number {i}\n")).collect();
    let cs = chunks("notes/readme.txt", &src);
    assert!(cs.len() >= 3);
    for c in &cs {
        assert_eq!(c.kind, ChunkKind::Window);
        assert_eq!(c.language, "text");
        assert_eq!(c.symbol, "readme.txt");
        assert!(c.end_line - c.start_line < 40);
    }
    assert_eq!(cs[0].start_line, 1);
    assert_eq!(cs.last().unwrap().end_line, 100);
    assert_eq!(cs[0].end_line + 1 - cs[1].start_line, 8, "fallback overlap");
}

#[test]
fn broken_code_still_yields_chunks() {
    let src = "def good(a):\n    return a\n\ndef broken(:\n    return ((\n\nclass Fine:\n    def ok(self):\n        return 1\n";
    let cs = chunks("b.py", src);
    find(&cs, ChunkKind::Function, "good");
    find(&cs, ChunkKind::Method, "Fine.ok");

    let src = "fn ok() -> u32 { 1 }\n\nfn broken( { let x = ;\n\nstruct S { a: u8 }\n";
    let cs = chunks("b.rs", src);
    find(&cs, ChunkKind::Function, "ok");

    // Nothing parseable at all: line windows in the detected language.
    let cs = chunks("junk.py", ")))) ((( ]]] :::: \n%%%% $$$ \n");
    assert!(!cs.is_empty());
    assert!(cs
        .iter()
        .all(|c| c.kind == ChunkKind::Window && c.language == "python"));
}

#[test]
fn deep_nesting_does_not_crash() {
    let depth = 10_000;
    let py = format!("x = {}1{}\n", "(".repeat(depth), ")".repeat(depth));
    let cs = chunks("deep.py", &py);
    assert!(!cs.is_empty());
    let rs = format!("fn f() {}{}\n", "{".repeat(depth), "}".repeat(depth));
    let cs = chunks("deep.rs", &rs);
    assert!(!cs.is_empty());
    let unbalanced = format!("def f():\n    return {}\n", "[".repeat(depth));
    let _ = chunks("deep2.py", &unbalanced);
    let js = format!(
        "function f() {{ return {}1{}; }}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    find(&chunks("deep.js", &js), ChunkKind::Function, "f");
}

#[test]
fn empty_and_blank_files_yield_nothing() {
    assert!(chunks("a.rs", "").is_empty());
    assert!(chunks("a.py", "\n\n   \n").is_empty());
    assert!(chunks("a.txt", "").is_empty());
}

#[test]
fn huge_single_line_is_capped() {
    let line = "abc ".repeat(200_000);
    let cfg = ChunkConfig::default();
    let cap = cfg.max_tokens * 16;
    for path in ["big.txt", "big.js", "big.py"] {
        let cs = chunks(path, &line);
        assert!(!cs.is_empty(), "{path}");
        for c in &cs {
            assert!(c.text.len() <= cap, "{path}: {} bytes", c.text.len());
        }
    }
    // A function with one giant line still produces bounded chunks.
    let src = format!(
        "def f():\n    x = '{}'\n    return x\n",
        "y".repeat(500_000)
    );
    for c in chunks("f.py", &src) {
        assert!(c.text.len() <= cap);
    }
}

#[test]
fn small_containers_whole_large_containers_by_parts() {
    let mut src = String::from("class Big:\n    \"\"\"Big class.\"\"\"\n\n    LIMIT = 10\n\n");
    for i in 0..30 {
        src.push_str(&format!(
            "    def m{i}(self, value):\n        return self.compute(value, {i}) * {i}\n\n"
        ));
    }
    src.push_str("    TRAILER = 'kept'\n");
    let cs = chunks("big.py", &src);
    assert!(!cs
        .iter()
        .any(|c| c.kind == ChunkKind::Class && c.start_line == 1 && c.end_line > 10));
    let header = find(&cs, ChunkKind::Class, "Big");
    assert_eq!((header.start_line, header.end_line), (1, 4));
    assert_eq!(
        cs.iter().filter(|c| c.kind == ChunkKind::Method).count(),
        30
    );
    let trailer = cs
        .iter()
        .find(|c| c.text.contains("TRAILER"))
        .expect("trailer kept");
    assert_eq!(trailer.kind, ChunkKind::Class);
    assert!(
        trailer.embed_text.contains("class Big:\n    TRAILER"),
        "{}",
        trailer.embed_text
    );

    let cs = chunks(
        "small.py",
        "class Small:\n    def a(self):\n        return 1\n",
    );
    let whole = find(&cs, ChunkKind::Class, "Small");
    assert_eq!((whole.start_line, whole.end_line), (1, 3));
    find(&cs, ChunkKind::Method, "Small.a");
}

#[test]
fn module_level_code_is_split_by_budget() {
    let src: String = (0..200)
        .map(|i| format!("CONSTANT_NUMBER_{i} = compute_value({i}, 'text')\n"))
        .collect();
    let cs = chunks("consts.py", &src);
    assert!(cs.len() > 2);
    assert!(cs
        .iter()
        .all(|c| c.kind == ChunkKind::Module && c.symbol == "consts"));
    assert_eq!(cs[0].start_line, 1);
    assert_eq!(cs.last().unwrap().end_line, 200);
    for pair in cs.windows(2) {
        assert_eq!(
            pair[0].end_line + 1,
            pair[1].start_line,
            "no gaps, no overlap"
        );
    }
}

#[test]
fn language_detection() {
    let d = |p: &str| detect_language(Path::new(p), None);
    assert_eq!(d("a/b.rs"), Some("rust"));
    assert_eq!(d("x.PY"), Some("python"));
    assert_eq!(d("x.tsx"), Some("tsx"));
    assert_eq!(d("x.ts"), Some("typescript"));
    assert_eq!(d("x.mjs"), Some("javascript"));
    assert_eq!(d("x.hpp"), Some("cpp"));
    assert_eq!(d("x.h"), Some("c"));
    assert_eq!(d("Rakefile"), Some("ruby"));
    assert_eq!(d("README.md"), None);
    assert_eq!(d("Makefile"), None);
    let s = |line: &str| detect_language(Path::new("bin/tool"), Some(line));
    assert_eq!(s("#!/usr/bin/env python3"), Some("python"));
    assert_eq!(s("#!/usr/bin/python3.11 -u"), Some("python"));
    assert_eq!(s("#!/usr/bin/env -S node --harmony"), Some("javascript"));
    assert_eq!(s("#!/bin/sh"), None);
    // A script without extension is chunked by its shebang.
    let cs = chunks(
        "bin/tool",
        "#!/usr/bin/env python3\ndef main():\n    pass\n",
    );
    find(&cs, ChunkKind::Function, "main");
}

#[test]
fn chunk_kind_strings_round_trip() {
    for k in [
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
    ] {
        assert_eq!(ChunkKind::parse(k.as_str()), Some(k));
    }
    assert_eq!(ChunkKind::parse("nope"), None);
}

#[test]
fn approx_token_counter_is_plausible() {
    let t = ApproxTokenCounter;
    assert_eq!(t.count(""), 0);
    assert_eq!(t.count("hello world"), 2);
    assert_eq!(t.count("fn main() {}"), 6);
    assert!(t.count("getUserName") >= 3);
    assert!(t.count("chunk_source") >= 3);
}

#[test]
fn crlf_sources_are_handled() {
    let src = "def a():\r\n    return 1\r\n\r\ndef b():\r\n    return 2\r\n";
    let cs = chunks("crlf.py", src);
    let b = find(&cs, ChunkKind::Function, "b");
    assert_eq!((b.start_line, b.end_line), (4, 5));
    assert_eq!(b.text, "def b():\r\n    return 2");
}

#[test]
fn scopes_qualify_nested_names() {
    let cs = chunks(
        "a.php",
        "<?php\nnamespace App {\n  class A {\n    public function m() { return 1; }\n  }\n}\n",
    );
    find(&cs, ChunkKind::Method, "App.A.m");
    let cs = chunks(
        "a.rb",
        "module Outer\n  module Inner\n    def self.go\n    end\n  end\nend\n",
    );
    find(&cs, ChunkKind::Method, "Outer.Inner.go");
    let cs = chunks(
        "a.ts",
        "namespace N {\n  export class C {\n    m(): void {}\n  }\n}\n",
    );
    find(&cs, ChunkKind::Method, "N.C.m");
    let cs = chunks("m.rs", "macro_rules! square {\n    ($x:expr) => { $x * $x };\n}\n\nmod a {\n    mod b {\n        pub struct S;\n        impl S { fn f(&self) {} }\n    }\n}\n");
    find(&cs, ChunkKind::Function, "square");
    find(&cs, ChunkKind::Method, "a::b::S::f");
}
