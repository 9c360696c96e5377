// The whole window against a fake Rust side (invoke/listen mocked).

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { SearchRequest, SearchResponse } from "../src/api";
import { api } from "../src/api";
import { App, mountApp } from "../src/app";
import { deferred, flush, key, line, makeHit, makeRepo, makeResponse, makeState } from "./fixtures";
import { backend } from "./tauri-mock";

vi.mock("@tauri-apps/api/core", () => import("./tauri-mock"));
vi.mock("@tauri-apps/api/event", () => import("./tauri-mock"));

let app: App;
let pickFolder: ReturnType<typeof vi.fn<() => Promise<string | null>>>;
const $ = <T extends Element = HTMLElement>(sel: string) => document.querySelector<T>(sel)!;
const $$ = (sel: string) => Array.from(document.querySelectorAll<HTMLElement>(sel));

async function start(state = makeState()) {
  backend.handlers.app_state = () => state;
  backend.handlers.detect_mode = (a) => ((a!.request as { query: string }).query.includes("(") ? "code" : "text");
  backend.handlers.search = () => makeResponse();
  const root = document.createElement("div");
  root.id = "app";
  document.body.appendChild(root);
  pickFolder = vi.fn(async () => "/home/me/src/new");
  app = await mountApp(root, { api, pickFolder });
  return app;
}

async function type(text: string) {
  const input = $<HTMLTextAreaElement>("#search-input");
  input.focus();
  input.value = text;
  input.dispatchEvent(new Event("input", { bubbles: true }));
}

const searches = () => backend.callsTo("search").map((a) => a!.request as SearchRequest);

beforeEach(() => {
  vi.useFakeTimers();
  backend.reset();
  document.body.textContent = "";
});

afterEach(() => {
  app?.destroy();
  vi.useRealTimers();
});

describe("start-up", () => {
  it("lists repositories with their state and fills the filters", async () => {
    await start(
      makeState({
        repositories: [makeRepo(), makeRepo({ root: "/w/b", name: "b", state: "indexing", progress: null })],
      }),
    );
    const repos = $$("li.repo");
    expect(repos.map((r) => r.dataset.root)).toEqual(["/home/me/src/quarry", "/w/b"]);
    expect(repos.map((r) => r.querySelector(".repo-state")!.textContent)).toEqual(["Up to date", "Indexing"]);
    expect($$("#filter-repo option").map((o) => o.textContent)).toEqual(["All repositories", "quarry", "b"]);
    expect($$("#filter-language option").map((o) => o.textContent)).toEqual(["All languages", "python", "rust"]);
    expect($("#model-banner").hidden).toBe(true);
    expect($("#results-status").textContent).toBe("2 repositories · 11,356 chunks");
    for (const sel of ["#search-input", "#add-repo-path", "#add-repo-submit", "#add-repo-browse", "#settings-button", "#settings-panel", "#pending-notice", "#detected-mode"]) {
      expect(document.querySelector(sel), sel).not.toBeNull();
    }
    expect($("#search-input").tagName).toBe("TEXTAREA");
  });

  it("a failed load shows the error with a retry, never alert()", async () => {
    const alert = vi.spyOn(window, "alert").mockImplementation(() => {});
    backend.handlers.app_state = () => {
      throw { message: "The index is locked", hint: "Close the other Quarry window" };
    };
    const root = document.body.appendChild(document.createElement("div"));
    app = await mountApp(root, { api, pickFolder: async () => null });
    expect($("#results-status").textContent).toBe("Could not load");
    expect($("#empty-state").textContent).toContain("The index is locked");
    expect($("#empty-state").textContent).toContain("Close the other Quarry window");
    backend.handlers.app_state = () => makeState();
    $<HTMLButtonElement>("#empty-state button").click();
    await flush(10);
    expect($$("li.repo")).toHaveLength(1);
    expect(alert).not.toHaveBeenCalled();
  });
});

