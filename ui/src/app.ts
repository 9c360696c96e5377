// The window: builds the layout and wires the pieces to the Rust side.

import type { api as apiObject, AppState, Mode, Repository, SearchRequest, SearchResponse } from "./api";
import { copyText } from "./clipboard";
import { clear, h, icon, setText, show } from "./dom";
import { formatCount, MODE_LABELS, plural } from "./format";
import { focusInput, installKeyboard } from "./keyboard";
import { ModelBanner, showInlineError, StartupProblems, toUiError } from "./render";
import { ResultsView } from "./results";
import { hasFilters, isLiveQuery, parseGlobs, SearchController, type Filters } from "./search";
import { SettingsPanel } from "./settings";
import { Sidebar } from "./sidebar";
import { Toast } from "./toast";

export type Api = typeof apiObject;

export interface AppDeps {
  api: Api;
  /** The native folder picker; null when cancelled. */
  pickFolder: () => Promise<string | null>;
  copy?: (text: string) => Promise<boolean>;
  now?: () => number;
}

const MODES: Mode[] = ["auto", "text", "code", "issue"];
const MODE_TITLES: Record<Mode, string> = {
  auto: "Let Quarry decide how to read the query",
  text: "Describe what the code does, in words",
  code: "Paste a piece of code to find similar code",
  issue: "Paste an issue, error or stack trace",
};

function isMac(): boolean {
  return typeof navigator !== "undefined" && /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);
}

export class App {
  readonly root: HTMLElement;
  readonly input: HTMLTextAreaElement;
  readonly search: SearchController;
  readonly sidebar: Sidebar;
  readonly results: ResultsView;
  readonly settings: SettingsPanel;
  readonly banner: ModelBanner;
  readonly problems: StartupProblems;
  readonly toast: Toast;
  state: AppState | null = null;

  private readonly modeButtons = new Map<Mode, HTMLButtonElement>();
  private readonly detectedWrap: HTMLElement;
  private readonly detectedMode: HTMLElement;
  private readonly hint: HTMLElement;
  private readonly searchError: HTMLElement;
  private readonly searchBox: HTMLElement;
  private readonly repoFilter: HTMLSelectElement;
  private readonly langFilter: HTMLSelectElement;
  private readonly pathFilter: HTMLInputElement;
  private readonly clearFilters: HTMLButtonElement;
  private readonly pending: HTMLElement;
  private readonly status: HTMLElement;
  private readonly empty: HTMLElement;
  private readonly cleanups: (() => void)[] = [];
  private lastResponse: SearchResponse | null = null;
  private waiting = false;
  private loadError: unknown = null;
  private pathTimer: ReturnType<typeof setTimeout> | null = null;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private repoKey = "";

