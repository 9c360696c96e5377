import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Mode, SearchRequest, SearchResponse } from "../src/api";
import { isLiveQuery, parseGlobs, SearchController } from "../src/search";
import { deferred, flush, makeResponse } from "./fixtures";

function setup() {
  const pending: { request: SearchRequest; d: ReturnType<typeof deferred<SearchResponse>> }[] = [];
  const search = vi.fn((request: SearchRequest) => {
    const d = deferred<SearchResponse>();
    pending.push({ request, d });
    return d.promise;
  });
  const detectMode = vi.fn(async (q: string): Promise<Mode> => (q.includes("\n") || q.includes("(") ? "code" : "text"));
  const onResults = vi.fn();
  const onError = vi.fn();
  const onCleared = vi.fn();
  const onDetected = vi.fn();
  const onWaiting = vi.fn();
  const c = new SearchController({ search, detectMode }, { onResults, onError, onCleared, onDetected, onWaiting });
  return { c, search, detectMode, pending, onResults, onError, onCleared, onDetected, onWaiting };
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe("when to search", () => {
  it("live queries: single line under 200 characters", () => {
    expect(isLiveQuery("parse config")).toBe(true);
    expect(isLiveQuery("a\nb")).toBe(false);
    expect(isLiveQuery("x".repeat(200))).toBe(false);
  });

  it("debounces typing: one search 250 ms after the last key", async () => {
    const t = setup();
    t.c.setQuery("p");
    vi.advanceTimersByTime(100);
    t.c.setQuery("pa");
    vi.advanceTimersByTime(100);
    t.c.setQuery("parse");
    vi.advanceTimersByTime(249);
    expect(t.search).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(t.search).toHaveBeenCalledTimes(1);
    expect(t.search.mock.calls[0][0]).toEqual({
      query: "parse",
      mode: "auto",
      top_k: 20,
      repos: [],
      languages: [],
      path_globs: [],
    });
  });

  it("pastes wait for submit", async () => {
    const t = setup();
    t.c.setQuery("fn a() {\n  b()\n}");
    vi.advanceTimersByTime(1000);
    expect(t.search).not.toHaveBeenCalled();
    expect(t.onWaiting).toHaveBeenLastCalledWith(true);
    t.c.submit();
    expect(t.search).toHaveBeenCalledTimes(1);
    expect(t.onWaiting).toHaveBeenLastCalledWith(false);
  });

  it("submit searches at once and cancels the pending debounce", () => {
    const t = setup();
    t.c.setQuery("retry");
    t.c.submit();
    vi.advanceTimersByTime(500);
    expect(t.search).toHaveBeenCalledTimes(1);
  });
});

describe("stale answers", () => {
  it("an older request finishing after a newer one is dropped", async () => {
    const t = setup();
    t.c.setQuery("retr");
    vi.advanceTimersByTime(250);
    t.c.setQuery("retry");
    vi.advanceTimersByTime(250);
    expect(t.pending).toHaveLength(2);
    const older = makeResponse({ took_ms: 1 });
    const newer = makeResponse({ took_ms: 2 });
    t.pending[1].d.resolve(newer);
    await flush();
    t.pending[0].d.resolve(older);
    await flush();
    expect(t.onResults).toHaveBeenCalledTimes(1);
    expect(t.onResults.mock.calls[0][0]).toBe(newer);
  });

  it("a stale failure is dropped too", async () => {
    const t = setup();
    t.c.setQuery("a");
    t.c.submit();
    t.c.setQuery("ab");
    t.c.submit();
    t.pending[0].d.reject({ message: "old", hint: null });
    t.pending[1].d.resolve(makeResponse());
    await flush();
    expect(t.onError).not.toHaveBeenCalled();
    expect(t.onResults).toHaveBeenCalledTimes(1);
  });

  it("clearing the query drops the search in flight", async () => {
    const t = setup();
    t.c.setQuery("abc");
    t.c.submit();
    t.c.setQuery("");
    expect(t.onCleared).toHaveBeenCalled();
    t.pending[0].d.resolve(makeResponse());
    await flush();
    expect(t.onResults).not.toHaveBeenCalled();
  });

  it("the newest failure is reported", async () => {
    const t = setup();
    t.c.setQuery("abc");
    t.c.submit();
    t.pending[0].d.reject({ message: "Index is locked", hint: "Close the other Quarry" });
    await flush();
    expect(t.onError).toHaveBeenCalledWith({ message: "Index is locked", hint: "Close the other Quarry" }, expect.anything());
  });
});

describe("mode", () => {
  it("auto detects after 150 ms and reports the detected mode", async () => {
    const t = setup();
    t.c.setQuery("foo(bar)");
    vi.advanceTimersByTime(149);
    expect(t.detectMode).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    await flush();
    expect(t.detectMode).toHaveBeenCalledWith("foo(bar)");
    expect(t.onDetected).toHaveBeenLastCalledWith("code");
    expect(t.c.detected).toBe("code");
  });

  it("the response's mode updates the detection in Auto", async () => {
    const t = setup();
    t.c.setQuery("stack trace");
    t.c.submit();
    t.pending[0].d.resolve(makeResponse({ mode: "issue" }));
    await flush();
    expect(t.onDetected).toHaveBeenLastCalledWith("issue");
  });

  it("an override sends the mode, skips detection and re-runs the search", async () => {
    const t = setup();
    t.c.setQuery("parse");
    vi.advanceTimersByTime(300);
    expect(t.search).toHaveBeenCalledTimes(1);
    t.c.setMode("code");
    expect(t.onDetected).toHaveBeenLastCalledWith(null);
    expect(t.search).toHaveBeenCalledTimes(2);
    expect(t.search.mock.calls[1][0].mode).toBe("code");
    t.detectMode.mockClear();
    t.c.setQuery("parse it");
    vi.advanceTimersByTime(300);
    expect(t.detectMode).not.toHaveBeenCalled();
    // Back to Auto: detection runs again.
    t.c.setMode("auto");
    vi.advanceTimersByTime(1);
    await flush();
    expect(t.detectMode).toHaveBeenCalledWith("parse it");
    expect(t.search.mock.calls.slice(-1)[0]![0].mode).toBe("auto");
  });

  it("a detection that finishes after the query changed is dropped", async () => {
    const t = setup();
    const d = deferred<Mode>();
    t.detectMode.mockImplementationOnce(() => d.promise);
    t.c.setQuery("abc");
    vi.advanceTimersByTime(150);
    t.c.setQuery("abc(");
    d.resolve("issue");
    await flush();
    expect(t.onDetected).not.toHaveBeenCalledWith("issue");
  });
});

describe("filters", () => {
  it("feed the request and re-run the search", () => {
    const t = setup();
    t.c.setQuery("parse");
    vi.advanceTimersByTime(250);
    t.c.setFilters({ repos: ["/r"], languages: ["rust"], path_globs: ["src/**"] });
    expect(t.search).toHaveBeenCalledTimes(2);
    expect(t.search.mock.calls[1][0]).toMatchObject({ repos: ["/r"], languages: ["rust"], path_globs: ["src/**"] });
  });

  it("do not search an unsubmitted paste", () => {
    const t = setup();
    t.c.setQuery("a\nb");
    t.c.setFilters({ repos: ["/r"], languages: [], path_globs: [] });
    expect(t.search).not.toHaveBeenCalled();
  });

  it("globs split on commas and spaces", () => {
    expect(parseGlobs(" src/**, *.rs  tests/* ")).toEqual(["src/**", "*.rs", "tests/*"]);
    expect(parseGlobs("")).toEqual([]);
  });
});