describe("start-up problems", () => {
  it("shows each problem with its hint; Dismiss hides the notice", async () => {
    await start(
      makeState({
        problems: [
          { message: "Could not read the settings file", hint: "Defaults are used; fix or delete ~/.config/quarry/settings.toml" },
          { message: "The index is damaged", hint: "Re-index your repositories" },
        ],
      }),
    );
    const notice = $("#startup-problems");
    expect(notice.hidden).toBe(false);
    expect(notice.getAttribute("role")).toBe("alert");
    expect(notice.closest("main")).not.toBeNull();
    expect($$("#startup-problems .problem-message").map((e) => e.textContent)).toEqual([
      "Could not read the settings file",
      "The index is damaged",
    ]);
    expect($$("#startup-problems .problem-hint").map((e) => e.textContent)).toEqual([
      "Defaults are used; fix or delete ~/.config/quarry/settings.toml",
      "Re-index your repositories",
    ]);
    const dismiss = $$("#startup-problems button").find((b) => b.textContent === "Dismiss")!;
    expect(dismiss).toBeDefined();
    dismiss.click();
    expect(notice.hidden).toBe(true);
    expect(document.activeElement).toBe($("#search-input"));
  });

  it("a problem without a hint shows only its message", async () => {
    await start(makeState({ problems: [{ message: "The index is damaged", hint: null }] }));
    expect($("#startup-problems").hidden).toBe(false);
    expect($$("#startup-problems .problem-message").map((e) => e.textContent)).toEqual(["The index is damaged"]);
    expect($$("#startup-problems .problem-hint")).toHaveLength(0);
  });

  it("no problems: the notice is hidden", async () => {
    await start(makeState({ problems: [] }));
    expect($("#startup-problems").hidden).toBe(true);
    expect($$("#startup-problems .problem")).toHaveLength(0);
  });
});

describe("empty states", () => {
  it("no repositories: Add a repository to start, with the folder dialog", async () => {
    await start(makeState({ repositories: [] }));
    expect($("#results-status").textContent).toBe("Add a repository to start");
    expect($("#empty-state").textContent).toContain("Add a repository to start");
    backend.handlers.add_repository = (a) => makeRepo({ root: (a!.request as { path: string }).path, name: "new", state: "queued" });
    $<HTMLButtonElement>("#empty-state button").click();
    await flush(10);
    expect(pickFolder).toHaveBeenCalled();
    expect(backend.callsTo("add_repository")).toEqual([{ request: { path: "/home/me/src/new" } }]);
    expect($("li.repo[data-root='/home/me/src/new'] .repo-state").textContent).toBe("Queued");
    expect($("#empty-state").textContent).not.toContain("Add a repository to start");
  });

  it("no matches: suggestions, including removing filters", async () => {
    await start();
    backend.handlers.search = () => makeResponse({ hits: [] });
    const select = $<HTMLSelectElement>("#filter-language");
    select.value = "rust";
    select.dispatchEvent(new Event("change"));
    await type("nothing like this");
    await vi.advanceTimersByTimeAsync(300);
    expect($("#results-status").textContent).toBe("No matches");
    expect($("#empty-state").textContent).toContain("No matches");
    expect($("#empty-state").textContent).toContain("Remove the filters");
    expect($("#empty-state").textContent).toContain("Pick a mode");
    expect($$("#results .hit")).toHaveLength(0);
  });

  it("pending chunks: the notice says results by meaning are incomplete", async () => {
    await start();
    backend.handlers.search = () => makeResponse({ pending_chunks: 1234 });
    await type("retry");
    await vi.advanceTimersByTimeAsync(300);
    expect($("#pending-notice").hidden).toBe(false);
    expect($("#pending-notice").textContent).toBe("1,234 chunks are still being embedded: results by meaning are incomplete");
    backend.handlers.search = () => makeResponse({ pending_chunks: 0 });
    await type("retry it");
    await vi.advanceTimersByTimeAsync(300);
    expect($("#pending-notice").hidden).toBe(true);
  });
});

