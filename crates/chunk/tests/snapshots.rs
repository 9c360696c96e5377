//! Snapshot tests of chunk boundaries on real-looking code.
//!
//! Each fixture in `tests/fixtures/` is chunked with the default config and
//! rendered as one `kind symbol start-end` line per chunk; the listing is
//! compared with `tests/snapshots/<fixture>.snap`. Run with
//! `UPDATE_SNAPSHOTS=1` to rewrite the snapshots (then review them).

use std::path::{Path, PathBuf};

use quarry_chunk::{chunk_source, ApproxTokenCounter, ChunkConfig};

fn render(fixture: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let source = std::fs::read_to_string(dir.join(fixture)).expect("fixture");
    let rel = PathBuf::from("src").join(fixture);
    let chunks = chunk_source(&rel, &source, &ChunkConfig::default(), &ApproxTokenCounter);
    let lines: Vec<&str> = source.lines().collect();
    // Nothing is lost: every line with content is inside some chunk
    // (or, for a large container's lone header line, in its methods' context).
    for (i, line) in lines.iter().enumerate() {
        let n = i as u32 + 1;
        let t = line.trim();
        if t.is_empty()
            || t.chars().all(|c| "{}[]();,".contains(c))
            || t == "end"
            || t.starts_with("} ")
        {
            continue;
        }
        assert!(
            chunks.iter().any(|c| c.start_line <= n && n <= c.end_line)
                // a large container's lone header line is context of its methods
                || chunks.iter().any(|c| c.embed_text.contains(&format!("\n{t}\n"))),
            "{fixture}:{n} not covered: {line}"
        );
    }
    let mut out = String::new();
    for c in &chunks {
        // Invariants checked on every fixture.
        assert!(c.start_line >= 1 && c.start_line <= c.end_line, "{c:?}");
        let expected = lines[c.start_line as usize - 1..c.end_line as usize].join("\n");
        assert_eq!(c.text, expected, "text must be the exact source lines");
        assert!(c.embed_text.ends_with(&c.text));
        assert!(c
            .embed_text
            .starts_with(&format!("src/{fixture}: {}", c.kind)));
        out.push_str(&format!(
            "{} {} {} {}-{}\n",
            c.language, c.kind, c.symbol, c.start_line, c.end_line
        ));
    }
    out
}

fn check(fixture: &str) {
    let actual = render(fixture);
    let snap = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{fixture}.snap"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::write(&snap, &actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&snap).unwrap_or_else(|_| {
        panic!(
            "missing snapshot {}; run with UPDATE_SNAPSHOTS=1",
            snap.display()
        )
    });
    assert_eq!(actual, expected, "snapshot mismatch for {fixture}");
}

#[test]
fn rust_fixture() {
    check("config.rs");
}

#[test]
fn python_fixture() {
    check("service.py");
}

#[test]
fn javascript_fixture() {
    check("widget.js");
}

#[test]
fn typescript_fixture() {
    check("client.ts");
}

#[test]
fn tsx_fixture() {
    check("Button.tsx");
}

#[test]
fn go_fixture() {
    check("server.go");
}

#[test]
fn java_fixture() {
    check("Cache.java");
}

#[test]
fn c_fixture() {
    check("buffer.c");
}

#[test]
fn cpp_fixture() {
    check("shapes.cpp");
}

#[test]
fn ruby_fixture() {
    check("account.rb");
}

#[test]
fn php_fixture() {
    check("Repo.php");
}
