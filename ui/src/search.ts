// When to search and which answers to keep: debouncing, staleness and the
// query mode. No DOM here.

import type { Mode, SearchRequest, SearchResponse } from "./api";

export const SEARCH_DEBOUNCE_MS = 250;
export const DETECT_DEBOUNCE_MS = 150;
/** Single-line queries shorter than this search as you type. */
export const LIVE_MAX_CHARS = 200;
export const TOP_K = 20;

export interface Filters {
  repos: string[];
  languages: string[];
  path_globs: string[];
}

export const NO_FILTERS: Filters = { repos: [], languages: [], path_globs: [] };

export function hasFilters(f: Filters): boolean {
  return f.repos.length > 0 || f.languages.length > 0 || f.path_globs.length > 0;
}

/** Typed queries search as you type; pastes (several lines, or long) wait
 * for Enter / Ctrl+Enter. */
export function isLiveQuery(query: string): boolean {
  return !query.includes("\n") && query.length < LIVE_MAX_CHARS;
}

/** "src/**, *.rs  tests/*" -> ["src/**", "*.rs", "tests/*"]. */
export function parseGlobs(text: string): string[] {
  return text
    .split(/[,\s]+/)
    .map((g) => g.trim())
    .filter((g) => g.length > 0);
}

export interface SearchBackend {
  search: (request: SearchRequest) => Promise<SearchResponse>;
  detectMode: (query: string) => Promise<Mode>;
}

export interface SearchListener {
  /** A search started (for a busy indicator). */
  onStart?: (request: SearchRequest) => void;
  /** The answer to the newest request. */
  onResults?: (response: SearchResponse, request: SearchRequest) => void;
  /** The newest request failed. */
  onError?: (error: unknown, request: SearchRequest) => void;
  /** The query was emptied: results should go. */
  onCleared?: () => void;
  /** What Auto would read the query as (null: nothing to tell). */
  onDetected?: (mode: Mode | null) => void;
  /** The query waits for Enter (a paste) and differs from the last search. */
  onWaiting?: (waiting: boolean) => void;
}

/**
 * Holds the query, the mode and the filters, and decides when to search.
 * Every request gets a number; an answer is used only if no newer request
 * was made since (an older search finishing late is dropped), and the same
 * for mode detection.
 */
export class SearchController {
  query = "";
  mode: Mode = "auto";
  /** What Auto resolved the query to, from detectMode or the last response. */
  detected: Mode | null = null;
  filters: Filters = NO_FILTERS;
  /** The last request sent (answered or not). */
  lastRequest: SearchRequest | null = null;

  private searchSeq = 0;
  private detectSeq = 0;
  private searchTimer: ReturnType<typeof setTimeout> | null = null;
  private detectTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly backend: SearchBackend,
    private readonly listener: SearchListener = {},
    readonly topK: number = TOP_K,
  ) {}

  /** The user edited the query. */
  setQuery(query: string): void {
    if (query === this.query) return;
    this.query = query;
    if (query.trim() === "") {
      this.clear();
      return;
    }
    this.scheduleDetect();
    if (isLiveQuery(query)) {
      this.schedule(SEARCH_DEBOUNCE_MS);
      this.listener.onWaiting?.(false);
    } else {
      this.cancelScheduled();
      this.listener.onWaiting?.(!this.isCurrent());
    }
  }

  /** Enter / Ctrl+Enter: search now. */
  submit(): void {
    if (this.query.trim() === "") return;
    this.cancelScheduled();
    void this.run();
  }

  /** A mode button. "auto" returns to detection. Re-runs the search. */
  setMode(mode: Mode): void {
    if (mode === this.mode) return;
    this.mode = mode;
    if (mode === "auto") this.scheduleDetect(0);
    else this.listener.onDetected?.(null);
    this.rerun();
  }

  setFilters(filters: Filters): void {
    this.filters = filters;
    this.rerun();
  }

  /** Empties the query and drops any search in flight. */
  clear(): void {
    this.query = "";
    this.cancelScheduled();
    if (this.detectTimer !== null) clearTimeout(this.detectTimer);
    this.detectTimer = null;
    this.searchSeq++;
    this.detectSeq++;
    this.lastRequest = null;
    this.detected = null;
    this.listener.onDetected?.(null);
    this.listener.onWaiting?.(false);
    this.listener.onCleared?.();
  }

  request(): SearchRequest {
    return {
      query: this.query,
      mode: this.mode,
      top_k: this.topK,
      repos: [...this.filters.repos],
      languages: [...this.filters.languages],
      path_globs: [...this.filters.path_globs],
    };
  }

  /** Whether the last request sent was for the current query. */
  private isCurrent(): boolean {
    return this.lastRequest !== null && this.lastRequest.query === this.query;
  }

  /** After a mode or filter change: search again if there is something to
   * search (a live query, or a paste that was already searched). */
  private rerun(): void {
    if (this.query.trim() === "") return;
    if (isLiveQuery(this.query) || this.isCurrent()) {
      this.cancelScheduled();
      void this.run();
    }
  }

  private schedule(ms: number): void {
    this.cancelScheduled();
    this.searchTimer = setTimeout(() => {
      this.searchTimer = null;
      void this.run();
    }, ms);
  }

  private cancelScheduled(): void {
    if (this.searchTimer !== null) clearTimeout(this.searchTimer);
    this.searchTimer = null;
  }

  private scheduleDetect(ms = DETECT_DEBOUNCE_MS): void {
    if (this.mode !== "auto") return;
    if (this.detectTimer !== null) clearTimeout(this.detectTimer);
    this.detectTimer = setTimeout(() => {
      this.detectTimer = null;
      void this.detect();
    }, ms);
  }

  private async detect(): Promise<void> {
    const query = this.query;
    if (query.trim() === "" || this.mode !== "auto") return;
    const seq = ++this.detectSeq;
    try {
      const mode = await this.backend.detectMode(query);
      if (seq !== this.detectSeq || this.mode !== "auto" || this.query !== query) return;
      this.detected = mode;
      this.listener.onDetected?.(mode);
    } catch {
      // Detection is a hint only; the search itself reports errors.
    }
  }

  private async run(): Promise<void> {
    const request = this.request();
    const seq = ++this.searchSeq;
    this.lastRequest = request;
    this.listener.onWaiting?.(false);
    this.listener.onStart?.(request);
    try {
      const response = await this.backend.search(request);
      if (seq !== this.searchSeq) return; // a newer request was made
      if (request.mode === "auto" && this.mode === "auto" && request.query === this.query) {
        // The engine's own reading wins over the quick detection; a detection
        // still pending for this same text would say the same.
        this.detected = response.mode;
        this.detectSeq++;
        this.listener.onDetected?.(response.mode);
      }
      this.listener.onResults?.(response, request);
    } catch (e) {
      if (seq !== this.searchSeq) return;
      this.listener.onError?.(e, request);
    }
  }
}
