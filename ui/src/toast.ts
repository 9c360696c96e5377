// A brief message at the bottom of the window ("Copied").

import { h } from "./dom";

export class Toast {
  readonly el: HTMLElement;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor() {
    this.el = h("div", { id: "toast", class: "toast", attrs: { role: "status", "aria-live": "polite" } });
  }

  show(text: string, ms = 1600, kind: "info" | "error" = "info"): void {
    this.el.textContent = text;
    this.el.classList.toggle("toast-error", kind === "error");
    this.el.classList.add("visible");
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.el.classList.remove("visible");
      this.timer = null;
    }, ms);
  }
}
