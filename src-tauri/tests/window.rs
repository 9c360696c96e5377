//! End-to-end tests of the real window: the built `quarry-app` binary under
//! Xvfb, driven through WebDriver (`tauri-driver` in front of
//! WebKitWebDriver), over a copy of the fixture repository with the real
//! model. Screenshots go to `$QUARRY_SCREENSHOTS` (default: the target's
//! tmp directory); README shows one.
//!
//! Needs `Xvfb`, `WebKitWebDriver` (Debian: xvfb, webkit2gtk-driver) and
//! `tauri-driver` (`cargo install tauri-driver`); `.ci/run` installs them.

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[path = "../../tests/support.rs"]
mod support;
use support::{copy_tree, fixtures};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const CTRL: &str = "\u{E009}";
const ENTER: &str = "\u{E007}";
const RELEASE: &str = "\u{E000}";
const ARROW_DOWN: &str = "\u{E015}";

/// A child process killed when the test ends, pass or fail.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn find_program(name: &str) -> PathBuf {
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"))
        .join("bin");
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([cargo_bin])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is needed for the window tests (see the header of this file)")
        })
}

/// Starts Xvfb on a free display and returns it with the display name.
fn start_xvfb() -> (Killed, String) {
    let xvfb = find_program("Xvfb");
    for n in 90..190 {
        if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
            || Path::new(&format!("/tmp/.X{n}-lock")).exists()
        {
            continue;
        }
        let child = Command::new(&xvfb)
            .args([
                format!(":{n}").as_str(),
                "-screen",
                "0",
                "1440x900x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        let child = Killed(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
                return (child, format!(":{n}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("no free X display for Xvfb");
}

/// A WebDriver session on the app.
struct Driver {
    base: String,
    session: String,
    agent: ureq::Agent,
}

impl Driver {
    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let request = self.agent.request(method, &url);
        let response = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        match response {
            Ok(r) => Ok(r.into_json::<Value>().unwrap()["value"].clone()),
            Err(ureq::Error::Status(code, r)) => Err(format!(
                "WebDriver {method} {path}: {code} {}",
                r.into_string().unwrap_or_default()
            )),
            Err(e) => Err(format!("WebDriver {method} {path}: {e}")),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The elements matching `css`; none while the page is (re)loading.
    fn find_all(&self, css: &str) -> Vec<String> {
        let found = self.try_call(
            "POST",
            "/elements",
            Some(json!({ "using": "css selector", "value": css })),
        );
        match found {
            Ok(list) => list
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e[ELEMENT].as_str().unwrap().to_string())
                .collect(),
            Err(e) if e.contains("no such frame") => Vec::new(),
            Err(e) => panic!("{e}"),
        }
    }

    fn find(&self, css: &str) -> Option<String> {
        self.find_all(css).into_iter().next()
    }

    fn element(&self, css: &str) -> String {
        self.wait(&format!("an element {css}"), || self.find(css))
    }

    fn click(&self, css: &str) {
        let el = self.element(css);
        self.call("POST", &format!("/element/{el}/click"), Some(json!({})));
    }

    fn type_into(&self, css: &str, text: &str) {
        let el = self.element(css);
        self.call(
            "POST",
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn script(&self, source: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": source, "args": [] })),
        )
    }

    fn text(&self, css: &str) -> String {
        let el = self.element(css);
        self.call("GET", &format!("/element/{el}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Polls `f` until it gives a value, for up to 30 s.
    fn wait<T>(&self, what: &str, f: impl FnMut() -> Option<T>) -> T {
        self.wait_up_to(Duration::from_secs(30), what, f)
    }

    fn wait_up_to<T>(&self, limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() > deadline {
                let body = self.script("return document.body.innerText");
                panic!("timed out waiting for {what}; the window shows:\n{body}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The `data-symbol` of the hits shown, best first.
    fn hit_symbols(&self) -> Vec<String> {
        self.script(
            "return Array.from(document.querySelectorAll('#results .hit')).map(h => h.dataset.symbol)",
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap_or_default().to_string())
        .collect()
    }

    /// Clears the search box, then types `query` key by key.
    fn type_query(&self, query: &str) {
        self.set_query("");
        self.type_into("#search-input", query);
    }

    /// Puts `query` into the search box the way a paste does: all at once,
    /// newlines included, as one input event.
    fn set_query(&self, query: &str) {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({
                "script": "const box = document.querySelector('#search-input'); box.focus(); \
                           box.value = arguments[0]; \
                           box.dispatchEvent(new Event('input', { bubbles: true }));",
                "args": [query]
            })),
        );
    }

    /// Waits until the first hit is `expected`.
    fn wait_for_first(&self, expected: &str) {
        self.wait(&format!("{expected} to rank first"), || {
            (self.hit_symbols().first().map(String::as_str) == Some(expected)).then_some(())
        });
    }

    /// Waits until the mode switch shows auto detection as `label`.
    fn wait_for_mode(&self, label: &str) {
        self.wait(&format!("the detected mode to read {label}"), || {
            self.text("#detected-mode").contains(label).then_some(())
        });
    }

    fn screenshot(&self, name: &str) {
        let data = self.call("GET", "/screenshot", None);
        let png = base64_decode(data.as_str().unwrap());
        assert_eq!(&png[1..4], b"PNG");
        let dir = std::env::var_os("QUARRY_SCREENSHOTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), png).unwrap();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = self.agent.delete(&url).call();
    }
}

/// Standard base64 (the screenshot encoding), without a dependency for it.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let clean: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= value(*c) << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

struct Case {
    mode: String,
    expected: String,
    query: String,
}

/// The first query of each mode from the shared fixture query list.
fn first_case(mode: &str) -> Case {
    std::fs::read_to_string(fixtures().join("queries.tsv"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let mut parts = line.splitn(3, '\t');
            Case {
                mode: parts.next().unwrap().to_string(),
                expected: parts.next().unwrap().to_string(),
                query: parts
                    .next()
                    .unwrap()
                    .replace("\\n", "\n")
                    .replace("\\t", "\t"),
            }
        })
        .find(|c| c.mode == mode)
        .unwrap()
}

/// Indexed code written to break out of a text view if it were ever
/// treated as markup.
const HOSTILE: &str = r#"def render_unsafe_banner():
    """Returns markup: <script>window.__xss = 1</script> and </code></pre>"""
    return '<img src=x onerror="window.__xss = 2"><b id="injected">bold</b>'
"#;

#[test]
fn the_window_indexes_a_repository_and_finds_code_three_ways() {
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("quarry-window");
    let _ = std::fs::remove_dir_all(&scratch);
    let repo = scratch.join("demo-repo");
    copy_tree(&fixtures().join("repo"), &repo);
    std::fs::write(repo.join("app/banner.py"), HOSTILE).unwrap();

    // The tests' own editor: records what it was asked to open.
    let opened = scratch.join("opened.txt");
    let editor = scratch.join("editor.sh");
    std::fs::write(
        &editor,
        format!("#!/bin/sh\necho \"$@\" > '{}'\n", opened.display()),
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        scratch.join("config.toml"),
        format!(
            "editor = \"'{}' --line {{line}} {{path}}\"\n",
            editor.display()
        ),
    )
    .unwrap();

    let (_xvfb, display) = start_xvfb();
    let port = free_port();
    let mut driver = Command::new(find_program("tauri-driver"));
    driver
        .args([
            "--port",
            &port.to_string(),
            "--native-port",
            &free_port().to_string(),
        ])
        .env("DISPLAY", &display)
        .env("QUARRY_DB", scratch.join("index"))
        .env("QUARRY_CONFIG", scratch.join("config.toml"))
        .env("QUARRY_EMBEDDING_CACHE", scratch.join("embedding-cache"))
        .env_remove("WAYLAND_DISPLAY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut driver_process = Killed(driver.spawn().expect("start tauri-driver"));
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(120))
        .build();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while agent.get(&format!("{base}/status")).call().is_err() {
        if Instant::now() > deadline {
            let mut err = String::new();
            if let Some(mut e) = driver_process.0.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("tauri-driver did not start: {err}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let app = env!("CARGO_BIN_EXE_quarry-app");
    let created: Value = agent
        .post(&format!("{base}/session"))
        .send_json(json!({ "capabilities": { "alwaysMatch": {
            "browserName": "wry",
            "tauri:options": { "application": app }
        }}}))
        .unwrap_or_else(|e| panic!("cannot open a session on {app}: {e}"))
        .into_json()
        .unwrap();
    let d = Driver {
        base,
        session: created["value"]["sessionId"].as_str().unwrap().to_string(),
        agent,
    };

    // A fresh start: no repositories, the empty state says what to do.
    d.element("#add-repo-path");
    // Add the repository by typing its path.
    d.type_into("#add-repo-path", repo.to_str().unwrap());
    d.click("#add-repo-submit");
    let root = repo.canonicalize().unwrap();
    let state_css = format!("li.repo[data-root=\"{}\"] .repo-state", root.display());
    // Up to five minutes: on a fresh machine the model is loaded first.
    d.wait_up_to(
        Duration::from_secs(300),
        "the repository to be indexed",
        || (d.find(&state_css).is_some() && d.text(&state_css) == "Up to date").then_some(()),
    );

    // Describe behaviour: typed, results as you type.
    let text = first_case("text");
    d.type_query(&text.query);
    d.wait_for_first(&text.expected);
    d.wait_for_mode("Describe");
    d.screenshot("quarry-search.png");

    // Keyboard: from the box, ArrowDown selects the first hit and Enter
    // opens it in the configured editor at its line.
    d.type_into("#search-input", ARROW_DOWN);
    d.type_into("#results .hit", ENTER);
    let args = d.wait("the editor to be started", || {
        std::fs::read_to_string(&opened).ok()
    });
    let retry = root.join("src/retry.rs");
    assert!(
        args.starts_with("--line ") && args.trim_end().ends_with(retry.to_str().unwrap()),
        "{args}"
    );

    // The preview expands around the first hit.
    let hits = d.find_all("#results .hit .hit-expand");
    d.call(
        "POST",
        &format!("/element/{}/click", hits[0]),
        Some(json!({})),
    );
    d.wait("the preview", || d.find("#results .hit .hit-preview"));
    d.screenshot("quarry-preview.png");

    // Paste code: multi-line, searched with Ctrl+Enter.
    let code = first_case("code");
    d.set_query(&code.query);
    d.type_into("#search-input", &format!("{CTRL}{ENTER}{RELEASE}"));
    d.wait_for_first(&code.expected);
    d.wait_for_mode("code");

    // Paste issue.
    let issue = first_case("issue");
    d.set_query(&issue.query);
    d.type_into("#search-input", &format!("{CTRL}{ENTER}{RELEASE}"));
    d.wait_for_first(&issue.expected);
    d.wait_for_mode("issue");
    d.screenshot("quarry-issue.png");

    // The mode switch overrides detection.
    d.click("button[data-mode=\"text\"]");
    let pressed = d.script(
        "return document.querySelector('button[data-mode=\"text\"]').getAttribute('aria-pressed')",
    );
    assert_eq!(pressed, json!("true"));
    d.wait("the issue searched as a description", || {
        d.text("#results-status")
            .contains("Describe behaviour")
            .then_some(())
    });
    d.click("button[data-mode=\"auto\"]");

    // Hostile indexed code renders as inert text.
    d.type_query("render_unsafe_banner");
    d.wait_for_first("render_unsafe_banner");
    let shown = d.text("#results .hit .hit-code");
    assert!(
        shown.contains("<script>window.__xss = 1</script>"),
        "{shown}"
    );
    assert!(shown.contains("<img src=x onerror="), "{shown}");
    assert!(shown.contains("</code></pre>"), "{shown}");
    let injected = d.script(
        "return [window.__xss === undefined, \
                 document.querySelectorAll('#results script, #results img, #injected').length]",
    );
    assert_eq!(
        injected,
        json!([true, 0]),
        "markup from the index was interpreted"
    );
}
