// The sidebar: repositories with live state, and the "Add repository" area.

import type { IndexEvent, Progress, Repository } from "./api";
import { h, icon, show } from "./dom";
import { RepoView, showInlineError, toUiError } from "./render";

export interface SidebarDeps {
  addRepository: (path: string) => Promise<Repository>;
  pickFolder: () => Promise<string | null>;
  reindex: (root: string) => Promise<void>;
  cancel: (root: string) => Promise<void>;
  remove: (root: string) => Promise<void>;
  openSettings: () => void;
  /** The list changed (added, removed, state): for filters and empty states. */
  onChange?: (repos: Repository[]) => void;
  now?: () => number;
}

const NO_PROGRESS: Progress = {
  phase: "queued",
  files_done: 0,
  files_total: 0,
  chunks_done: 0,
  chunks_total: 0,
  eta_seconds: null,
};

/** A repository after an index-progress event. The Rust side follows up with
 * repositories-changed, which replaces this guess with the truth. */
export function applyIndexEvent(repo: Repository, ev: IndexEvent, nowMs: number = Date.now()): Repository {
  switch (ev.phase) {
    case "queued":
      return { ...repo, state: "queued", progress: ev.progress ?? NO_PROGRESS, error: null };
    case "done":
      return {
        ...repo,
        state: "up_to_date",
        progress: null,
        error: null,
        last_indexed: Math.floor(nowMs / 1000),
        files: ev.progress && ev.progress.files_total > 0 ? ev.progress.files_total : repo.files,
        chunks: ev.progress && ev.progress.chunks_total > 0 ? ev.progress.chunks_total : repo.chunks,
      };
    case "cancelled":
      // There is no "not indexed" state: a repository never indexed shows
      // the cancellation as an error so Re-index is offered.
      return repo.last_indexed != null
        ? { ...repo, state: "up_to_date", progress: null, error: null }
        : {
            ...repo,
            state: "error",
            progress: null,
            error: { message: "Indexing was cancelled", hint: "Re-index to search this repository." },
          };
    case "error":
      return {
        ...repo,
        state: "error",
        progress: null,
        error: ev.error ?? { message: "Indexing failed", hint: null },
      };
    default: {
      const progress: Progress = ev.progress
        ? { ...ev.progress, phase: ev.progress.phase || ev.phase }
        : { ...NO_PROGRESS, phase: ev.phase };
      return { ...repo, state: "indexing", progress, error: null };
    }
  }
}

export class Sidebar {
  readonly el: HTMLElement;
  readonly browseButton: HTMLButtonElement;
  readonly pathInput: HTMLInputElement;
  readonly submitButton: HTMLButtonElement;
  repos: Repository[] = [];
  private readonly list: HTMLUListElement;
  private readonly addError: HTMLElement;
  private readonly count: HTMLElement;
  private readonly views = new Map<string, RepoView>();

  constructor(private readonly deps: SidebarDeps) {
    const settings = h(
      "button",
      { id: "settings-button", class: "icon-button", title: "Settings", attrs: { type: "button", "aria-label": "Settings" } },
      icon("gear"),
    );
    settings.addEventListener("click", () => deps.openSettings());
    this.count = h("span", { class: "repo-count" });
    this.list = h("ul", { id: "repo-list", class: "repo-list", attrs: { "aria-label": "Repositories" } });

    this.browseButton = h(
      "button",
      { id: "add-repo-browse", class: "add-browse", attrs: { type: "button" } },
      icon("folder"),
      h("span", { text: "Add repository…" }),
    );
    this.pathInput = h("input", {
      id: "add-repo-path",
      attrs: {
        type: "text",
        placeholder: "or paste a path",
        spellcheck: "false",
        autocomplete: "off",
        "aria-label": "Repository path",
      },
    });
    this.submitButton = h("button", { id: "add-repo-submit", text: "Add", attrs: { type: "submit" } });
    this.addError = h("div", { class: "inline-error add-error", hidden: true, attrs: { role: "alert" } });
    const form = h("form", { class: "add-repo-row" }, this.pathInput, this.submitButton);

    this.el = h(
      "aside",
      { id: "sidebar", class: "sidebar" },
      h(
        "div",
        { class: "sidebar-head" },
        h("span", { class: "brand", text: "Quarry" }),
        settings,
      ),
      h("div", { class: "section-head" }, h("h2", { text: "Repositories" }), this.count),
      this.list,
      h("div", { class: "add-repo" }, this.browseButton, form, this.addError),
    );

    this.browseButton.addEventListener("click", () => void this.browse());
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.addTyped();
    });
  }

  /** Opens the folder dialog and adds what was picked. */
  async browse(): Promise<void> {
    showInlineError(this.addError, null);
    let path: string | null;
    try {
      path = await this.deps.pickFolder();
    } catch (e) {
      showInlineError(this.addError, toUiError(e));
      return;
    }
    if (path) await this.add(path);
  }

  async addTyped(): Promise<void> {
    const path = this.pathInput.value.trim();
    if (!path) {
      showInlineError(this.addError, { message: "Type or paste the path of a folder", hint: null });
      this.pathInput.focus();
      return;
    }
    if (await this.add(path)) this.pathInput.value = "";
  }

  private async add(path: string): Promise<boolean> {
    showInlineError(this.addError, null);
    this.browseButton.disabled = true;
    this.submitButton.disabled = true;
    try {
      const repo = await this.deps.addRepository(path);
      this.upsert(repo);
      return true;
    } catch (e) {
      showInlineError(this.addError, toUiError(e));
      return false;
    } finally {
      this.browseButton.disabled = false;
      this.submitButton.disabled = false;
    }
  }

  /** Replaces the list, reusing the elements of repositories still there so
   * nothing flickers and focus stays put. */
  setRepositories(repos: Repository[]): void {
    const now = this.now();
    const keep = new Set(repos.map((r) => r.root));
    for (const [root, view] of this.views) {
      if (!keep.has(root)) {
        view.el.remove();
        this.views.delete(root);
      }
    }
    let previous: Element | null = null;
    for (const repo of repos) {
      let view = this.views.get(repo.root);
      if (view) view.update(repo, now);
      else {
        view = new RepoView(repo, { reindex: this.deps.reindex, cancel: this.deps.cancel, remove: this.deps.remove }, now);
        this.views.set(repo.root, view);
      }
      const wanted: Element | null = previous ? previous.nextElementSibling : this.list.firstElementChild;
      if (wanted !== view.el) this.list.insertBefore(view.el, wanted);
      previous = view.el;
    }
    this.repos = repos;
    this.count.textContent = repos.length > 0 ? String(repos.length) : "";
    show(this.list, repos.length > 0);
    this.deps.onChange?.(repos);
  }

  upsert(repo: Repository): void {
    const i = this.repos.findIndex((r) => r.root === repo.root);
    const next = [...this.repos];
    if (i >= 0) next[i] = repo;
    else next.push(repo);
    this.setRepositories(next);
  }

  applyIndexEvent(ev: IndexEvent): void {
    const repo = this.repos.find((r) => r.root === ev.root);
    if (!repo) return;
    this.upsert(applyIndexEvent(repo, ev, this.now()));
  }

  view(root: string): RepoView | undefined {
    return this.views.get(root);
  }

  refreshTimes(): void {
    const now = this.now();
    for (const view of this.views.values()) view.refreshTime(now);
  }

  private now(): number {
    return this.deps.now ? this.deps.now() : Date.now();
  }
}
