// Keyboard: Ctrl/Cmd+K to the search box, arrows through the results, Enter
// to search or open, Esc to clear or go back. One document-level handler.

export interface KeyboardContext {
  input: HTMLTextAreaElement;
  results: HTMLElement;
  /** Search now (Enter in a single line, Ctrl/Cmd+Enter anywhere). */
  submit: () => void;
  /** Empty the query and the results. */
  clearQuery: () => void;
  /** Open a hit in the editor. */
  open: (hit: HTMLElement) => void;
  /** Close an open overlay such as the settings panel; true if one was open. */
  closeOverlay: () => boolean;
}

export function hitElements(results: HTMLElement): HTMLElement[] {
  return Array.from(results.querySelectorAll<HTMLElement>(".hit"));
}

export function selectedHit(results: HTMLElement): HTMLElement | null {
  return results.querySelector<HTMLElement>(".hit.selected");
}

/** Marks one hit selected (roving tabindex), focuses it and scrolls it into
 * view. null unselects all. */
export function selectHit(results: HTMLElement, hit: HTMLElement | null, focus = true): void {
  for (const el of hitElements(results)) {
    if (el === hit) continue;
    if (el.classList.contains("selected")) {
      el.classList.remove("selected");
      el.removeAttribute("aria-current");
    }
    el.tabIndex = -1;
  }
  if (!hit) return;
  hit.classList.add("selected");
  hit.setAttribute("aria-current", "true");
  hit.tabIndex = 0;
  if (focus) hit.focus({ preventScroll: true });
  if (typeof hit.scrollIntoView === "function") hit.scrollIntoView({ block: "nearest" });
}

function isMod(e: KeyboardEvent): boolean {
  return e.ctrlKey || e.metaKey;
}

/** The caret is on the textarea's last line (so ArrowDown would not move it). */
function caretOnLastLine(input: HTMLTextAreaElement): boolean {
  const end = input.selectionEnd ?? input.value.length;
  return !input.value.slice(end).includes("\n");
}

export function focusInput(input: HTMLTextAreaElement, select = true): void {
  input.focus();
  if (select) input.select();
}

export function handleKeydown(e: KeyboardEvent, ctx: KeyboardContext): void {
  if (e.defaultPrevented || e.isComposing) return;
  const { input, results } = ctx;
  const target = e.target instanceof HTMLElement ? e.target : null;

  // Ctrl/Cmd+K from anywhere.
  if (isMod(e) && !e.altKey && !e.shiftKey && e.key.toLowerCase() === "k") {
    e.preventDefault();
    focusInput(input);
    return;
  }

  if (e.key === "Escape") {
    if (ctx.closeOverlay()) {
      e.preventDefault();
      focusInput(input, false);
      return;
    }
    if (target === input) {
      e.preventDefault();
      if (input.value !== "") ctx.clearQuery();
      else input.blur();
      return;
    }
    if (target && target.closest("input, select, textarea") && !results.contains(target)) {
      // Leave other fields alone except to step back to the search box.
      e.preventDefault();
      focusInput(input, false);
      return;
    }
    e.preventDefault();
    selectHit(results, null);
    focusInput(input, false);
    return;
  }

  if (target === input) {
    if (e.key === "Enter") {
      if (isMod(e) || (!e.shiftKey && !e.altKey && !input.value.includes("\n"))) {
        e.preventDefault();
        ctx.submit();
      }
      return;
    }
    if (e.key === "ArrowDown" && !isMod(e) && !e.shiftKey && caretOnLastLine(input)) {
      const first = hitElements(results)[0];
      if (first) {
        e.preventDefault();
        selectHit(results, first);
      }
      return;
    }
    return;
  }

  const inResults = target !== null && results.contains(target);
  const nothingFocused = target === null || target === document.body || target === document.documentElement;
  if (!inResults && !nothingFocused) return;

  if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    if (isMod(e) || e.altKey || e.shiftKey) return;
    const hits = hitElements(results);
    if (hits.length === 0) return;
    e.preventDefault();
    const current = (target && (target.closest(".hit") as HTMLElement | null)) ?? selectedHit(results);
    const index = current ? hits.indexOf(current) : -1;
    if (e.key === "ArrowDown") {
      selectHit(results, hits[Math.min(hits.length - 1, index + 1)]);
    } else if (index <= 0) {
      selectHit(results, null);
      focusInput(input, false);
    } else {
      selectHit(results, hits[index - 1]);
    }
    return;
  }

  if (e.key === "Enter" && !e.shiftKey && !e.altKey) {
    // Enter on a button inside the hit presses that button; on the hit itself
    // it opens the hit.
    const hit = target?.classList.contains("hit") ? target : nothingFocused ? selectedHit(results) : null;
    if (hit) {
      e.preventDefault();
      ctx.open(hit);
    }
  }
}

export function installKeyboard(ctx: KeyboardContext, doc: Document = document): () => void {
  const listener = (e: KeyboardEvent) => handleKeydown(e, ctx);
  doc.addEventListener("keydown", listener);
  return () => doc.removeEventListener("keydown", listener);
}
