import { describe, expect, it, vi } from "vitest";
import type { IndexEvent } from "../src/api";
import { applyIndexEvent, Sidebar } from "../src/sidebar";
import { flush, makeRepo } from "./fixtures";

const NOW = Date.UTC(2025, 0, 15, 12, 0, 0);
const ev = (over: Partial<IndexEvent>): IndexEvent => ({ root: "/home/me/src/quarry", phase: "scanning", progress: null, error: null, ...over });

describe("index events", () => {
  it("map phases to repository states", () => {
    const repo = makeRepo({ last_indexed: 1 });
    expect(applyIndexEvent(repo, ev({ phase: "queued" })).state).toBe("queued");
    const scanning = applyIndexEvent(repo, ev({ phase: "scanning" }));
    expect(scanning.state).toBe("indexing");
    expect(scanning.progress!.phase).toBe("scanning");
    const done = applyIndexEvent(
      repo,
      ev({ phase: "done", progress: { phase: "done", files_done: 9, files_total: 9, chunks_done: 90, chunks_total: 90, eta_seconds: null } }),
      NOW,
    );
    expect(done).toMatchObject({ state: "up_to_date", progress: null, last_indexed: NOW / 1000, files: 9, chunks: 90 });
    expect(applyIndexEvent(repo, ev({ phase: "error", error: { message: "x", hint: null } }))).toMatchObject({
      state: "error",
      error: { message: "x", hint: null },
    });
    expect(applyIndexEvent(repo, ev({ phase: "cancelled" })).state).toBe("up_to_date");
    expect(applyIndexEvent(makeRepo({ last_indexed: null }), ev({ phase: "cancelled" })).state).toBe("error");
  });

  it("events for unknown repositories are ignored", () => {
    const s = new Sidebar({
      addRepository: vi.fn(),
      pickFolder: vi.fn(),
      reindex: vi.fn(),
      cancel: vi.fn(),
      remove: vi.fn(),
      openSettings: vi.fn(),
    });
    s.setRepositories([makeRepo()]);
    s.applyIndexEvent(ev({ root: "/elsewhere", phase: "embedding" }));
    expect(s.repos[0].state).toBe("up_to_date");
  });

  it("reorders and removes without recreating kept items", () => {
    const s = new Sidebar({
      addRepository: vi.fn(),
      pickFolder: vi.fn(),
      reindex: vi.fn(),
      cancel: vi.fn(),
      remove: vi.fn(),
      openSettings: vi.fn(),
    });
    s.setRepositories([makeRepo({ root: "/a", name: "a" }), makeRepo({ root: "/b", name: "b" }), makeRepo({ root: "/c", name: "c" })]);
    const b = s.view("/b")!.el;
    s.setRepositories([makeRepo({ root: "/c", name: "c" }), makeRepo({ root: "/b", name: "b" })]);
    const items = Array.from(s.el.querySelectorAll<HTMLElement>("li.repo"));
    expect(items.map((i) => i.dataset.root)).toEqual(["/c", "/b"]);
    expect(items[1]).toBe(b);
  });

  it("a cancelled folder dialog adds nothing; an empty path asks for one", async () => {
    const addRepository = vi.fn();
    const s = new Sidebar({
      addRepository,
      pickFolder: vi.fn(async () => null),
      reindex: vi.fn(),
      cancel: vi.fn(),
      remove: vi.fn(),
      openSettings: vi.fn(),
    });
    await s.browse();
    expect(addRepository).not.toHaveBeenCalled();
    s.pathInput.value = "   ";
    await s.addTyped();
    await flush();
    expect(addRepository).not.toHaveBeenCalled();
    expect(s.el.querySelector(".add-error")!.textContent).toContain("Type or paste");
  });
});