describe("search", () => {
  it("results appear as you type, in rank order, with a status line", async () => {
    await start();
    backend.handlers.search = () =>
      makeResponse({
        mode: "issue",
        took_ms: 34,
        hits: [makeHit({ rank: 1, symbol: "a", path: "a.rs" }), makeHit({ rank: 2, symbol: "b", path: "b.rs" })],
      });
    await type("parse config");
    await vi.advanceTimersByTimeAsync(249);
    expect(searches()).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(searches()[0]).toEqual({ query: "parse config", mode: "auto", top_k: 20, repos: [], languages: [], path_globs: [] });
    const hits = $$("#results .hit");
    expect(hits.map((h) => h.dataset.symbol)).toEqual(["a", "b"]);
    expect(hits.map((h) => h.dataset.path)).toEqual(["a.rs", "b.rs"]);
    expect($("#results-status").textContent).toBe("2 results · 34 ms · Paste issue");
  });

  it("multi-line queries search on Ctrl+Enter, not as you type; plain Enter adds a line", async () => {
    await start();
    const input = $<HTMLTextAreaElement>("#search-input");
    await type("fn main() {\n  run();\n}");
    await vi.advanceTimersByTimeAsync(1000);
    expect(searches()).toHaveLength(0);
    expect($("#results-status").textContent).toBe("Press Ctrl+Enter to search");
    expect($("#search-hint").textContent).toContain("Ctrl+Enter to search");
    const plain = key(input, "Enter");
    expect(plain.defaultPrevented).toBe(false);
    expect(searches()).toHaveLength(0);
    key(input, "Enter", { ctrlKey: true });
    await flush();
    expect(searches()).toHaveLength(1);
  });

  it("plain Enter in a single line searches at once", async () => {
    await start();
    await type("retry");
    const e = key($("#search-input"), "Enter");
    expect(e.defaultPrevented).toBe(true);
    expect(searches()).toHaveLength(1);
  });

  it("a slow older answer does not replace a newer one", async () => {
    await start();
    const first = deferred<SearchResponse>();
    const second = deferred<SearchResponse>();
    const queue = [first, second];
    backend.handlers.search = () => queue.shift()!.promise;
    await type("retr");
    await vi.advanceTimersByTimeAsync(300);
    await type("retry");
    await vi.advanceTimersByTimeAsync(300);
    second.resolve(makeResponse({ hits: [makeHit({ symbol: "newer" })] }));
    await flush();
    first.resolve(makeResponse({ hits: [makeHit({ symbol: "older" })] }));
    await flush();
    expect($$("#results .hit").map((h) => h.dataset.symbol)).toEqual(["newer"]);
  });

  it("errors show inline under the box", async () => {
    await start();
    const alert = vi.spyOn(window, "alert").mockImplementation(() => {});
    backend.handlers.search = () => {
      throw { message: "Bad path glob", hint: "Use forms like src/**/*.rs" };
    };
    await type("x");
    await vi.advanceTimersByTimeAsync(300);
    expect($("#search-error").hidden).toBe(false);
    expect($("#search-error").textContent).toBe("Bad path globUse forms like src/**/*.rs");
    expect($("#results-status").textContent).toBe("Search failed");
    expect(alert).not.toHaveBeenCalled();
  });

  it("filters feed the request and re-run the search", async () => {
    await start();
    await type("parse");
    await vi.advanceTimersByTimeAsync(300);
    const repo = $<HTMLSelectElement>("#filter-repo");
    repo.value = "/home/me/src/quarry";
    repo.dispatchEvent(new Event("change"));
    expect(searches().slice(-1)[0]!.repos).toEqual(["/home/me/src/quarry"]);
    const path = $<HTMLInputElement>("#filter-path");
    path.value = "src/**, *.rs";
    path.dispatchEvent(new Event("input"));
    await vi.advanceTimersByTimeAsync(300);
    expect(searches().slice(-1)[0]!).toMatchObject({ repos: ["/home/me/src/quarry"], path_globs: ["src/**", "*.rs"] });
    expect(searches()).toHaveLength(3);
  });
});

