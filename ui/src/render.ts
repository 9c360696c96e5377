// DOM builders for code, hits, previews, repositories, the model banner and
// the start-up problems notice.
// Nothing here talks to Tauri: behaviour comes in as callbacks.

import type { Hit, Line, ModelState, Preview, Repository, SnippetMatch, Token, UiError } from "./api";
import { clear, h, icon, setText, show } from "./dom";
import {
  formatCount,
  formatModelState,
  formatProgress,
  formatRelativeTime,
  joinPath,
  modelFraction,
  plural,
  progressFraction,
  STATE_LABELS,
} from "./format";
import { TermMatcher } from "./highlight-marks";

/** Chunks longer than this show their first COLLAPSED_LINES lines. */
export const COLLAPSED_LINES = 30;

// ---------------------------------------------------------------- code

/** "function.builtin" -> "tok-function tok-function-builtin". Only letters,
 * digits and dashes survive: the class name is data too. */
export function tokenClasses(cls: string | null): string {
  if (!cls) return "";
  const parts = cls
    .toLowerCase()
    .split(".")
    .map((p) => p.replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, ""))
    .filter(Boolean);
  if (parts.length === 0) return "";
  const names = [`tok-${parts[0]}`];
  if (parts.length > 1) names.push(`tok-${parts.join("-")}`);
  return names.join(" ");
}

export function renderToken(token: Token, matcher: TermMatcher): HTMLElement | Text {
  const classes = tokenClasses(token.class);
  const segments = matcher.segments(token.text);
  if (!classes && segments.length === 1 && !segments[0].mark) {
    return document.createTextNode(token.text);
  }
  const span = h("span", classes ? { class: classes } : null);
  for (const seg of segments) {
    if (seg.mark) span.appendChild(h("mark", { text: seg.text }));
    else span.appendChild(document.createTextNode(seg.text));
  }
  return span;
}

export function renderLineContent(line: Line, matcher: TermMatcher): HTMLElement {
  const content = h("span", { class: "lc" });
  for (const token of line) content.appendChild(renderToken(token, matcher));
  // An empty line still needs height.
  if (line.length === 0 || line.every((t) => t.text.length === 0)) content.appendChild(document.createTextNode("\n"));
  return content;
}

export interface CodeOptions {
  /** Lines (inclusive, numbered like `firstLine`) to emphasise. */
  emphasis?: { start: number; end: number };
}

/** Lines with numbers. `firstLine` is the number of lines[0]. */
export function renderCode(lines: Line[], firstLine: number, matcher: TermMatcher, opts: CodeOptions = {}): HTMLElement {
  const block = h("div", { class: "code", attrs: { role: "presentation" } });
  appendCodeLines(block, lines, firstLine, matcher, opts);
  return block;
}

function appendCodeLines(block: HTMLElement, lines: Line[], firstLine: number, matcher: TermMatcher, opts: CodeOptions): void {
  lines.forEach((line, i) => {
    const n = firstLine + i;
    const row = h("div", { class: "code-line", attrs: { "data-line": n } });
    if (opts.emphasis && n >= opts.emphasis.start && n <= opts.emphasis.end) {
      row.classList.add("in-hit");
      if (n === opts.emphasis.start) row.classList.add("in-hit-first");
      if (n === opts.emphasis.end) row.classList.add("in-hit-last");
    }
    row.appendChild(h("span", { class: "ln", text: String(n), attrs: { "aria-hidden": "true" } }));
    row.appendChild(renderLineContent(line, matcher));
    block.appendChild(row);
  });
}

// ---------------------------------------------------------------- hits

export function hitLocation(hit: Hit): string {
  return `${hit.path}:${hit.start_line}-${hit.end_line}`;
}

/** The code part of a hit, collapsed to COLLAPSED_LINES lines when longer,
 * with a "Show all N lines" toggle. */
export function renderHitCode(hit: Hit, matcher: TermMatcher): HTMLElement {
  const wrap = h("div", { class: "hit-code" });
  const total = hit.lines.length;
  const collapsible = total > COLLAPSED_LINES;
  const block = renderCode(collapsible ? hit.lines.slice(0, COLLAPSED_LINES) : hit.lines, hit.start_line, matcher);
  wrap.appendChild(block);
  if (collapsible) {
    wrap.classList.add("collapsed");
    const toggle = h("button", {
      class: "hit-more",
      text: `Show all ${formatCount(total)} lines`,
      attrs: { type: "button", "aria-expanded": "false" },
    });
    toggle.addEventListener("click", () => {
      const expanded = toggle.getAttribute("aria-expanded") === "true";
      clear(block);
      if (expanded) {
        appendCodeLines(block, hit.lines.slice(0, COLLAPSED_LINES), hit.start_line, matcher, {});
        toggle.textContent = `Show all ${formatCount(total)} lines`;
        wrap.classList.add("collapsed");
      } else {
        appendCodeLines(block, hit.lines, hit.start_line, matcher, {});
        toggle.textContent = "Show fewer lines";
        wrap.classList.remove("collapsed");
      }
      toggle.setAttribute("aria-expanded", String(!expanded));
    });
    wrap.appendChild(toggle);
  }
  return wrap;
}


