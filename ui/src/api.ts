// The contract between the window and the Rust side (src-tauri/src/commands.rs).
// Every type here mirrors a serde type there; field names are snake_case on
// both sides. Commands are called with `invoke(name, args)`; Tauri maps
// argument names to camelCase, so each command takes one object argument named
// `request` (or none) to keep the mapping trivial.

import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";

/** How a query is read. "auto" lets the engine decide. */
export type Mode = "auto" | "text" | "code" | "issue";

/** A highlighted piece of a line. `class` is a highlight class such as
 * "keyword", "string", "comment", "function", "type", "number", "constant",
 * "variable", "property", "operator", "punctuation" or null for plain text.
 * The text is code from the user's repositories: untrusted, never HTML. */
export interface Token {
  text: string;
  class: string | null;
}

/** One line of code as tokens. */
export type Line = Token[];

/** What went wrong, in words a user understands, and what to do about it. */
export interface UiError {
  message: string;
  hint: string | null;
}

export type RepoState = "queued" | "indexing" | "up_to_date" | "error";

export interface Progress {
  /** "queued" | "scanning" | "chunking" | "embedding" | "optimizing" */
  phase: string;
  files_done: number;
  files_total: number;
  chunks_done: number;
  chunks_total: number;
  /** Seconds left, when it can be estimated. */
  eta_seconds: number | null;
}

export interface Repository {
  /** Absolute path, the repository's identity. */
  root: string;
  /** Last path component, for display. */
  name: string;
  files: number;
  chunks: number;
  /** Chunks not embedded yet (found by words, not yet by meaning). */
  pending: number;
  /** Unix seconds of the last finished indexing run, if any. */
  last_indexed: number | null;
  state: RepoState;
  /** Set while state is "queued" or "indexing". */
  progress: Progress | null;
  /** Set when state is "error". */
  error: UiError | null;
}

/** The embedding model: being fetched on first run, loading, ready or failed. */
export interface ModelState {
  /** "checking" | "downloading" | "verifying" | "loading" | "ready" | "error" */
  phase: string;
  model: string;
  /** Bytes done/total while downloading. */
  done: number;
  total: number | null;
  /** Where it is coming from, e.g. "the Hugging Face Hub". */
  source: string | null;
  /** "openvino cpu", "candle cpu", "candle cuda:0" once loaded. */
  device: string | null;
  error: UiError | null;
}

export interface Settings {
  /** Embedding model id. */
  model: string;
  /** "auto" | "cpu" | "gpu" */
  device: string;
  /** Extra paths to leave out (gitignore globs). */
  exclude: string[];
  /** Files larger than this many bytes are skipped. */
  max_file_size: number;
  /** Open-in-editor command; `{path}` and `{line}` are replaced. null: the
   * default (VS Code's `code -g` if present, else $VISUAL/$EDITOR, else the
   * system opener). */
  editor: string | null;
  /** Per-mode search weight overrides from the settings file; the panel
   * does not edit them, and saving keeps them. */
  search?: Record<string, unknown>;
}

/** Choices the settings form offers. */
export interface SettingsChoices {
  models: string[];
  devices: string[];
  /** The editor command used when `editor` is null, for display. */
  default_editor: string;
}

export interface AppState {
  db: string;
  repositories: Repository[];
  model: ModelState;
  settings: Settings;
  choices: SettingsChoices;
  /** Languages the index knows, for the language filter. */
  languages: string[];
  /** Problems met when the app started (e.g. the settings file could not be
   * read, so defaults are used; or the index is damaged). Shown once when the
   * window loads; empty when all went well. */
  problems: UiError[];
}

export interface SearchRequest {
  query: string;
  mode: Mode;
  top_k: number;
  /** Filters; empty means all. */
  repos: string[];
  languages: string[];
  path_globs: string[];
}

export interface Hit {
  rank: number;
  root: string;
  /** Repository name (last component of root). */
  repo: string;
  path: string;
  symbol: string;
  kind: string;
  language: string;
  start_line: number;
  end_line: number;
  score: number;
  /** The chunk's code, highlighted, starting at start_line. */
  lines: Line[];
  /** Code mode: this chunk is the pasted snippet itself (ranked first) or
   * contains it. Absent otherwise. */
  snippet_match?: SnippetMatch;
}

/** How a hit relates to a pasted snippet. */
export type SnippetMatch = "exact" | "contains";

export interface SearchResponse {
  /** The mode used (auto resolved). */
  mode: Mode;
  hits: Hit[];
  /** Identifiers and terms from the query, to mark in the results
   * (compare case-insensitively with identifier tokens). */
  terms: string[];
  /** Chunks still waiting for embeddings (dense side incomplete). */
  pending_chunks: number;
  took_ms: number;
}

export interface PreviewRequest {
  root: string;
  path: string;
  start_line: number;
  end_line: number;
  /** Lines of context to add before and after. */
  context: number;
}

export interface Preview {
  /** Line number of lines[0]. */
  first_line: number;
  lines: Line[];
  /** Lines in the whole file. */
  total_lines: number;
}

export interface OpenRequest {
  root: string;
  path: string;
  line: number;
}

/** Payload of the "index-progress" event. */
export interface IndexEvent {
  root: string;
  /** "queued" | "scanning" | "chunking" | "searchable" | "embedding" |
   * "optimizing" | "done" | "cancelled" | "error" */
  phase: string;
  progress: Progress | null;
  error: UiError | null;
}

export const api = {
  state: () => invoke<AppState>("app_state"),
  addRepository: (path: string) => invoke<Repository>("add_repository", { request: { path } }),
  reindexRepository: (root: string) => invoke<void>("reindex_repository", { request: { root } }),
  cancelIndexing: (root: string) => invoke<void>("cancel_indexing", { request: { root } }),
  removeRepository: (root: string) => invoke<void>("remove_repository", { request: { root } }),
  search: (request: SearchRequest) => invoke<SearchResponse>("search", { request }),
  detectMode: (query: string) => invoke<Mode>("detect_mode", { request: { query } }),
  preview: (request: PreviewRequest) => invoke<Preview>("preview", { request }),
  openInEditor: (request: OpenRequest) => invoke<void>("open_in_editor", { request }),
  saveSettings: (settings: Settings) => invoke<Settings>("save_settings", { request: settings }),
  onIndexProgress: (f: (e: IndexEvent) => void): Promise<UnlistenFn> =>
    listen<IndexEvent>("index-progress", (e) => f(e.payload)),
  onModelProgress: (f: (m: ModelState) => void): Promise<UnlistenFn> =>
    listen<ModelState>("model-progress", (e) => f(e.payload)),
  /** Fired when the repository list changed (added, removed, indexed). */
  onRepositoriesChanged: (f: (repos: Repository[]) => void): Promise<UnlistenFn> =>
    listen<Repository[]>("repositories-changed", (e) => f(e.payload)),
};
