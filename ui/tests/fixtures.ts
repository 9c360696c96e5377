// Test data shaped like the Rust side's answers.

import type { AppState, Hit, Line, Repository, SearchResponse, Token } from "../src/api";

export function tok(text: string, cls: string | null = null): Token {
  return { text, class: cls };
}

/** A plain line: one token per word and per run of other characters. */
export function line(text: string): Line {
  return text.length === 0 ? [] : (text.match(/\w+|\W+/g) ?? []).map((t) => tok(t, /^\w+$/.test(t) ? null : "punctuation"));
}

export function makeHit(over: Partial<Hit> = {}): Hit {
  return {
    rank: 1,
    root: "/home/me/src/quarry",
    repo: "quarry",
    path: "src/config.rs",
    symbol: "parse_config",
    kind: "function",
    language: "rust",
    start_line: 10,
    end_line: 12,
    score: 0.8765,
    lines: [
      [tok("fn", "keyword"), tok(" "), tok("parse_config", "function"), tok("(", "punctuation"), tok(")", "punctuation"), tok(" {")],
      [tok("    "), tok("// read it", "comment")],
      [tok("}")],
    ],
    ...over,
  };
}

export function makeResponse(over: Partial<SearchResponse> = {}): SearchResponse {
  return { mode: "text", hits: [makeHit()], terms: ["config"], pending_chunks: 0, took_ms: 12, ...over };
}

export function makeRepo(over: Partial<Repository> = {}): Repository {
  return {
    root: "/home/me/src/quarry",
    name: "quarry",
    files: 1234,
    chunks: 5678,
    pending: 0,
    last_indexed: null,
    state: "up_to_date",
    progress: null,
    error: null,
    ...over,
  };
}

export function makeState(over: Partial<AppState> = {}): AppState {
  return {
    db: "/home/me/.local/share/quarry/index",
    repositories: [makeRepo()],
    model: { phase: "ready", model: "all-MiniLM-L6-v2", done: 0, total: null, source: null, device: "candle cpu", error: null },
    settings: { model: "all-MiniLM-L6-v2", device: "auto", exclude: ["vendor/**"], max_file_size: 1048576, editor: null },
    choices: { models: ["all-MiniLM-L6-v2", "bge-small-en-v1.5"], devices: ["auto", "cpu", "gpu"], default_editor: "code -g {path}:{line}" },
    languages: ["rust", "python"],
    problems: [],
    ...over,
  };
}

/** A promise with its resolve/reject exposed, to finish requests out of order. */
export function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets pending promise callbacks run. */
export async function flush(times = 5): Promise<void> {
  for (let i = 0; i < times; i++) await Promise.resolve();
}

export function key(target: EventTarget, k: string, init: KeyboardEventInit = {}): KeyboardEvent {
  const e = new KeyboardEvent("keydown", { key: k, bubbles: true, cancelable: true, ...init });
  target.dispatchEvent(e);
  return e;
}
