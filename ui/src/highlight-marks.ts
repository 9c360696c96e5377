// Which parts of a code token to mark as matching the query.
//
// The rule (tested in tests/highlight-marks.test.ts):
//  1. A token whose whole text equals a term, ignoring case, is marked whole.
//  2. Otherwise each word inside the token (a run of letters, digits, `_` and
//     `$` starting with a letter, `_` or `$`) is marked when
//     a. it equals a term, ignoring case, or
//     b. the term's identifier parts appear, in order and next to each other,
//        among the word's identifier parts. Parts come from splitting on `_`,
//        `$`, `-` and camelCase/PascalCase boundaries, ignoring case.
//     So "parse" marks `parse_config`, `parseConfig` and `ConfigParse` but not
//     `parser` or `sparse`; "config_path" marks `loadConfigPath`; "HTTP"
//     marks `HTTPServer`.
//  Terms shorter than 2 characters only match a whole token or word
//  (otherwise "a" would mark every `a_b`).

export interface Segment {
  text: string;
  mark: boolean;
}

const WORD = /[\p{L}_$][\p{L}\p{N}_$]*/gu;
const PART = /\p{Lu}+(?=\p{Lu}\p{Ll})|\p{Lu}?\p{Ll}+|\p{Lu}+|\p{N}+|[\p{L}]+/gu;

/** Splits an identifier into lower-cased parts:
 * "parseHTTPResponse_v2" -> ["parse", "http", "response", "v", "2"]. */
export function identifierParts(word: string): string[] {
  const parts: string[] = [];
  for (const piece of word.split(/[_$\-\s.:]+/)) {
    if (!piece) continue;
    for (const m of piece.matchAll(PART)) parts.push(m[0].toLowerCase());
  }
  return parts;
}

function containsRun(haystack: string[], needle: string[]): boolean {
  if (needle.length === 0 || needle.length > haystack.length) return false;
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return true;
  }
  return false;
}

export class TermMatcher {
  private readonly exact: Set<string>;
  private readonly partTerms: string[][];
  private readonly cache = new Map<string, boolean>();

  constructor(terms: readonly string[]) {
    const cleaned = terms.map((t) => t.trim()).filter((t) => t.length > 0);
    this.exact = new Set(cleaned.map((t) => t.toLowerCase()));
    this.partTerms = cleaned
      .filter((t) => t.length >= 2)
      .map(identifierParts)
      .filter((p) => p.length > 0);
  }

  get empty(): boolean {
    return this.exact.size === 0;
  }

  /** Whether one identifier-like word matches a term (rule 2). */
  matchesWord(word: string): boolean {
    const key = word.toLowerCase();
    const known = this.cache.get(key);
    if (known !== undefined) return known;
    let hit = this.exact.has(key);
    if (!hit && this.partTerms.length > 0) {
      const parts = identifierParts(word);
      hit = this.partTerms.some((t) => containsRun(parts, t));
    }
    this.cache.set(key, hit);
    return hit;
  }

  /** Splits a token's text into marked and unmarked segments. Joined, the
   * segments' texts equal `text` exactly. */
  segments(text: string): Segment[] {
    if (this.empty || text.length === 0) return [{ text, mark: false }];
    const trimmed = text.trim();
    if (trimmed && this.exact.has(trimmed.toLowerCase())) {
      if (trimmed === text) return [{ text, mark: true }];
      const start = text.indexOf(trimmed);
      return compact([
        { text: text.slice(0, start), mark: false },
        { text: trimmed, mark: true },
        { text: text.slice(start + trimmed.length), mark: false },
      ]);
    }
    const out: Segment[] = [];
    let last = 0;
    for (const m of text.matchAll(WORD)) {
      const start = m.index ?? 0;
      if (!this.matchesWord(m[0])) continue;
      if (start > last) out.push({ text: text.slice(last, start), mark: false });
      out.push({ text: m[0], mark: true });
      last = start + m[0].length;
    }
    if (last < text.length) out.push({ text: text.slice(last), mark: false });
    return out.length > 0 ? out : [{ text, mark: false }];
  }
}

function compact(segments: Segment[]): Segment[] {
  return segments.filter((s) => s.text.length > 0);
}
