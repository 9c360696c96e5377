// Numbers, sizes, times and progress as words. Pure functions, no DOM.

import type { Mode, ModelState, Progress, RepoState } from "./api";

const intFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

/** 1234 -> "1,234". */
export function formatCount(n: number): string {
  return intFormat.format(Math.round(n));
}

/** "1 file", "2 files". */
export function plural(n: number, one: string, many = one + "s"): string {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

/** Decimal units, as downloads are usually shown: 45_000_000 -> "45 MB",
 * 1_500_000 -> "1.5 MB", 999 -> "999 B". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "0 B";
  if (bytes < 1000) return `${Math.round(bytes)} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  // 999.96 KB would round to "1000 KB": move up a unit instead.
  if (value >= 999.5 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  const text = value >= 10 ? String(Math.round(value)) : value.toFixed(1).replace(/\.0$/, "");
  return `${text} ${units[unit]}`;
}

/** How long ago a Unix time (seconds) was, relative to `nowMs`:
 * "just now", "5 min ago", "3 h ago", "yesterday", "4 days ago", then a date. */
export function formatRelativeTime(unixSeconds: number, nowMs: number = Date.now()): string {
  const seconds = Math.floor(nowMs / 1000 - unixSeconds);
  if (seconds < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(seconds / 3600);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.round(seconds / 86400);
  if (days === 1) return "yesterday";
  if (days < 30) return `${days} days ago`;
  const date = new Date(unixSeconds * 1000);
  return date.toISOString().slice(0, 10);
}

/** Remaining time: "ETA 45 s", "ETA 2 min", "ETA 1 h 5 min". */
export function formatEta(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `ETA ${s} s`;
  const minutes = Math.round(s / 60);
  if (minutes < 60) return `ETA ${minutes} min`;
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return m === 0 ? `ETA ${h} h` : `ETA ${h} h ${m} min`;
}

export const STATE_LABELS: Record<RepoState, string> = {
  queued: "Queued",
  indexing: "Indexing",
  up_to_date: "Up to date",
  error: "Error",
};

export const MODE_LABELS: Record<Mode, string> = {
  auto: "Auto",
  text: "Describe behaviour",
  code: "Paste code",
  issue: "Paste issue",
};

function fraction(done: number, total: number): string {
  return `${formatCount(done)} / ${formatCount(total)}`;
}

/** One line telling what an indexing run is doing, e.g.
 * "Embedding 1,234 / 5,000 chunks · ETA 2 min". */
export function formatProgress(p: Progress): string {
  let text: string;
  switch (p.phase) {
    case "queued":
      text = "Waiting for another repository to finish";
      break;
    case "scanning":
      text = p.files_total > 0 ? `Scanning ${fraction(p.files_done, p.files_total)} files` : "Scanning files";
      if (p.files_total === 0 && p.files_done > 0) text += ` · ${formatCount(p.files_done)} found`;
      break;
    case "chunking":
      text = p.files_total > 0 ? `Reading ${fraction(p.files_done, p.files_total)} files` : "Reading files";
      break;
    case "searchable":
      text = "Searchable by words · embedding next";
      break;
    case "embedding":
      text = p.chunks_total > 0 ? `Embedding ${fraction(p.chunks_done, p.chunks_total)} chunks` : "Embedding chunks";
      break;
    case "optimizing":
      text = "Optimizing the index";
      break;
    default:
      text = p.phase ? p.phase[0].toUpperCase() + p.phase.slice(1) : "Working";
  }
  if (p.eta_seconds != null && p.phase !== "queued") text += ` · ${formatEta(p.eta_seconds)}`;
  return text;
}

/** 0..1 when the phase has a measurable size, null when it has none
 * (shown as an indeterminate bar). */
export function progressFraction(p: Progress): number | null {
  if (p.phase === "embedding" && p.chunks_total > 0) return clamp01(p.chunks_done / p.chunks_total);
  if ((p.phase === "scanning" || p.phase === "chunking") && p.files_total > 0) {
    return clamp01(p.files_done / p.files_total);
  }
  return null;
}

function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0;
}

/** The model banner's line, or null when there is nothing to say (ready). */
export function formatModelState(m: ModelState): string | null {
  const name = m.model || "the search model";
  switch (m.phase) {
    case "checking":
      return `Checking the search model ${name}…`;
    case "downloading": {
      const from = m.source ? ` from ${m.source}` : "";
      const amount = m.total ? `${formatBytes(m.done)} / ${formatBytes(m.total)}` : formatBytes(m.done);
      return `Downloading the search model ${name}${from}: ${amount}`;
    }
    case "verifying":
      return `Verifying the search model ${name}…`;
    case "loading":
      return `Loading the search model ${name}${m.device ? ` on ${m.device}` : ""}…`;
    case "error":
      return m.error?.message ?? `The search model ${name} could not be loaded`;
    default:
      return null;
  }
}

export function modelFraction(m: ModelState): number | null {
  if (m.phase === "downloading" && m.total) return clamp01(m.done / m.total);
  return null;
}

/** `<root>/<path>:<line>`, the form editors and terminals understand. */
export function pathLine(root: string, path: string, line: number): string {
  return `${joinPath(root, path)}:${line}`;
}

export function joinPath(root: string, path: string): string {
  if (!root) return path;
  return `${root.replace(/[\\/]+$/, "")}/${path.replace(/^[\\/]+/, "")}`;
}

/** Bytes as a whole number of KB or MB (1 KB = 1024 bytes) for the settings
 * form: MB when it divides evenly, else KB. */
export function sizeToUnit(bytes: number): { value: number; unit: "KB" | "MB" } {
  const mb = 1024 * 1024;
  if (bytes >= mb && bytes % mb === 0) return { value: bytes / mb, unit: "MB" };
  return { value: Math.round((bytes / 1024) * 100) / 100, unit: "KB" };
}

export function unitToSize(value: number, unit: "KB" | "MB"): number {
  return Math.round(value * (unit === "MB" ? 1024 * 1024 : 1024));
}