  constructor(root: HTMLElement, private readonly deps: AppDeps) {
    this.root = root;
    const api = deps.api;
    this.toast = new Toast();
    this.banner = new ModelBanner();
    this.problems = new StartupProblems(() => focusInput(this.input, false));

    this.search = new SearchController(
      { search: api.search, detectMode: api.detectMode },
      {
        onStart: () => this.searchBox.classList.add("busy"),
        onResults: (response, request) => this.showResults(response, request),
        onError: (e) => this.showSearchError(e),
        onCleared: () => this.showCleared(),
        onDetected: (mode) => this.showDetected(mode),
        onWaiting: (waiting) => {
          this.waiting = waiting;
          this.updateStatus();
        },
      },
    );

    this.results = new ResultsView({
      preview: api.preview,
      openInEditor: api.openInEditor,
      copy: deps.copy ?? copyText,
      toast: (text, kind) => this.toast.show(text, kind === "error" ? 2500 : 1600, kind),
    });

    this.settings = new SettingsPanel({
      save: api.saveSettings,
      onSaved: (s) => {
        if (this.state) this.state.settings = s;
      },
    });

    this.sidebar = new Sidebar({
      addRepository: api.addRepository,
      pickFolder: deps.pickFolder,
      reindex: api.reindexRepository,
      cancel: api.cancelIndexing,
      remove: api.removeRepository,
      openSettings: () => this.openSettings(),
      onChange: (repos) => this.repositoriesChanged(repos),
      now: deps.now,
    });

    // Search box.
    this.input = h("textarea", {
      id: "search-input",
      attrs: {
        rows: 1,
        spellcheck: "false",
        autocomplete: "off",
        autocapitalize: "off",
        placeholder: "Search code: describe it, paste code or paste an issue",
        "aria-label": "Search",
      },
    });
    this.searchBox = h("div", { class: "search-box" }, icon("search"), this.input, h("span", { class: "spinner", attrs: { "aria-hidden": "true" } }));
    const segmented = h("div", { class: "segmented", attrs: { role: "group", "aria-label": "How to read the query" } });
    for (const mode of MODES) {
      const b = h("button", {
        text: MODE_LABELS[mode],
        title: MODE_TITLES[mode],
        attrs: { type: "button", "data-mode": mode, "aria-pressed": mode === "auto" ? "true" : "false" },
      });
      b.addEventListener("click", () => this.setMode(mode));
      this.modeButtons.set(mode, b);
      segmented.appendChild(b);
    }
    this.detectedMode = h("span", { id: "detected-mode" });
    this.detectedWrap = h("span", { class: "detected", hidden: true }, h("span", { class: "detected-label", text: "Auto: " }), this.detectedMode);
    this.hint = h("div", { id: "search-hint", class: "hint" });
    this.searchError = h("div", { id: "search-error", class: "inline-error", hidden: true, attrs: { role: "alert" } });

    // Filters.
    this.repoFilter = h("select", { id: "filter-repo", attrs: { "aria-label": "Repository" } });
    this.langFilter = h("select", { id: "filter-language", attrs: { "aria-label": "Language" } });
    this.pathFilter = h("input", {
      id: "filter-path",
      attrs: { type: "text", placeholder: "e.g. src/**/*.rs", spellcheck: "false", autocomplete: "off", "aria-label": "Path glob" },
    });
    this.clearFilters = h("button", { id: "filters-clear", class: "link-button", text: "Clear filters", hidden: true, attrs: { type: "button" } });
    this.fillSelect(this.repoFilter, "All repositories", []);
    this.fillSelect(this.langFilter, "All languages", []);

    this.pending = h("div", { id: "pending-notice", class: "notice", hidden: true, attrs: { role: "status" } });
    this.status = h("div", { id: "results-status", class: "status", attrs: { role: "status", "aria-live": "polite" } });
    this.empty = h("div", { id: "empty-state", class: "empty", hidden: true });

    const main = h(
      "main",
      { class: "main" },
      this.problems.el,
      h(
        "div",
        { class: "search-area" },
        this.searchBox,
        h("div", { class: "mode-row" }, segmented, this.detectedWrap),
        this.hint,
        this.searchError,
        h(
          "div",
          { class: "filters" },
          h("label", { class: "filter" }, h("span", { text: "Repository" }), this.repoFilter),
          h("label", { class: "filter" }, h("span", { text: "Language" }), this.langFilter),
          h("label", { class: "filter filter-path" }, h("span", { text: "Path" }), this.pathFilter),
          this.clearFilters,
        ),
      ),
      h("div", { class: "results-head" }, this.status, this.pending),
      h("div", { class: "results-scroll" }, this.empty, this.results.list),
    );

    clear(root);
    root.classList.add("app");
    root.append(this.banner.el, h("div", { class: "layout" }, this.sidebar.el, main), this.settings.el, this.toast.el);

    this.wire();
    this.updateHint();
    this.updateStatus();
  }

