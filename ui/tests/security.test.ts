// Indexed code is untrusted: it must only ever reach the DOM as text.

import { describe, expect, it } from "vitest";
import { TermMatcher } from "../src/highlight-marks";
import { RepoView, renderHit, renderPreview, StartupProblems } from "../src/render";
import { makeHit, makeRepo, tok } from "./fixtures";

/** Every source file under src/, as text (Vite reads them at test time). */
const SOURCES: Record<string, string> = import.meta.glob("../src/**/*.{ts,js,mjs,html,css}", {
  query: "?raw",
  import: "default",
  eager: true,
});

/** APIs that parse strings as markup or code. */
const FORBIDDEN: [string, RegExp][] = [
  ["innerHTML", /\binnerHTML\b/],
  ["outerHTML", /\bouterHTML\b/],
  ["insertAdjacentHTML", /\binsertAdjacentHTML\b/],
  ["document.write", /\bdocument\s*\.\s*write(ln)?\b/],
  ["createContextualFragment", /\bcreateContextualFragment\b/],
  ["DOMParser", /\bDOMParser\b/],
  ["srcdoc", /\bsrcdoc\b/],
  ["eval", /(^|[^\w.])eval\s*\(/],
  ["new Function", /\bnew\s+Function\s*\(/],
];

export function findForbidden(text: string): string[] {
  return FORBIDDEN.filter(([, re]) => re.test(text)).map(([name]) => name);
}

const EVIL = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "</code>"];

function evilHit() {
  return makeHit({
    symbol: "<img src=x onerror=alert(2)>",
    path: "src/<script>alert(3)</script>.rs",
    repo: "<b>repo</b>",
    lines: [
      [tok("let", "keyword"), tok(" s = "), tok(`"${EVIL[0]}"`, "string"), tok(";", "punctuation")],
      [tok(`// ${EVIL[1]}`, "comment")],
      [tok(EVIL[2])],
      [tok("x", "<img src=x onerror=alert(4)>")],
    ],
  });
}

describe("no markup-parsing APIs in src/", () => {
  it("finds the source files", () => {
    const files = Object.keys(SOURCES);
    expect(files.length).toBeGreaterThan(5);
    for (const f of ["../src/render.ts", "../src/app.ts", "../src/api.ts", "../src/main.ts"]) expect(files).toContain(f);
  });

  it("the scanner catches each API", () => {
    expect(findForbidden("el.innerHTML = x")).toEqual(["innerHTML"]);
    expect(findForbidden("el.outerHTML")).toEqual(["outerHTML"]);
    expect(findForbidden("el.insertAdjacentHTML('beforeend', x)")).toEqual(["insertAdjacentHTML"]);
    expect(findForbidden("document.write(x)")).toEqual(["document.write"]);
    expect(findForbidden("eval(x)")).toEqual(["eval"]);
    expect(findForbidden("el.textContent = x")).toEqual([]);
  });

  it("no file in src/ uses them", () => {
    const offenders = Object.entries(SOURCES)
      .map(([file, text]) => ({ file, found: findForbidden(text) }))
      .filter((f) => f.found.length > 0);
    expect(offenders).toEqual([]);
  });
});

describe("untrusted code renders as text", () => {
  it("a hit's code, symbol and path appear literally and create no elements", () => {
    document.body.textContent = "";
    const el = renderHit(evilHit(), new TermMatcher(["alert"]));
    document.body.appendChild(el);
    const text = el.querySelector(".hit-code")!.textContent!;
    for (const s of EVIL) expect(text).toContain(s);
    expect(el.querySelector(".hit-symbol")!.textContent).toBe("<img src=x onerror=alert(2)>");
    expect(el.querySelector(".hit-location")!.textContent).toContain("<script>alert(3)</script>");
    expect(el.getAttribute("data-symbol")).toBe("<img src=x onerror=alert(2)>");
    expect(document.querySelectorAll("script, img, b, code").length).toBe(0);
    // The bogus token class became a harmless class name.
    const odd = Array.from(el.querySelectorAll(".hit-code .lc span")).find((s) => s.textContent === "x")!;
    expect(odd.className).toMatch(/^tok-[a-z0-9-]+$/);
    expect(el.querySelectorAll("[onerror]").length).toBe(0);
    // Marks still work on the text.
    expect(Array.from(el.querySelectorAll("mark")).map((m) => m.textContent)).toContain("alert");
  });

  it("a preview of the same code is text too", () => {
    document.body.textContent = "";
    const hit = evilHit();
    const node = renderPreview({ first_line: 8, lines: hit.lines, total_lines: 40 }, hit, new TermMatcher([]), { onCollapse: () => {} });
    document.body.appendChild(node);
    for (const s of EVIL) expect(node.textContent).toContain(s);
    expect(document.querySelectorAll("script, img").length).toBe(0);
  });

  it("repository names, paths and errors are text", () => {
    document.body.textContent = "";
    const view = new RepoView(
      makeRepo({
        name: "<script>alert(1)</script>",
        root: "/tmp/<img src=x onerror=alert(1)>",
        state: "error",
        error: { message: "<img src=x onerror=alert(5)>", hint: "</code><script>x()</script>" },
      }),
      { reindex: async () => {}, cancel: async () => {}, remove: async () => {} },
    );
    document.body.appendChild(view.el);
    expect(view.el.querySelector(".repo-name")!.textContent).toBe("<script>alert(1)</script>");
    expect(view.el.textContent).toContain("<img src=x onerror=alert(5)>");
    expect(view.el.getAttribute("data-root")).toBe("/tmp/<img src=x onerror=alert(1)>");
    expect(document.querySelectorAll("script, img, code").length).toBe(0);
  });

  it("start-up problems are text", () => {
    document.body.textContent = "";
    const notice = new StartupProblems();
    notice.update([{ message: "<img src=x onerror=alert(6)>", hint: "<script>alert(7)</script>" }]);
    document.body.appendChild(notice.el);
    expect(notice.el.querySelector(".problem-message")!.textContent).toBe("<img src=x onerror=alert(6)>");
    expect(notice.el.querySelector(".problem-hint")!.textContent).toBe("<script>alert(7)</script>");
    expect(document.querySelectorAll("script, img").length).toBe(0);
  });
});
