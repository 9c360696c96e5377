import { describe, expect, it } from "vitest";
import { identifierParts, TermMatcher } from "../src/highlight-marks";
import { renderToken } from "../src/render";
import { tok } from "./fixtures";

function marked(terms: string[], text: string): string[] {
  return new TermMatcher(terms)
    .segments(text)
    .filter((s) => s.mark)
    .map((s) => s.text);
}

describe("identifierParts", () => {
  it("splits snake, camel, Pascal, acronyms and digits", () => {
    expect(identifierParts("parse_config")).toEqual(["parse", "config"]);
    expect(identifierParts("parseConfig")).toEqual(["parse", "config"]);
    expect(identifierParts("HTTPServer")).toEqual(["http", "server"]);
    expect(identifierParts("XMLHttpRequest")).toEqual(["xml", "http", "request"]);
    expect(identifierParts("read_v2")).toEqual(["read", "v", "2"]);
    expect(identifierParts("__init__")).toEqual(["init"]);
  });
});

describe("term marking rule", () => {
  it("marks a whole token equal to a term, ignoring case", () => {
    expect(marked(["Config"], "config")).toEqual(["config"]);
    expect(marked(["config"], "CONFIG")).toEqual(["CONFIG"]);
  });

  it("marks identifiers that contain the term as a whole part", () => {
    expect(marked(["parse"], "parse_config")).toEqual(["parse_config"]);
    expect(marked(["parse"], "parseConfig")).toEqual(["parseConfig"]);
    expect(marked(["parse"], "ConfigParse")).toEqual(["ConfigParse"]);
    expect(marked(["http"], "HTTPServer")).toEqual(["HTTPServer"]);
  });

  it("does not mark a term inside a longer part", () => {
    expect(marked(["parse"], "parser")).toEqual([]);
    expect(marked(["parse"], "sparse")).toEqual([]);
    expect(marked(["config"], "reconfigure")).toEqual([]);
  });

  it("matches multi-part terms as a run of parts, across naming styles", () => {
    expect(marked(["config_path"], "loadConfigPath")).toEqual(["loadConfigPath"]);
    expect(marked(["configPath"], "config_path_for")).toEqual(["config_path_for"]);
    expect(marked(["config_path"], "path_config")).toEqual([]);
  });

  it("marks only the matching words of a multi-word token", () => {
    expect(marked(["retry"], "let retry_count = max_retries;")).toEqual(["retry_count"]);
    const segs = new TermMatcher(["retry"]).segments("a retry b");
    expect(segs.map((s) => s.text).join("")).toBe("a retry b");
  });

  it("one-letter terms only match whole words", () => {
    expect(marked(["x"], "x")).toEqual(["x"]);
    expect(marked(["x"], "x_axis")).toEqual([]);
  });

  it("no terms: nothing marked", () => {
    expect(marked([], "parse_config")).toEqual([]);
    expect(marked(["  "], "parse_config")).toEqual([]);
  });

  it("wraps marked text in <mark> inside the token's span", () => {
    const span = renderToken(tok("parse_config", "function"), new TermMatcher(["PARSE"])) as HTMLElement;
    expect(span.className).toBe("tok-function");
    expect(span.querySelector("mark")!.textContent).toBe("parse_config");
    const plain = renderToken(tok("value"), new TermMatcher(["parse"]));
    expect(plain.nodeType).toBe(Node.TEXT_NODE);
  });
});