describe("mode", () => {
  it("Auto shows the detected mode; a click overrides; Auto returns to detection", async () => {
    await start();
    const pressed = () => $$("button[data-mode]").filter((b) => b.getAttribute("aria-pressed") === "true").map((b) => b.dataset.mode);
    expect(pressed()).toEqual(["auto"]);
    backend.handlers.search = (a) => makeResponse({ mode: (a!.request as SearchRequest).mode === "auto" ? "code" : "text" });
    await type("foo(bar)");
    await vi.advanceTimersByTimeAsync(150);
    expect(backend.callsTo("detect_mode")).toEqual([{ request: { query: "foo(bar)" } }]);
    expect($("#detected-mode").textContent).toBe("Paste code");
    expect($(".detected").textContent).toBe("Auto: Paste code");
    await vi.advanceTimersByTimeAsync(150);

    $<HTMLButtonElement>('button[data-mode="text"]').click();
    await flush();
    expect(pressed()).toEqual(["text"]);
    expect($("#detected-mode").textContent).toBe("");
    expect($(".detected").hidden).toBe(true);
    expect(searches().slice(-1)[0]!.mode).toBe("text");
    expect($("#results-status").textContent).toContain("Describe behaviour");

    $<HTMLButtonElement>('button[data-mode="auto"]').click();
    await vi.advanceTimersByTimeAsync(10);
    expect(pressed()).toEqual(["auto"]);
    expect(searches().slice(-1)[0]!.mode).toBe("auto");
    expect($("#detected-mode").textContent).toBe("Paste code");
  });

  it("the response's mode is shown in Auto", async () => {
    await start();
    backend.handlers.detect_mode = () => new Promise(() => {});
    backend.handlers.search = () => makeResponse({ mode: "issue" });
    await type("panicked at src/main.rs:10");
    await vi.advanceTimersByTimeAsync(300);
    expect($("#detected-mode").textContent).toBe("Paste issue");
  });
});

describe("keyboard", () => {
  async function withHits() {
    await start();
    backend.handlers.search = () =>
      makeResponse({ hits: [1, 2, 3].map((rank) => makeHit({ rank, symbol: `s${rank}`, path: `f${rank}.rs`, start_line: rank * 10 })) });
    backend.handlers.open_in_editor = () => null;
    await type("parse");
    await vi.advanceTimersByTimeAsync(300);
  }

  it("ArrowDown from the box selects the first result, then moves; Enter opens it", async () => {
    await withHits();
    const input = $<HTMLTextAreaElement>("#search-input");
    key(input, "ArrowDown");
    const hits = $$("#results .hit");
    expect(hits[0].classList.contains("selected")).toBe(true);
    expect(document.activeElement).toBe(hits[0]);
    key(hits[0], "ArrowDown");
    expect(document.activeElement).toBe(hits[1]);
    expect(hits[0].classList.contains("selected")).toBe(false);
    key(hits[1], "ArrowDown");
    key(hits[2], "ArrowDown"); // stays on the last
    expect(document.activeElement).toBe(hits[2]);
    key(hits[2], "ArrowUp");
    expect(document.activeElement).toBe(hits[1]);
    key(hits[1], "Enter");
    await flush();
    expect(backend.callsTo("open_in_editor")).toEqual([{ request: { root: "/home/me/src/quarry", path: "f2.rs", line: 20 } }]);
  });

  it("ArrowUp from the first result returns to the box", async () => {
    await withHits();
    key($("#search-input"), "ArrowDown");
    key($$("#results .hit")[0], "ArrowUp");
    expect(document.activeElement).toBe($("#search-input"));
    expect($$("#results .hit.selected")).toHaveLength(0);
  });

  it("Esc clears the query and results, then blurs; from a result it returns to the box", async () => {
    await withHits();
    const input = $<HTMLTextAreaElement>("#search-input");
    key(input, "ArrowDown");
    key($$("#results .hit")[0], "Escape");
    expect(document.activeElement).toBe(input);
    key(input, "Escape");
    expect(input.value).toBe("");
    expect($$("#results .hit")).toHaveLength(0);
    expect(document.activeElement).toBe(input);
    key(input, "Escape");
    expect(document.activeElement).not.toBe(input);
  });

  it("Ctrl+K focuses and selects the box from anywhere", async () => {
    await withHits();
    const input = $<HTMLTextAreaElement>("#search-input");
    $<HTMLInputElement>("#add-repo-path").focus();
    const e = key(document.activeElement!, "k", { ctrlKey: true });
    expect(e.defaultPrevented).toBe(true);
    expect(document.activeElement).toBe(input);
    expect(input.selectionStart).toBe(0);
    expect(input.selectionEnd).toBe(input.value.length);
    input.blur();
    key(document.body, "K", { metaKey: true });
    expect(document.activeElement).toBe(input);
  });
});

