import { describe, expect, it } from "vitest";
import type { Progress } from "../src/api";
import {
  formatBytes,
  formatCount,
  formatEta,
  formatModelState,
  formatProgress,
  formatRelativeTime,
  pathLine,
  progressFraction,
  sizeToUnit,
  unitToSize,
} from "../src/format";

const NOW = Date.UTC(2025, 0, 15, 12, 0, 0);
const nowSec = NOW / 1000;

function progress(over: Partial<Progress>): Progress {
  return { phase: "embedding", files_done: 0, files_total: 0, chunks_done: 0, chunks_total: 0, eta_seconds: null, ...over };
}

describe("relative time", () => {
  it("reads naturally", () => {
    expect(formatRelativeTime(nowSec - 5, NOW)).toBe("just now");
    expect(formatRelativeTime(nowSec - 60, NOW)).toBe("1 min ago");
    expect(formatRelativeTime(nowSec - 14 * 60, NOW)).toBe("14 min ago");
    expect(formatRelativeTime(nowSec - 3 * 3600, NOW)).toBe("3 h ago");
    expect(formatRelativeTime(nowSec - 26 * 3600, NOW)).toBe("yesterday");
    expect(formatRelativeTime(nowSec - 5 * 86400, NOW)).toBe("5 days ago");
    expect(formatRelativeTime(nowSec - 90 * 86400, NOW)).toBe("2024-10-17");
  });

  it("a clock slightly ahead is still just now", () => {
    expect(formatRelativeTime(nowSec + 30, NOW)).toBe("just now");
  });
});

describe("bytes", () => {
  it("uses decimal units", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(999)).toBe("999 B");
    expect(formatBytes(1500)).toBe("1.5 KB");
    expect(formatBytes(45_000_000)).toBe("45 MB");
    expect(formatBytes(90_868_376)).toBe("91 MB");
    expect(formatBytes(1_200_000_000)).toBe("1.2 GB");
    expect(formatBytes(999_960)).toBe("1 MB");
  });

  it("settings sizes in KB or MB", () => {
    expect(sizeToUnit(1048576)).toEqual({ value: 1, unit: "MB" });
    expect(sizeToUnit(512 * 1024)).toEqual({ value: 512, unit: "KB" });
    expect(unitToSize(2, "MB")).toBe(2097152);
    expect(unitToSize(100, "KB")).toBe(102400);
  });
});

describe("counts, ETA and progress", () => {
  it("formats counts with separators", () => {
    expect(formatCount(1234567)).toBe("1,234,567");
  });

  it("ETA", () => {
    expect(formatEta(42)).toBe("ETA 42 s");
    expect(formatEta(125)).toBe("ETA 2 min");
    expect(formatEta(3600 + 5 * 60)).toBe("ETA 1 h 5 min");
    expect(formatEta(7200)).toBe("ETA 2 h");
  });

  it("phase text", () => {
    expect(formatProgress(progress({ chunks_done: 1234, chunks_total: 5000, eta_seconds: 120 }))).toBe(
      "Embedding 1,234 / 5,000 chunks · ETA 2 min",
    );
    expect(formatProgress(progress({ phase: "scanning", files_done: 10, files_total: 200 }))).toBe("Scanning 10 / 200 files");
    expect(formatProgress(progress({ phase: "chunking", files_done: 3, files_total: 9 }))).toBe("Reading 3 / 9 files");
    expect(formatProgress(progress({ phase: "optimizing" }))).toBe("Optimizing the index");
  });

  it("fraction per phase, indeterminate when unknown", () => {
    expect(progressFraction(progress({ chunks_done: 25, chunks_total: 100 }))).toBe(0.25);
    expect(progressFraction(progress({ phase: "scanning", files_done: 1, files_total: 4 }))).toBe(0.25);
    expect(progressFraction(progress({ phase: "optimizing" }))).toBeNull();
    expect(progressFraction(progress({ chunks_total: 0 }))).toBeNull();
  });
});

describe("model state", () => {
  const base = { model: "all-MiniLM-L6-v2", done: 0, total: null, source: null, device: null, error: null };
  it("tells what is happening", () => {
    expect(
      formatModelState({ ...base, phase: "downloading", done: 45_000_000, total: 90_000_000, source: "the Hugging Face Hub" }),
    ).toBe("Downloading the search model all-MiniLM-L6-v2 from the Hugging Face Hub: 45 MB / 90 MB");
    expect(formatModelState({ ...base, phase: "loading", device: "candle cpu" })).toBe(
      "Loading the search model all-MiniLM-L6-v2 on candle cpu…",
    );
    expect(formatModelState({ ...base, phase: "error", error: { message: "No network", hint: "Connect" } })).toBe("No network");
    expect(formatModelState({ ...base, phase: "ready" })).toBeNull();
  });
});

describe("paths", () => {
  it("root/path:line", () => {
    expect(pathLine("/home/me/q", "src/a.rs", 10)).toBe("/home/me/q/src/a.rs:10");
    expect(pathLine("/home/me/q/", "src/a.rs", 1)).toBe("/home/me/q/src/a.rs:1");
  });
});
