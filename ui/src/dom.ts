// A tiny element builder. Every piece of text goes in through textContent or
// a text node: code and paths come from the user's repositories and are never
// parsed as markup.

type Child = Node | string | number | null | undefined | false;

export interface Props {
  class?: string;
  text?: string;
  title?: string;
  id?: string;
  hidden?: boolean;
  /** Plain attributes (data-*, aria-*, type, ...). Event handler attributes
   * are refused: behaviour is attached with addEventListener. */
  attrs?: Record<string, string | number | boolean | null | undefined>;
}

export function setAttrs(el: Element, attrs: Props["attrs"]): void {
  if (!attrs) return;
  for (const [name, value] of Object.entries(attrs)) {
    if (/^on/i.test(name)) throw new Error(`refusing event handler attribute ${name}`);
    if (value === null || value === undefined || value === false) el.removeAttribute(name);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props) {
    if (props.class) el.className = props.class;
    if (props.id) el.id = props.id;
    if (props.title !== undefined) el.title = props.title;
    if (props.hidden) el.hidden = true;
    setAttrs(el, props.attrs);
    if (props.text !== undefined) el.textContent = props.text;
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
}

/** Sets text only when it changed, so live updates do not disturb selection
 * or cause needless layout. */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function show(el: HTMLElement, visible: boolean): void {
  if (el.hidden === visible) el.hidden = !visible;
}

const SVG = "http://www.w3.org/2000/svg";

/** Icons as SVG paths on a 16x16 grid (stroked). */
const ICONS: Record<string, string[]> = {
  gear: [
    "M8 5.5a2.5 2.5 0 1 0 0 5 2.5 2.5 0 0 0 0-5z",
    "M13.1 9.6l1.2.9-1.4 2.4-1.4-.6a5 5 0 0 1-1.5.9L9.8 14.7H6.2L6 13.2a5 5 0 0 1-1.5-.9l-1.4.6-1.4-2.4 1.2-.9a5 5 0 0 1 0-1.7L1.7 7l1.4-2.4 1.4.6A5 5 0 0 1 6 4.3l.2-1.5h3.6l.2 1.5a5 5 0 0 1 1.5.9l1.4-.6L14.3 7l-1.2.9a5 5 0 0 1 0 1.7z",
  ],
  folder: ["M1.5 4.5v8h13v-6.5H7.5l-1.5-1.5z"],
  plus: ["M8 3v10M3 8h10"],
  search: ["M7 2.5a4.5 4.5 0 1 0 0 9 4.5 4.5 0 0 0 0-9zM10.3 10.3l3.2 3.2"],
  close: ["M4 4l8 8M12 4l-8 8"],
  refresh: ["M13 8a5 5 0 1 1-1.5-3.5M13 2.5v3h-3"],
  warning: ["M8 2l6.5 11.5h-13zM8 6.5v3.5M8 11.8v.4"],
};

export function icon(name: keyof typeof ICONS | string): SVGSVGElement {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("width", "16");
  svg.setAttribute("height", "16");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", `icon icon-${name}`);
  for (const d of ICONS[name] ?? []) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    svg.appendChild(path);
  }
  return svg;
}
