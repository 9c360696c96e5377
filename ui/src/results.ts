// The results list: renders hits and handles their buttons (expand context,
// open in editor, copy path:line).

import type { Hit, OpenRequest, Preview, PreviewRequest, SearchResponse } from "./api";
import { clear, h } from "./dom";
import { pathLine } from "./format";
import { TermMatcher } from "./highlight-marks";
import { selectHit } from "./keyboard";
import { renderHit, renderPreview, showInlineError, toUiError } from "./render";

/** Lines of context for successive "Expand context" clicks. */
export const CONTEXT_STEPS = [10, 30, 100];

export interface ResultsDeps {
  preview: (request: PreviewRequest) => Promise<Preview>;
  openInEditor: (request: OpenRequest) => Promise<void>;
  copy: (text: string) => Promise<boolean>;
  toast: (text: string, kind?: "info" | "error") => void;
}

interface Expansion {
  /** Index into CONTEXT_STEPS shown now; -1: collapsed. */
  step: number;
  /** The preview covers the whole file: nothing more to add. */
  whole: boolean;
  loading: boolean;
}

export class ResultsView {
  readonly list: HTMLOListElement;
  private readonly data = new WeakMap<HTMLElement, Hit>();
  private readonly expansions = new WeakMap<HTMLElement, Expansion>();
  private matcher = new TermMatcher([]);

  constructor(private readonly deps: ResultsDeps) {
    this.list = h("ol", { id: "results", class: "results", attrs: { "aria-label": "Results" } });
    this.list.addEventListener("click", (e) => this.onClick(e));
  }

  render(response: SearchResponse): void {
    this.matcher = new TermMatcher(response.terms);
    const fragment = document.createDocumentFragment();
    for (const hit of response.hits) {
      const el = renderHit(hit, this.matcher);
      this.data.set(el, hit);
      fragment.appendChild(el);
    }
    clear(this.list);
    this.list.appendChild(fragment);
    this.list.scrollTop = 0;
  }

  clear(): void {
    clear(this.list);
  }

  get count(): number {
    return this.list.children.length;
  }

  hitOf(el: HTMLElement): Hit | undefined {
    return this.data.get(el);
  }

  private onClick(e: MouseEvent): void {
    const target = e.target instanceof Element ? e.target : null;
    const el = target?.closest<HTMLElement>(".hit");
    if (!el) return;
    const button = target?.closest("button");
    if (!button) {
      // A click on the hit selects it (keeps any text selection going).
      if (!window.getSelection()?.toString()) selectHit(this.list, el);
      return;
    }
    selectHit(this.list, el, false);
    if (button.classList.contains("hit-open")) void this.open(el);
    else if (button.classList.contains("hit-copy")) void this.copy(el);
    else if (button.classList.contains("hit-expand")) void this.expand(el);
  }

  private errorBox(el: HTMLElement): HTMLElement {
    return el.querySelector<HTMLElement>(".hit-error")!;
  }

  async open(el: HTMLElement): Promise<void> {
    const hit = this.data.get(el);
    if (!hit) return;
    showInlineError(this.errorBox(el), null);
    try {
      await this.deps.openInEditor({ root: hit.root, path: hit.path, line: hit.start_line });
      this.deps.toast(`Opened ${hit.path}:${hit.start_line}`);
    } catch (err) {
      showInlineError(this.errorBox(el), toUiError(err));
    }
  }

  async copy(el: HTMLElement): Promise<void> {
    const hit = this.data.get(el);
    if (!hit) return;
    const ok = await this.deps.copy(pathLine(hit.root, hit.path, hit.start_line));
    if (ok) this.deps.toast("Copied");
    else this.deps.toast("Could not copy to the clipboard", "error");
  }

  /** Expand context: 10 lines, then more, then collapse. */
  async expand(el: HTMLElement): Promise<void> {
    const hit = this.data.get(el);
    if (!hit) return;
    const state = this.expansions.get(el) ?? { step: -1, whole: false, loading: false };
    if (state.loading) return;
    const button = el.querySelector<HTMLButtonElement>("button.hit-expand")!;
    const canGrow = state.step < CONTEXT_STEPS.length - 1 && !state.whole;
    if (state.step >= 0 && !canGrow) {
      this.collapse(el);
      return;
    }
    const step = state.step + 1;
    state.loading = true;
    this.expansions.set(el, state);
    button.disabled = true;
    showInlineError(this.errorBox(el), null);
    try {
      const preview = await this.deps.preview({
        root: hit.root,
        path: hit.path,
        start_line: hit.start_line,
        end_line: hit.end_line,
        context: CONTEXT_STEPS[step],
      });
      if (!el.isConnected) return;
      state.step = step;
      state.whole = preview.first_line <= 1 && preview.first_line + preview.lines.length - 1 >= preview.total_lines;
      this.showPreview(el, hit, preview);
      const more = state.step < CONTEXT_STEPS.length - 1 && !state.whole;
      button.textContent = more ? "More context" : "Collapse context";
      button.setAttribute("aria-expanded", "true");
    } catch (err) {
      showInlineError(this.errorBox(el), toUiError(err));
    } finally {
      state.loading = false;
      button.disabled = false;
    }
  }

  collapse(el: HTMLElement): void {
    el.querySelector(".hit-preview")?.remove();
    const code = el.querySelector<HTMLElement>(".hit-code");
    if (code) code.hidden = false;
    el.classList.remove("expanded");
    this.expansions.set(el, { step: -1, whole: false, loading: false });
    const button = el.querySelector<HTMLButtonElement>("button.hit-expand");
    if (button) {
      button.textContent = "Expand context";
      button.setAttribute("aria-expanded", "false");
    }
  }

  private showPreview(el: HTMLElement, hit: Hit, preview: Preview): void {
    const node = renderPreview(preview, hit, this.matcher, {
      onCollapse: () => {
        this.collapse(el);
        el.querySelector<HTMLButtonElement>("button.hit-expand")?.focus();
      },
    });
    const old = el.querySelector(".hit-preview");
    if (old) old.replaceWith(node);
    else el.querySelector(".hit-code")!.after(node);
    const code = el.querySelector<HTMLElement>(".hit-code");
    if (code) code.hidden = true;
    el.classList.add("expanded");
    // Keep the hit's own lines in view inside the scrollable preview.
    const first = node.querySelector<HTMLElement>(".in-hit");
    const scroller = node.querySelector<HTMLElement>(".code");
    if (first && scroller && first.offsetTop > scroller.clientHeight / 2) {
      scroller.scrollTop = Math.max(0, first.offsetTop - 3 * first.offsetHeight);
    }
  }
}
