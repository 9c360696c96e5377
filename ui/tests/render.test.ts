import { describe, expect, it, vi } from "vitest";
import { TermMatcher } from "../src/highlight-marks";
import { COLLAPSED_LINES, ModelBanner, RepoView, renderHit, renderPreview, tokenClasses } from "../src/render";
import { flush, line, makeHit, makeRepo } from "./fixtures";

const NOW = Date.UTC(2025, 0, 15, 12, 0, 0);
const handlers = () => ({
  reindex: vi.fn(async () => {}),
  cancel: vi.fn(async () => {}),
  remove: vi.fn(async () => {}),
});
const visible = (el: Element | null) => !!el && !(el as HTMLElement).hidden;

describe("hit", () => {
  it("shows rank, symbol, location, repository, language, score and numbered code", () => {
    const el = renderHit(makeHit({ rank: 3 }), new TermMatcher(["config"]));
    expect(el.dataset.symbol).toBe("parse_config");
    expect(el.dataset.path).toBe("src/config.rs");
    expect(el.querySelector(".hit-rank")!.textContent).toBe("3");
    expect(el.querySelector(".hit-symbol")!.textContent).toBe("parse_config");
    expect(el.querySelector(".hit-location")!.textContent).toBe("src/config.rs:10-12");
    expect(el.querySelector(".hit-repo")!.textContent).toBe("quarry");
    expect(el.querySelector(".hit-lang")!.textContent).toBe("rust");
    expect(el.querySelector(".hit-score")!.textContent).toBe("0.88");
    expect(Array.from(el.querySelectorAll(".hit-code .ln")).map((n) => n.textContent)).toEqual(["10", "11", "12"]);
    expect(el.querySelector(".hit-code .tok-keyword")!.textContent).toBe("fn");
    expect(el.querySelector(".hit-code .tok-comment")!.textContent).toBe("// read it");
    expect(el.querySelector(".hit-code mark")!.textContent).toBe("parse_config");
    for (const sel of ["button.hit-expand", "button.hit-open", "button.hit-copy"]) expect(el.querySelector(sel)).not.toBeNull();
  });

  it("labels the pasted snippet itself and chunks containing it, nothing else", () => {
    const own = renderHit(makeHit({ snippet_match: "exact" }), new TermMatcher([]));
    expect(own.querySelector(".hit-snippet")!.textContent).toBe("your snippet");
    const around = renderHit(makeHit({ snippet_match: "contains" }), new TermMatcher([]));
    expect(around.querySelector(".hit-snippet")!.textContent).toBe("contains your snippet");
    expect(renderHit(makeHit(), new TermMatcher([])).querySelector(".hit-snippet")).toBeNull();
  });

  it("token classes are sanitised and keep the base class", () => {
    expect(tokenClasses("keyword")).toBe("tok-keyword");
    expect(tokenClasses("function.builtin")).toBe("tok-function tok-function-builtin");
    expect(tokenClasses("a b\"<x>")).toBe("tok-a-b-x");
    expect(tokenClasses(null)).toBe("");
  });

  it("long chunks collapse to 30 lines with Show all N lines", () => {
    const lines = Array.from({ length: 45 }, (_, i) => line(`let v${i} = ${i};`));
    const el = renderHit(makeHit({ start_line: 100, end_line: 144, lines }), new TermMatcher([]));
    const rows = () => el.querySelectorAll(".hit-code .code-line");
    expect(rows()).toHaveLength(COLLAPSED_LINES);
    const more = el.querySelector<HTMLButtonElement>(".hit-more")!;
    expect(more.textContent).toBe("Show all 45 lines");
    more.click();
    expect(rows()).toHaveLength(45);
    expect(rows()[44].querySelector(".ln")!.textContent).toBe("144");
    expect(more.textContent).toBe("Show fewer lines");
    more.click();
    expect(rows()).toHaveLength(30);
  });

  it("short chunks have no toggle", () => {
    const el = renderHit(makeHit(), new TermMatcher([]));
    expect(el.querySelector(".hit-more")).toBeNull();
  });
});

describe("preview", () => {
  it("emphasises the hit's own lines and numbers from first_line", () => {
    const hit = makeHit({ start_line: 10, end_line: 12 });
    const lines = Array.from({ length: 23 }, (_, i) => line(`line ${i}`));
    const onCollapse = vi.fn();
    const el = renderPreview({ first_line: 1, lines, total_lines: 80 }, hit, new TermMatcher([]), { onCollapse });
    expect(el.classList.contains("hit-preview")).toBe(true);
    const emphasised = Array.from(el.querySelectorAll(".code-line.in-hit")).map((r) => r.querySelector(".ln")!.textContent);
    expect(emphasised).toEqual(["10", "11", "12"]);
    expect(el.querySelector(".in-hit-first .ln")!.textContent).toBe("10");
    expect(el.querySelector(".in-hit-last .ln")!.textContent).toBe("12");
    expect(el.querySelector(".code-line .ln")!.textContent).toBe("1");
    expect(el.textContent).toContain("Lines 1–23 of 80");
    el.querySelector<HTMLButtonElement>(".hit-preview-close")!.click();
    expect(onCollapse).toHaveBeenCalled();
  });
});