describe("hit actions", () => {
  it("Expand context asks for 10 lines, then more, then collapses", async () => {
    await start();
    backend.handlers.preview = (a) => {
      const r = a!.request as { start_line: number; context: number };
      const first = Math.max(1, r.start_line - r.context);
      const count = r.context * 2 + 3;
      return { first_line: first, lines: Array.from({ length: count }, (_, i) => line(`l${i}`)), total_lines: 500 };
    };
    await type("parse");
    await vi.advanceTimersByTimeAsync(300);
    const hit = $(".hit");
    const button = hit.querySelector<HTMLButtonElement>("button.hit-expand")!;
    button.click();
    await flush(10);
    expect(backend.callsTo("preview")[0]).toEqual({
      request: { root: "/home/me/src/quarry", path: "src/config.rs", start_line: 10, end_line: 12, context: 10 },
    });
    const preview = hit.querySelector(".hit-preview")!;
    expect(preview).not.toBeNull();
    expect(Array.from(preview.querySelectorAll(".in-hit .ln")).map((n) => n.textContent)).toEqual(["10", "11", "12"]);
    expect(hit.querySelector<HTMLElement>(".hit-code")!.hidden).toBe(true);
    expect(button.textContent).toBe("More context");
    button.click();
    await flush(10);
    expect((backend.callsTo("preview")[1]!.request as { context: number }).context).toBe(30);
    button.click();
    await flush(10);
    expect(button.textContent).toBe("Collapse context");
    button.click();
    await flush(10);
    expect(hit.querySelector(".hit-preview")).toBeNull();
    expect(hit.querySelector<HTMLElement>(".hit-code")!.hidden).toBe(false);
    expect(button.textContent).toBe("Expand context");
  });

  it("a preview error shows inside the hit", async () => {
    await start();
    backend.handlers.preview = () => {
      throw { message: "File changed since indexing", hint: "Re-index the repository" };
    };
    await type("parse");
    await vi.advanceTimersByTimeAsync(300);
    $<HTMLButtonElement>(".hit button.hit-expand").click();
    await flush(10);
    expect($(".hit .hit-error").textContent).toContain("File changed since indexing");
  });

  it("Open calls open_in_editor at the start line", async () => {
    await start();
    backend.handlers.open_in_editor = () => null;
    await type("parse");
    await vi.advanceTimersByTimeAsync(300);
    $<HTMLButtonElement>(".hit button.hit-open").click();
    await flush();
    expect(backend.callsTo("open_in_editor")).toEqual([{ request: { root: "/home/me/src/quarry", path: "src/config.rs", line: 10 } }]);
  });

  it("Copy path:line uses the clipboard and shows Copied", async () => {
    await start();
    const writeText = vi.fn(async () => {});
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    await type("parse");
    await vi.advanceTimersByTimeAsync(300);
    $<HTMLButtonElement>(".hit button.hit-copy").click();
    await flush();
    expect(writeText).toHaveBeenCalledWith("/home/me/src/quarry/src/config.rs:10");
    expect($("#toast").textContent).toBe("Copied");
    expect($("#toast").classList.contains("visible")).toBe(true);
    await vi.advanceTimersByTimeAsync(2000);
    expect($("#toast").classList.contains("visible")).toBe(false);
  });

  it("Copy falls back to execCommand without the clipboard API", async () => {
    await start();
    Object.defineProperty(navigator, "clipboard", { value: undefined, configurable: true });
    let copied = "";
    const exec = vi.fn(() => {
      copied = (document.activeElement as HTMLTextAreaElement).value;
      return true;
    });
    Object.defineProperty(document, "execCommand", { value: exec, configurable: true });
    await type("parse");
    await vi.advanceTimersByTimeAsync(300);
    $<HTMLButtonElement>(".hit button.hit-copy").click();
    await flush();
    expect(exec).toHaveBeenCalledWith("copy");
    expect(copied).toBe("/home/me/src/quarry/src/config.rs:10");
    expect(document.querySelectorAll("textarea").length).toBe(2); // the search box and the settings' excludes
    expect($("#toast").textContent).toBe("Copied");
  });
});