/** How a hit relates to a pasted snippet, in words. */
const SNIPPET_LABELS: Record<SnippetMatch, string> = {
  exact: "your snippet",
  contains: "contains your snippet",
};

export function renderHit(hit: Hit, matcher: TermMatcher): HTMLLIElement {
  const full = joinPath(hit.root, hit.path);
  const li = h("li", {
    class: "hit",
    attrs: {
      "data-symbol": hit.symbol,
      "data-path": hit.path,
      "data-root": hit.root,
      "data-rank": hit.rank,
      tabindex: -1,
    },
  });
  const symbol = hit.symbol || hit.path.split("/").pop() || hit.path;
  const title = h(
    "div",
    { class: "hit-title" },
    h("span", { class: "hit-symbol", text: symbol, title: hit.symbol }),
    hit.kind ? h("span", { class: "hit-kind", text: hit.kind }) : null,
    hit.snippet_match ? h("span", { class: "hit-snippet", text: SNIPPET_LABELS[hit.snippet_match] }) : null,
  );
  const sub = h(
    "div",
    { class: "hit-sub" },
    h("span", { class: "hit-location", text: hitLocation(hit), title: full }),
    h("span", { class: "hit-repo", text: hit.repo, title: hit.root }),
    hit.language ? h("span", { class: "hit-lang", text: hit.language }) : null,
  );
  const actions = h(
    "div",
    { class: "hit-actions" },
    h("button", { class: "hit-expand", text: "Expand context", attrs: { type: "button", "aria-expanded": "false" } }),
    h("button", { class: "hit-open", text: "Open", title: `Open ${full} at line ${hit.start_line}`, attrs: { type: "button" } }),
    h("button", { class: "hit-copy", text: "Copy path:line", title: "Copy the path and line", attrs: { type: "button" } }),
  );
  li.appendChild(
    h(
      "div",
      { class: "hit-head" },
      h("span", { class: "hit-rank", text: String(hit.rank) }),
      h("div", { class: "hit-main" }, title, sub),
      h("span", { class: "hit-score", text: hit.score.toFixed(2), title: "Score" }),
      actions,
    ),
  );
  li.appendChild(renderHitCode(hit, matcher));
  li.appendChild(h("div", { class: "hit-error inline-error", hidden: true, attrs: { role: "alert" } }));
  return li;
}

export interface PreviewCallbacks {
  onCollapse: () => void;
}

/** Context around a hit; the hit's own lines are emphasised. */
export function renderPreview(preview: Preview, hit: Hit, matcher: TermMatcher, cb: PreviewCallbacks): HTMLElement {
  const last = preview.first_line + preview.lines.length - 1;
  const close = h("button", { class: "hit-preview-close link-button", text: "Collapse", attrs: { type: "button" } });
  close.addEventListener("click", cb.onCollapse);
  const head = h(
    "div",
    { class: "hit-preview-head" },
    h("span", { text: `Lines ${formatCount(preview.first_line)}–${formatCount(last)} of ${formatCount(preview.total_lines)}` }),
    close,
  );
  const code = renderCode(preview.lines, preview.first_line, matcher, {
    emphasis: { start: hit.start_line, end: hit.end_line },
  });
  return h("div", { class: "hit-preview" }, head, code);
}

export function showInlineError(el: HTMLElement, err: UiError | null): void {
  clear(el);
  if (!err) {
    show(el, false);
    return;
  }
  el.appendChild(h("span", { class: "error-message", text: err.message }));
  if (err.hint) el.appendChild(h("span", { class: "error-hint", text: err.hint }));
  show(el, true);
}

/** Whatever a rejected invoke gave, as a UiError. */
export function toUiError(e: unknown): UiError {
  if (e && typeof e === "object" && "message" in e && typeof (e as UiError).message === "string") {
    const hint = (e as UiError).hint;
    return { message: (e as UiError).message, hint: typeof hint === "string" ? hint : null };
  }
  if (typeof e === "string") return { message: e, hint: null };
  return { message: "Something went wrong", hint: null };
}

// ---------------------------------------------------------------- progress bars

export function progressBar(): HTMLElement {
  return h("div", { class: "progress", attrs: { role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100 } }, h("div", { class: "progress-fill" }));
}