describe("repository", () => {
  it("up to date: counts, last indexed, Re-index and Remove", () => {
    const v = new RepoView(makeRepo({ last_indexed: NOW / 1000 - 5 * 60 }), handlers(), NOW);
    expect(v.el.dataset.root).toBe("/home/me/src/quarry");
    expect(v.el.dataset.state).toBe("up_to_date");
    const badge = v.el.querySelector(".repo-state")!;
    expect(badge.textContent).toBe("Up to date");
    expect(badge.getAttribute("data-state")).toBe("up_to_date");
    expect(v.el.querySelector(".repo-meta")!.textContent).toBe("1,234 files · 5,678 chunks · indexed 5 min ago");
    expect(v.el.title).toBe("/home/me/src/quarry");
    expect(visible(v.el.querySelector(".repo-progress"))).toBe(false);
    expect(visible(v.el.querySelector(".repo-reindex"))).toBe(true);
    expect(visible(v.el.querySelector(".repo-cancel"))).toBe(false);
  });

  it("indexing: progress bar, phase text with ETA, Cancel", () => {
    const v = new RepoView(
      makeRepo({
        state: "indexing",
        progress: { phase: "embedding", files_done: 10, files_total: 10, chunks_done: 1234, chunks_total: 5000, eta_seconds: 130 },
      }),
      handlers(),
      NOW,
    );
    expect(v.el.querySelector(".repo-state")!.textContent).toBe("Indexing");
    expect(visible(v.el.querySelector(".repo-progress"))).toBe(true);
    expect(v.el.querySelector(".repo-phase")!.textContent).toBe("Embedding 1,234 / 5,000 chunks · ETA 2 min");
    expect(v.el.querySelector<HTMLElement>(".progress-fill")!.style.width).toBe("24.7%");
    expect(visible(v.el.querySelector(".repo-cancel"))).toBe(true);
    expect(visible(v.el.querySelector(".repo-reindex"))).toBe(false);
    expect(v.el.querySelector(".repo-meta")!.textContent).toContain("not indexed yet");
  });

  it("queued and error states", () => {
    const v = new RepoView(makeRepo({ state: "queued" }), handlers(), NOW);
    expect(v.el.querySelector(".repo-state")!.textContent).toBe("Queued");
    expect(v.el.querySelector(".progress")!.classList.contains("indeterminate")).toBe(true);
    v.update(makeRepo({ state: "error", error: { message: "Permission denied", hint: "Check the folder's permissions" } }), NOW);
    expect(v.el.dataset.state).toBe("error");
    expect(v.el.querySelector(".repo-state")!.textContent).toBe("Error");
    expect(v.el.querySelector(".repo-error")!.textContent).toBe("Permission deniedCheck the folder's permissions");
    expect(visible(v.el.querySelector(".repo-progress"))).toBe(false);
  });

  it("updates in place", () => {
    const v = new RepoView(makeRepo({ state: "queued" }), handlers(), NOW);
    const badge = v.el.querySelector(".repo-state");
    v.update(makeRepo({ state: "up_to_date", files: 2 }), NOW);
    expect(v.el.querySelector(".repo-state")).toBe(badge);
    expect(v.el.querySelector(".repo-meta")!.textContent).toMatch(/^2 files/);
  });

  it("Remove asks first; Keep backs out", async () => {
    const h = handlers();
    const v = new RepoView(makeRepo(), h, NOW);
    document.body.appendChild(v.el);
    v.el.querySelector<HTMLButtonElement>(".repo-remove")!.click();
    expect(h.remove).not.toHaveBeenCalled();
    expect(visible(v.el.querySelector(".repo-confirm"))).toBe(true);
    v.el.querySelector<HTMLButtonElement>(".repo-remove-keep")!.click();
    expect(visible(v.el.querySelector(".repo-confirm"))).toBe(false);
    v.el.querySelector<HTMLButtonElement>(".repo-remove")!.click();
    v.el.querySelector<HTMLButtonElement>(".repo-remove-confirm")!.click();
    await flush();
    expect(h.remove).toHaveBeenCalledWith("/home/me/src/quarry");
    v.el.remove();
  });

  it("action errors show inline", async () => {
    const h = handlers();
    h.reindex.mockRejectedValueOnce({ message: "Folder is gone", hint: "Remove it or restore the folder" });
    const v = new RepoView(makeRepo(), h, NOW);
    v.el.querySelector<HTMLButtonElement>(".repo-reindex")!.click();
    await flush();
    const err = v.el.querySelector<HTMLElement>(".repo-action-error")!;
    expect(err.hidden).toBe(false);
    expect(err.textContent).toContain("Folder is gone");
  });
});

describe("model banner", () => {
  const base = { model: "all-MiniLM-L6-v2", done: 0, total: null, source: null, device: null, error: null };
  it("shows download progress, hides when ready, shows errors with hints", () => {
    const b = new ModelBanner();
    b.update({ ...base, phase: "downloading", done: 45_000_000, total: 90_000_000, source: "the Hugging Face Hub" });
    expect(b.el.id).toBe("model-banner");
    expect(b.el.hidden).toBe(false);
    expect(b.el.querySelector(".model-text")!.textContent).toBe(
      "Downloading the search model all-MiniLM-L6-v2 from the Hugging Face Hub: 45 MB / 90 MB",
    );
    expect(b.el.querySelector<HTMLElement>(".progress-fill")!.style.width).toBe("50%");
    b.update({ ...base, phase: "ready" });
    expect(b.el.hidden).toBe(true);
    b.update({ ...base, phase: "error", error: { message: "Download failed", hint: "Check the network" } });
    expect(b.el.hidden).toBe(false);
    expect(b.el.textContent).toContain("Download failed");
    expect(b.el.querySelector(".model-hint")!.textContent).toBe("Check the network");
  });
});