describe("live updates", () => {
  it("index progress and repository changes update the sidebar in place", async () => {
    await start();
    const li = $("li.repo");
    backend.emit("index-progress", {
      root: "/home/me/src/quarry",
      phase: "embedding",
      progress: { phase: "embedding", files_done: 5, files_total: 5, chunks_done: 1234, chunks_total: 5000, eta_seconds: 120 },
      error: null,
    });
    expect($("li.repo")).toBe(li);
    expect(li.dataset.state).toBe("indexing");
    expect(li.querySelector(".repo-state")!.textContent).toBe("Indexing");
    expect(li.querySelector(".repo-phase")!.textContent).toBe("Embedding 1,234 / 5,000 chunks · ETA 2 min");
    backend.emit("index-progress", { root: "/home/me/src/quarry", phase: "error", progress: null, error: { message: "Disk full", hint: null } });
    expect(li.querySelector(".repo-state")!.textContent).toBe("Error");
    expect(li.textContent).toContain("Disk full");
    backend.emit("repositories-changed", [makeRepo({ files: 7 }), makeRepo({ root: "/x/y", name: "y", state: "queued" })]);
    expect($("li.repo")).toBe(li);
    expect(li.querySelector(".repo-state")!.textContent).toBe("Up to date");
    expect($$("li.repo").map((r) => r.dataset.root)).toEqual(["/home/me/src/quarry", "/x/y"]);
    expect($$("#filter-repo option").map((o) => o.textContent)).toEqual(["All repositories", "quarry", "y"]);
  });

  it("model progress shows in the banner", async () => {
    await start();
    backend.emit("model-progress", {
      phase: "downloading",
      model: "all-MiniLM-L6-v2",
      done: 45_000_000,
      total: 90_000_000,
      source: "the Hugging Face Hub",
      device: null,
      error: null,
    });
    expect($("#model-banner").hidden).toBe(false);
    expect($("#model-banner").textContent).toContain("Downloading the search model all-MiniLM-L6-v2 from the Hugging Face Hub: 45 MB / 90 MB");
    // The rest stays usable.
    await type("parse");
    await vi.advanceTimersByTimeAsync(300);
    expect($$("#results .hit")).toHaveLength(1);
  });
});

describe("repositories", () => {
  it("typed path: Add calls add_repository; errors show near the form", async () => {
    await start();
    backend.handlers.add_repository = () => {
      throw { message: "Not a folder: /nope", hint: "Pick a folder that exists" };
    };
    const input = $<HTMLInputElement>("#add-repo-path");
    input.value = "/nope";
    $<HTMLButtonElement>("#add-repo-submit").click();
    await flush(10);
    expect(backend.callsTo("add_repository")).toEqual([{ request: { path: "/nope" } }]);
    expect($(".add-error").hidden).toBe(false);
    expect($(".add-error").textContent).toContain("Not a folder: /nope");
    expect(input.value).toBe("/nope");
  });

  it("Re-index, Cancel and Remove call their commands", async () => {
    await start(makeState({ repositories: [makeRepo(), makeRepo({ root: "/w/b", name: "b", state: "indexing" })] }));
    for (const c of ["reindex_repository", "cancel_indexing", "remove_repository"]) backend.handlers[c] = () => null;
    $<HTMLButtonElement>("li.repo[data-root='/home/me/src/quarry'] .repo-reindex").click();
    $<HTMLButtonElement>("li.repo[data-root='/w/b'] .repo-cancel").click();
    $<HTMLButtonElement>("li.repo[data-root='/w/b'] .repo-remove").click();
    $<HTMLButtonElement>("li.repo[data-root='/w/b'] .repo-remove-confirm").click();
    await flush();
    expect(backend.callsTo("reindex_repository")).toEqual([{ request: { root: "/home/me/src/quarry" } }]);
    expect(backend.callsTo("cancel_indexing")).toEqual([{ request: { root: "/w/b" } }]);
    expect(backend.callsTo("remove_repository")).toEqual([{ request: { root: "/w/b" } }]);
  });
});