  private wire(): void {
    this.input.addEventListener("input", () => {
      this.autosize();
      this.updateHint();
      this.search.setQuery(this.input.value);
    });
    this.repoFilter.addEventListener("change", () => this.filtersChanged());
    this.langFilter.addEventListener("change", () => this.filtersChanged());
    this.pathFilter.addEventListener("input", () => {
      if (this.pathTimer !== null) clearTimeout(this.pathTimer);
      this.pathTimer = setTimeout(() => {
        this.pathTimer = null;
        this.filtersChanged();
      }, 250);
    });
    this.pathFilter.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        if (this.pathTimer !== null) clearTimeout(this.pathTimer);
        this.pathTimer = null;
        this.filtersChanged();
      }
    });
    this.clearFilters.addEventListener("click", () => {
      this.repoFilter.value = "";
      this.langFilter.value = "";
      this.pathFilter.value = "";
      this.filtersChanged();
      focusInput(this.input, false);
    });
    this.cleanups.push(
      installKeyboard({
        input: this.input,
        results: this.results.list,
        submit: () => this.search.submit(),
        clearQuery: () => this.clearQuery(),
        open: (el) => void this.results.open(el),
        closeOverlay: () => {
          if (!this.settings.isOpen) return false;
          this.settings.close();
          return true;
        },
      }),
    );
    const tick = setInterval(() => this.sidebar.refreshTimes(), 30_000);
    this.cleanups.push(() => clearInterval(tick));
  }

  /** Loads the state and subscribes to live updates. */
  async start(): Promise<void> {
    await this.load();
    const api = this.deps.api;
    const subscribe = async (p: Promise<() => void>) => {
      try {
        this.cleanups.push(await p);
      } catch {
        // Outside Tauri (or no event permission): no live updates.
      }
    };
    await Promise.all([
      subscribe(
        api.onIndexProgress((ev) => {
          this.sidebar.applyIndexEvent(ev);
          if (ev.phase === "done" || ev.phase === "searchable") this.scheduleRefresh();
        }),
      ),
      subscribe(
        api.onModelProgress((m) => {
          if (this.state) this.state.model = m;
          this.banner.update(m);
        }),
      ),
      subscribe(
        api.onRepositoriesChanged((repos) => {
          this.sidebar.setRepositories(repos);
          this.scheduleRefresh();
        }),
      ),
    ]);
  }

  async load(): Promise<void> {
    try {
      const state = await this.deps.api.state();
      this.loadError = null;
      this.state = state;
      this.banner.update(state.model);
      this.problems.update(state.problems ?? []);
      this.setLanguages(state.languages);
      this.sidebar.setRepositories(state.repositories);
    } catch (e) {
      this.loadError = e;
      this.updateStatus();
    }
  }

  destroy(): void {
    for (const f of this.cleanups.splice(0)) f();
    if (this.refreshTimer !== null) clearTimeout(this.refreshTimer);
    if (this.pathTimer !== null) clearTimeout(this.pathTimer);
  }

  // ------------------------------------------------------------ search box

  setMode(mode: Mode): void {
    for (const [m, b] of this.modeButtons) b.setAttribute("aria-pressed", String(m === mode));
    if (mode !== "auto") this.showDetected(null);
    else if (this.search.detected) this.showDetected(this.search.detected);
    this.search.setMode(mode);
    focusInput(this.input, false);
  }

  /** Sets the query as if typed (tests, and the empty state's examples). */
  setQuery(text: string): void {
    this.input.value = text;
    this.input.dispatchEvent(new Event("input", { bubbles: true }));
  }

  clearQuery(): void {
    this.input.value = "";
    this.autosize();
    this.updateHint();
    this.search.clear();
  }

  private autosize(): void {
    const el = this.input;
    el.style.height = "auto";
    if (el.scrollHeight > 0) el.style.height = `${el.scrollHeight}px`;
    else el.style.height = "";
  }

  private updateHint(): void {
    const mod = isMac() ? "⌘" : "Ctrl";
    const q = this.input.value;
    this.input.classList.toggle("multiline", q.includes("\n"));
    let text: string;
    if (q.includes("\n")) text = `${mod}+Enter to search · Enter adds a line · Esc clears`;
    else if (!isLiveQuery(q)) text = `Enter to search · Shift+Enter adds a line · Esc clears`;
    else text = `Results as you type · Enter searches now · Shift+Enter adds a line · ↓ to results · ${mod}+K from anywhere`;
    setText(this.hint, text);
  }

  private showDetected(mode: Mode | null): void {
    const visible = this.search.mode === "auto" && mode !== null && mode !== "auto";
    setText(this.detectedMode, visible && mode ? MODE_LABELS[mode] : "");
    if (visible && mode) this.detectedMode.setAttribute("data-mode", mode);
    else this.detectedMode.removeAttribute("data-mode");
    show(this.detectedWrap, visible);
  }

  // ------------------------------------------------------------ filters

  private fillSelect(select: HTMLSelectElement, allLabel: string, items: { value: string; label: string; title?: string }[]): void {
    const current = select.value;
    clear(select);
    const all = h("option", { text: allLabel });
    all.value = "";
    select.appendChild(all);
    for (const item of items) {
      const opt = h("option", { text: item.label, title: item.title });
      opt.value = item.value;
      select.appendChild(opt);
    }
    select.value = items.some((i) => i.value === current) ? current : "";
  }

  private setLanguages(languages: string[]): void {
    const before = this.langFilter.value;
    const sorted = [...languages].sort((a, b) => a.localeCompare(b));
    this.fillSelect(this.langFilter, "All languages", sorted.map((l) => ({ value: l, label: l })));
    if (this.langFilter.value !== before) this.filtersChanged();
  }

  private currentFilters(): Filters {
    const repo = this.repoFilter.value;
    const lang = this.langFilter.value;
    return {
      repos: repo ? [repo] : [],
      languages: lang ? [lang] : [],
      path_globs: parseGlobs(this.pathFilter.value),
    };
  }

  private filtersChanged(): void {
    const f = this.currentFilters();
    show(this.clearFilters, hasFilters(f));
    const old = this.search.filters;
    if (JSON.stringify(old) === JSON.stringify(f)) return;
    this.search.setFilters(f);
  }

  // ------------------------------------------------------------ repositories

  private repositoriesChanged(repos: Repository[]): void {
    if (this.state) this.state.repositories = repos;
    const key = repos.map((r) => `${r.root}\u0000${r.name}`).join("\u0001");
    if (key !== this.repoKey) {
      this.repoKey = key;
      const before = this.repoFilter.value;
      this.fillSelect(
        this.repoFilter,
        "All repositories",
        repos.map((r) => ({ value: r.root, label: r.name, title: r.root })),
      );
      if (this.repoFilter.value !== before) this.filtersChanged();
    }
    this.updateStatus();
  }

  /** Languages can change when indexing finishes: re-read the state soon. */
  private scheduleRefresh(): void {
    if (this.refreshTimer !== null) clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(async () => {
      this.refreshTimer = null;
      try {
        const state = await this.deps.api.state();
        this.state = state;
        this.setLanguages(state.languages);
      } catch {
        // Keep what is shown.
      }
    }, 500);
  }

  private openSettings(): void {
    if (!this.state) return;
    if (this.settings.isOpen) this.settings.close();
    else this.settings.open(this.state.settings, this.state.choices);
  }

  // ------------------------------------------------------------ results

  private showResults(response: SearchResponse, _request: SearchRequest): void {
    this.searchBox.classList.remove("busy");
    showInlineError(this.searchError, null);
    this.lastResponse = response;
    this.results.render(response);
    const pending = response.pending_chunks;
    setText(
      this.pending,
      pending > 0
        ? `${formatCount(pending)} ${pending === 1 ? "chunk is" : "chunks are"} still being embedded: results by meaning are incomplete`
        : "",
    );
    show(this.pending, pending > 0);
    this.updateStatus();
  }

  private showSearchError(e: unknown): void {
    this.searchBox.classList.remove("busy");
    this.lastResponse = null;
    this.results.clear();
    showInlineError(this.searchError, toUiError(e));
    this.updateStatus("Search failed");
  }

  private showCleared(): void {
    this.searchBox.classList.remove("busy");
    this.lastResponse = null;
    this.results.clear();
    showInlineError(this.searchError, null);
    setText(this.pending, "");
    show(this.pending, false);
    this.updateStatus();
  }

  /** The status line and the empty state, from what is known now. */
  private updateStatus(override?: string): void {
    clear(this.empty);
    let status = "";
    let empty: HTMLElement | null = null;
    const repos = this.sidebar.repos;
    const response = this.lastResponse;
    if (override) {
      status = override;
    } else if (this.loadError) {
      const err = toUiError(this.loadError);
      status = "Could not load";
      const retry = h("button", { text: "Try again", attrs: { type: "button" } });
      retry.addEventListener("click", () => void this.load());
      empty = h("div", { class: "empty-card" }, h("h3", { text: err.message }), err.hint ? h("p", { text: err.hint }) : null, retry);
    } else if (!this.state) {
      status = "Loading…";
    } else if (repos.length === 0 && !response) {
      status = "Add a repository to start";
      const add = h("button", { class: "primary", attrs: { type: "button" } }, icon("folder"), h("span", { text: "Add repository…" }));
      add.addEventListener("click", () => void this.sidebar.browse());
      empty = h(
        "div",
        { class: "empty-card" },
        h("h3", { text: "Add a repository to start" }),
        h("p", { text: "Quarry indexes a folder on this machine and searches it by words and by meaning. Nothing leaves your computer." }),
        add,
      );
    } else if (this.waiting) {
      status = `Press ${isMac() ? "⌘" : "Ctrl"}+Enter to search`;
    } else if (response && this.input.value.trim() !== "") {
      const n = response.hits.length;
      if (n === 0) {
        status = "No matches";
        empty = this.noMatches();
      } else {
        status = `${plural(n, "result")} · ${formatCount(response.took_ms)} ms · ${MODE_LABELS[response.mode]}`;
      }
    } else if (repos.length > 0) {
      const chunks = repos.reduce((s, r) => s + r.chunks, 0);
      status = `${plural(repos.length, "repository", "repositories")} · ${plural(chunks, "chunk")}`;
      empty = this.welcome();
    }
    setText(this.status, status);
    if (empty) this.empty.appendChild(empty);
    show(this.empty, empty !== null);
  }

  private noMatches(): HTMLElement {
    const tips: string[] = [];
    const f = this.search.filters;
    if (hasFilters(f)) tips.push("Remove the filters: repository, language or path.");
    if (this.search.mode === "auto") tips.push("Pick a mode: Describe behaviour for words, Paste code for code.");
    else tips.push("Try Auto or another mode.");
    tips.push("Use fewer or different words.");
    if (this.sidebar.repos.some((r) => r.state !== "up_to_date")) tips.push("Some repositories are still being indexed.");
    const card = h("div", { class: "empty-card" }, h("h3", { text: "No matches" }), h("ul", null, ...tips.map((t) => h("li", { text: t }))));
    if (hasFilters(f)) {
      const b = h("button", { text: "Clear filters", attrs: { type: "button" } });
      b.addEventListener("click", () => this.clearFilters.click());
      card.appendChild(b);
    }
    return card;
  }

  private welcome(): HTMLElement {
    const mod = isMac() ? "⌘" : "Ctrl";
    const row = (mode: Mode, example: string) =>
      h("li", null, h("strong", { text: MODE_LABELS[mode] }), h("span", { text: example }));
    return h(
      "div",
      { class: "empty-card welcome" },
      h("h3", { text: "Search your code" }),
      h(
        "ul",
        { class: "examples" },
        row("text", "“where are retries with backoff handled”"),
        row("code", "a function or a few lines, to find similar code"),
        row("issue", "an error message, stack trace or bug report"),
      ),
      h("p", { class: "keys", text: `${mod}+K search · ↑ ↓ move · Enter open · Esc clear` }),
    );
  }
}

export async function mountApp(root: HTMLElement, deps: AppDeps): Promise<App> {
  const app = new App(root, deps);
  await app.start();
  return app;
}
