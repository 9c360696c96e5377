// The key handler on its own, against a rendered list and spies.

import { beforeEach, describe, expect, it, vi, type Mock } from "vitest";
import { handleKeydown, installKeyboard, type KeyboardContext } from "../src/keyboard";
import { TermMatcher } from "../src/highlight-marks";
import { renderHit } from "../src/render";
import { key, makeHit } from "./fixtures";

let ctx: KeyboardContext;
let uninstall: () => void;
let open: Mock<(hit: HTMLElement) => void>;
let submit: Mock<() => void>;
let clearQuery: Mock<() => void>;
let overlayOpen: boolean;

beforeEach(() => {
  uninstall?.();
  document.body.textContent = "";
  const input = document.createElement("textarea");
  const results = document.createElement("ol");
  const select = document.createElement("select");
  select.id = "other";
  for (let i = 1; i <= 3; i++) results.appendChild(renderHit(makeHit({ rank: i, symbol: `s${i}` }), new TermMatcher([])));
  document.body.append(input, select, results);
  open = vi.fn();
  submit = vi.fn();
  clearQuery = vi.fn(() => {
    input.value = "";
  });
  overlayOpen = false;
  ctx = {
    input,
    results,
    submit,
    clearQuery,
    open,
    closeOverlay: () => {
      const was = overlayOpen;
      overlayOpen = false;
      return was;
    },
  };
  uninstall = installKeyboard(ctx);
});

const hits = () => Array.from(ctx.results.querySelectorAll<HTMLElement>(".hit"));

describe("keyboard handler", () => {
  it("Enter on a hit opens it; Enter on a button inside does not", () => {
    key(ctx.input, "ArrowDown");
    key(hits()[0], "Enter");
    expect(open).toHaveBeenCalledWith(hits()[0]);
    open.mockClear();
    const btn = hits()[0].querySelector<HTMLButtonElement>("button.hit-copy")!;
    btn.focus();
    key(btn, "Enter");
    expect(open).not.toHaveBeenCalled();
  });

  it("arrows on a button inside a hit still move between hits", () => {
    const btn = hits()[1].querySelector<HTMLButtonElement>("button.hit-open")!;
    btn.focus();
    key(btn, "ArrowDown");
    expect(document.activeElement).toBe(hits()[2]);
  });

  it("in a multi-line query ArrowDown moves the caret until the last line", () => {
    ctx.input.value = "line one\nline two";
    ctx.input.focus();
    ctx.input.setSelectionRange(2, 2);
    const e = key(ctx.input, "ArrowDown");
    expect(e.defaultPrevented).toBe(false);
    expect(document.activeElement).toBe(ctx.input);
    ctx.input.setSelectionRange(12, 12);
    key(ctx.input, "ArrowDown");
    expect(document.activeElement).toBe(hits()[0]);
  });

  it("Shift+Enter adds a line; Ctrl+Enter and Cmd+Enter search", () => {
    ctx.input.value = "abc";
    expect(key(ctx.input, "Enter", { shiftKey: true }).defaultPrevented).toBe(false);
    expect(submit).not.toHaveBeenCalled();
    key(ctx.input, "Enter", { ctrlKey: true });
    key(ctx.input, "Enter", { metaKey: true });
    expect(submit).toHaveBeenCalledTimes(2);
  });

  it("other fields keep their arrow keys", () => {
    const select = document.getElementById("other")!;
    select.focus();
    const e = key(select, "ArrowDown");
    expect(e.defaultPrevented).toBe(false);
    expect(document.activeElement).toBe(select);
  });

  it("Esc closes an overlay before anything else", () => {
    ctx.input.value = "abc";
    overlayOpen = true;
    key(ctx.input, "Escape");
    expect(clearQuery).not.toHaveBeenCalled();
    expect(overlayOpen).toBe(false);
    key(ctx.input, "Escape");
    expect(clearQuery).toHaveBeenCalled();
  });

  it("ignores keys while composing text (IME)", () => {
    ctx.input.value = "abc";
    const e = new KeyboardEvent("keydown", { key: "Enter", bubbles: true, cancelable: true, isComposing: true });
    handleKeydown(e, ctx);
    expect(submit).not.toHaveBeenCalled();
  });
});