describe("settings", () => {
  it("opens from the gear, saves, shows errors inline", async () => {
    await start();
    const panel = $("#settings-panel");
    expect(panel.hidden).toBe(true);
    $<HTMLButtonElement>("#settings-button").click();
    expect(panel.hidden).toBe(false);
    expect($$("#settings-model option").map((o) => o.textContent)).toEqual(["all-MiniLM-L6-v2", "bge-small-en-v1.5"]);
    expect($<HTMLInputElement>("#settings-max-size").value).toBe("1");
    expect($<HTMLSelectElement>("#settings-max-size-unit").value).toBe("MB");
    expect($<HTMLInputElement>("#settings-editor").placeholder).toBe("code -g {path}:{line}");
    expect(panel.textContent).toContain("{path}");

    backend.handlers.save_settings = () => {
      throw { message: "Unknown model", hint: "Pick one from the list" };
    };
    $<HTMLTextAreaElement>("#settings-exclude").value = "vendor/**\n\n  target/  \n";
    $<HTMLInputElement>("#settings-max-size").value = "512";
    $<HTMLSelectElement>("#settings-max-size-unit").value = "KB";
    $<HTMLInputElement>("#settings-editor").value = "  ";
    $<HTMLSelectElement>("#settings-device").value = "cpu";
    panel.querySelector("form")!.dispatchEvent(new Event("submit", { cancelable: true }));
    await flush();
    expect(backend.callsTo("save_settings")).toEqual([
      { request: { model: "all-MiniLM-L6-v2", device: "cpu", exclude: ["vendor/**", "target/"], max_file_size: 524288, editor: null } },
    ]);
    expect(panel.querySelector(".inline-error")!.textContent).toContain("Unknown model");

    backend.handlers.save_settings = (a) => a!.request;
    panel.querySelector("form")!.dispatchEvent(new Event("submit", { cancelable: true }));
    await flush();
    expect((panel.querySelector(".inline-error") as HTMLElement).hidden).toBe(true);
    expect(panel.querySelector(".settings-status")!.textContent).toBe("Saved");

    key($("#settings-model"), "Escape");
    expect(panel.hidden).toBe(true);
  });

  it("keeps the file's search tuning, which the form does not show, when saving", async () => {
    const tuning = { issue: { lexical: 0.8 } };
    await start(makeState({ settings: { ...makeState().settings, search: tuning } }));
    backend.handlers.save_settings = (a) => a!.request;
    $<HTMLButtonElement>("#settings-button").click();
    $<HTMLSelectElement>("#settings-device").value = "cpu";
    $("#settings-panel").querySelector("form")!.dispatchEvent(new Event("submit", { cancelable: true }));
    await flush();
    const saved = backend.callsTo("save_settings")[0] as { request: { device: string; search: unknown } };
    expect(saved.request.device).toBe("cpu");
    expect(saved.request.search).toEqual(tuning);
  });

  it("rejects a bad size without calling the backend", async () => {
    await start();
    $<HTMLButtonElement>("#settings-button").click();
    $<HTMLInputElement>("#settings-max-size").value = "-3";
    $("#settings-panel").querySelector("form")!.dispatchEvent(new Event("submit", { cancelable: true }));
    await flush();
    expect(backend.callsTo("save_settings")).toHaveLength(0);
    expect($("#settings-panel .inline-error").textContent).toContain("Max file size");
  });
});