/** null: indeterminate. */
export function setProgress(bar: HTMLElement, fraction: number | null): void {
  const fill = bar.firstElementChild as HTMLElement;
  if (fraction === null) {
    bar.classList.add("indeterminate");
    bar.removeAttribute("aria-valuenow");
    fill.style.width = "";
  } else {
    bar.classList.remove("indeterminate");
    const pct = Math.round(fraction * 1000) / 10;
    bar.setAttribute("aria-valuenow", String(Math.round(pct)));
    const width = `${pct}%`;
    if (fill.style.width !== width) fill.style.width = width;
  }
}

// ---------------------------------------------------------------- repositories

export interface RepoHandlers {
  reindex: (root: string) => Promise<void>;
  cancel: (root: string) => Promise<void>;
  remove: (root: string) => Promise<void>;
}

/** One repository in the sidebar, updated in place. */
export class RepoView {
  readonly el: HTMLLIElement;
  repo: Repository;
  private readonly name: HTMLElement;
  private readonly badge: HTMLElement;
  private readonly path: HTMLElement;
  private readonly meta: HTMLElement;
  private readonly progressWrap: HTMLElement;
  private readonly bar: HTMLElement;
  private readonly phase: HTMLElement;
  private readonly pending: HTMLElement;
  private readonly stateError: HTMLElement;
  private readonly actionError: HTMLElement;
  private readonly actions: HTMLElement;
  private readonly reindexBtn: HTMLButtonElement;
  private readonly cancelBtn: HTMLButtonElement;
  private readonly removeBtn: HTMLButtonElement;
  private readonly confirm: HTMLElement;
  private readonly confirmYes: HTMLButtonElement;

  constructor(repo: Repository, private readonly handlers: RepoHandlers, nowMs: number = Date.now()) {
    this.repo = repo;
    this.name = h("span", { class: "repo-name" });
    this.badge = h("span", { class: "repo-state badge" });
    this.path = h("div", { class: "repo-path" });
    this.meta = h("div", { class: "repo-meta" });
    this.bar = progressBar();
    this.phase = h("div", { class: "repo-phase" });
    this.progressWrap = h("div", { class: "repo-progress", hidden: true }, this.bar, this.phase);
    this.pending = h("div", { class: "repo-pending", hidden: true });
    this.stateError = h("div", { class: "repo-error inline-error", hidden: true });
    this.actionError = h("div", { class: "repo-action-error inline-error", hidden: true, attrs: { role: "alert" } });
    this.reindexBtn = h("button", { class: "repo-reindex small", text: "Re-index", attrs: { type: "button" } });
    this.cancelBtn = h("button", { class: "repo-cancel small", text: "Cancel", attrs: { type: "button" } });
    this.removeBtn = h("button", { class: "repo-remove small danger-quiet", text: "Remove", attrs: { type: "button" } });
    this.actions = h("div", { class: "repo-actions" }, this.reindexBtn, this.cancelBtn, this.removeBtn);
    this.confirmYes = h("button", { class: "repo-remove-confirm small danger", text: "Remove", attrs: { type: "button" } });
    const confirmNo = h("button", { class: "repo-remove-keep small", text: "Keep", attrs: { type: "button" } });
    this.confirm = h(
      "div",
      { class: "repo-confirm", hidden: true },
      h("span", { class: "repo-confirm-text", text: "Remove from the index? Files stay on disk." }),
      h("div", { class: "repo-confirm-buttons" }, this.confirmYes, confirmNo),
    );
    this.el = h(
      "li",
      { class: "repo", attrs: { "data-root": repo.root } },
      h("div", { class: "repo-head" }, this.name, this.badge),
      this.path,
      this.meta,
      this.progressWrap,
      this.pending,
      this.stateError,
      this.actions,
      this.confirm,
      this.actionError,
    );

    this.reindexBtn.addEventListener("click", () => this.run(this.reindexBtn, () => this.handlers.reindex(this.repo.root)));
    this.cancelBtn.addEventListener("click", () => this.run(this.cancelBtn, () => this.handlers.cancel(this.repo.root)));
    this.removeBtn.addEventListener("click", () => this.askRemove(true));
    confirmNo.addEventListener("click", () => this.askRemove(false));
    this.confirmYes.addEventListener("click", () =>
      this.run(this.confirmYes, async () => {
        await this.handlers.remove(this.repo.root);
        this.askRemove(false);
      }),
    );
    this.confirm.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.stopPropagation();
        this.askRemove(false);
      }
    });
    this.update(repo, nowMs);
  }

  askRemove(open: boolean): void {
    show(this.confirm, open);
    show(this.actions, !open);
    if (open) {
      setText(this.confirm.firstElementChild as HTMLElement, `Remove ${this.repo.name} from the index? Files stay on disk.`);
      this.confirmYes.focus();
    } else if (this.el.contains(document.activeElement)) {
      this.removeBtn.focus();
    }
  }

  private async run(button: HTMLButtonElement, action: () => Promise<void>): Promise<void> {
    showInlineError(this.actionError, null);
    button.disabled = true;
    try {
      await action();
    } catch (e) {
      showInlineError(this.actionError, toUiError(e));
    } finally {
      button.disabled = false;
    }
  }

  update(repo: Repository, nowMs: number = Date.now()): void {
    this.repo = repo;
    const el = this.el;
    if (el.getAttribute("data-state") !== repo.state) el.setAttribute("data-state", repo.state);
    this.badge.setAttribute("data-state", repo.state);
    el.title = repo.root;
    setText(this.name, repo.name);
    setText(this.badge, STATE_LABELS[repo.state] ?? repo.state);
    setText(this.path, repo.root);
    this.path.title = repo.root;
    this.refreshTime(nowMs);

    const busy = repo.state === "queued" || repo.state === "indexing";
    show(this.progressWrap, busy);
    if (busy) {
      const p = repo.progress;
      setText(this.phase, p ? formatProgress(p) : repo.state === "queued" ? "Waiting to start" : "Starting");
      setProgress(this.bar, p ? progressFraction(p) : null);
    }
    show(this.cancelBtn, busy);
    show(this.reindexBtn, !busy);
    show(this.pending, !busy && repo.pending > 0);
    if (!busy && repo.pending > 0) {
      setText(this.pending, `${plural(repo.pending, "chunk")} not embedded yet: found by words only`);
    }
    showInlineError(this.stateError, repo.state === "error" ? repo.error ?? { message: "Indexing failed", hint: null } : null);
  }

  /** Re-renders "indexed N min ago". */
  refreshTime(nowMs: number = Date.now()): void {
    const r = this.repo;
    const when = r.last_indexed != null ? `indexed ${formatRelativeTime(r.last_indexed, nowMs)}` : "not indexed yet";
    setText(this.meta, `${plural(r.files, "file")} · ${plural(r.chunks, "chunk")} · ${when}`);
  }
}

// ---------------------------------------------------------------- model banner

export class ModelBanner {
  readonly el: HTMLElement;
  private readonly text: HTMLElement;
  private readonly hint: HTMLElement;
  private readonly note: HTMLElement;
  private readonly bar: HTMLElement;

  constructor() {
    this.text = h("span", { class: "model-text" });
    this.hint = h("span", { class: "model-hint", hidden: true });
    this.note = h("span", { class: "model-note", text: "Search by words works meanwhile." });
    this.bar = progressBar();
    this.el = h(
      "div",
      { id: "model-banner", class: "banner", hidden: true, attrs: { role: "status", "aria-live": "polite" } },
      h("span", { class: "spinner", attrs: { "aria-hidden": "true" } }),
      icon("warning"),
      h("div", { class: "banner-body" }, h("div", { class: "banner-line" }, this.text, this.note), this.hint, this.bar),
    );
  }

  update(m: ModelState | null): void {
    const line = m ? formatModelState(m) : null;
    this.el.setAttribute("data-phase", m?.phase ?? "ready");
    if (!m || line === null) {
      show(this.el, false);
      return;
    }
    const error = m.phase === "error";
    this.el.classList.toggle("banner-error", error);
    setText(this.text, line);
    show(this.note, !error);
    show(this.bar, !error);
    if (!error) setProgress(this.bar, modelFraction(m));
    const hint = error ? m.error?.hint ?? null : null;
    setText(this.hint, hint ?? "");
    show(this.hint, !!hint);
    show(this.el, true);
  }
}

// ---------------------------------------------------------------- start-up problems

/** Problems met when the app started, each with its hint, until dismissed. */
export class StartupProblems {
  readonly el: HTMLElement;
  private readonly list: HTMLElement;
  private readonly title: HTMLElement;
  private readonly dismissBtn: HTMLButtonElement;

  constructor(onDismiss: () => void = () => {}) {
    this.title = h("div", { class: "problems-title" });
    this.list = h("ul", { class: "problems-list" });
    this.dismissBtn = h("button", { class: "small problems-dismiss", text: "Dismiss", attrs: { type: "button" } });
    this.dismissBtn.addEventListener("click", () => {
      show(this.el, false);
      onDismiss();
    });
    this.el = h(
      "div",
      { id: "startup-problems", class: "problems", hidden: true, attrs: { role: "alert" } },
      icon("warning"),
      h("div", { class: "problems-body" }, this.title, this.list),
      this.dismissBtn,
    );
  }

  update(problems: readonly UiError[]): void {
    clear(this.list);
    for (const p of problems) {
      this.list.appendChild(
        h(
          "li",
          { class: "problem" },
          h("span", { class: "problem-message", text: p.message }),
          p.hint ? h("span", { class: "problem-hint", text: p.hint }) : null,
        ),
      );
    }
    setText(this.title, problems.length === 1 ? "A problem at start-up" : `${problems.length} problems at start-up`);
    show(this.el, problems.length > 0);
  }
}
