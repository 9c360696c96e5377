// The settings panel: model, device, excluded globs, max file size, editor.

import type { Settings, SettingsChoices } from "./api";
import { clear, h, icon, setText, show } from "./dom";
import { formatCount, sizeToUnit, unitToSize } from "./format";
import { showInlineError, toUiError } from "./render";

export interface SettingsDeps {
  save: (settings: Settings) => Promise<Settings>;
  onSaved: (settings: Settings) => void;
  onClose?: () => void;
}

const DEVICE_LABELS: Record<string, string> = { auto: "Auto (GPU if available)", cpu: "CPU", gpu: "GPU" };

function options(select: HTMLSelectElement, values: string[], current: string, label: (v: string) => string = (v) => v): void {
  clear(select);
  const all = values.includes(current) || !current ? values : [current, ...values];
  for (const v of all) {
    const opt = h("option", { text: label(v) });
    opt.value = v;
    select.appendChild(opt);
  }
  select.value = current;
}

/** The form's values as Settings, or an error message. */
export function readSettingsForm(fields: {
  model: string;
  device: string;
  exclude: string;
  size: string;
  unit: string;
  editor: string;
}): Settings | string {
  const size = Number(fields.size);
  if (fields.size.trim() === "" || !Number.isFinite(size) || size <= 0) {
    return "Max file size must be a number greater than 0";
  }
  return {
    model: fields.model,
    device: fields.device,
    exclude: fields.exclude
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l.length > 0),
    max_file_size: unitToSize(size, fields.unit === "MB" ? "MB" : "KB"),
    editor: fields.editor.trim() === "" ? null : fields.editor.trim(),
  };
}

export class SettingsPanel {
  readonly el: HTMLElement;
  private readonly form: HTMLFormElement;
  private readonly model: HTMLSelectElement;
  private readonly device: HTMLSelectElement;
  private readonly exclude: HTMLTextAreaElement;
  private readonly size: HTMLInputElement;
  private readonly unit: HTMLSelectElement;
  private readonly sizeHelp: HTMLElement;
  private readonly editor: HTMLInputElement;
  private readonly editorHelp: HTMLElement;
  private readonly error: HTMLElement;
  private readonly status: HTMLElement;
  private readonly saveBtn: HTMLButtonElement;
  private returnFocus: HTMLElement | null = null;
  /** The settings the panel was opened with: what the form does not edit
   * (search tuning, written in the file) is saved back unchanged. */
  private opened: Settings | null = null;

  constructor(private readonly deps: SettingsDeps) {
    this.model = h("select", { id: "settings-model" });
    this.device = h("select", { id: "settings-device" });
    this.exclude = h("textarea", { id: "settings-exclude", attrs: { rows: 5, spellcheck: "false", placeholder: "vendor/**\n*.min.js" } });
    this.size = h("input", { id: "settings-max-size", attrs: { type: "number", min: "1", step: "any", inputmode: "decimal" } });
    this.unit = h("select", { id: "settings-max-size-unit", attrs: { "aria-label": "Unit" } });
    options(this.unit, ["KB", "MB"], "KB");
    this.sizeHelp = h("p", { class: "help" });
    this.editor = h("input", { id: "settings-editor", attrs: { type: "text", spellcheck: "false", autocomplete: "off" } });
    this.editorHelp = h("p", { class: "help" });
    this.error = h("div", { class: "inline-error", hidden: true, attrs: { role: "alert" } });
    this.status = h("span", { class: "settings-status", attrs: { role: "status" } });
    this.saveBtn = h("button", { class: "primary", text: "Save", attrs: { type: "submit" } });
    const cancel = h("button", { text: "Close", attrs: { type: "button" } });
    const closeX = h("button", { class: "icon-button", title: "Close settings", attrs: { type: "button", "aria-label": "Close settings" } }, icon("close"));

    const field = (label: string, id: string, control: HTMLElement, help?: HTMLElement | string) =>
      h(
        "div",
        { class: "field" },
        h("label", { text: label, attrs: { for: id } }),
        control,
        typeof help === "string" ? h("p", { class: "help", text: help }) : help ?? null,
      );

    this.form = h(
      "form",
      { class: "settings-form", attrs: { novalidate: true } },
      field("Search model", "settings-model", this.model, "The embedding model used for search by meaning."),
      field("Device", "settings-device", this.device, "Where the model runs."),
      field(
        "Excluded paths",
        "settings-exclude",
        this.exclude,
        "Extra paths to leave out: one gitignore-style glob per line.",
      ),
      field("Max file size", "settings-max-size", h("div", { class: "size-row" }, this.size, this.unit), this.sizeHelp),
      field("Editor command", "settings-editor", this.editor, this.editorHelp),
      this.error,
      h("div", { class: "settings-buttons" }, this.status, cancel, this.saveBtn),
    );
    this.el = h(
      "aside",
      {
        id: "settings-panel",
        class: "panel",
        hidden: true,
        attrs: { role: "dialog", "aria-modal": "false", "aria-labelledby": "settings-title" },
      },
      h("div", { class: "panel-head" }, h("h2", { id: "settings-title", text: "Settings" }), closeX),
      this.form,
    );

    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.save();
    });
    cancel.addEventListener("click", () => this.close());
    closeX.addEventListener("click", () => this.close());
    const sizeChanged = () => this.updateSizeHelp();
    this.size.addEventListener("input", sizeChanged);
    this.unit.addEventListener("change", sizeChanged);
    this.form.addEventListener("input", () => setText(this.status, ""));
  }

  get isOpen(): boolean {
    return !this.el.hidden;
  }

  open(settings: Settings, choices: SettingsChoices): void {
    this.opened = settings;
    options(this.model, choices.models, settings.model);
    options(this.device, choices.devices, settings.device, (d) => DEVICE_LABELS[d] ?? d);
    this.exclude.value = settings.exclude.join("\n");
    const { value, unit } = sizeToUnit(settings.max_file_size);
    this.size.value = String(value);
    this.unit.value = unit;
    this.updateSizeHelp();
    this.editor.value = settings.editor ?? "";
    this.editor.placeholder = choices.default_editor;
    clear(this.editorHelp);
    this.editorHelp.append(
      "{path} becomes the file's full path and {line} the line number, e.g. ",
      h("code", { text: "code -g {path}:{line}" }),
      ". Empty: the default, ",
      h("code", { text: choices.default_editor }),
      ".",
    );
    showInlineError(this.error, null);
    setText(this.status, "");
    if (!this.isOpen) this.returnFocus = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    show(this.el, true);
    this.model.focus();
  }

  close(): void {
    if (!this.isOpen) return;
    show(this.el, false);
    this.deps.onClose?.();
    this.returnFocus?.focus?.();
    this.returnFocus = null;
  }

  private updateSizeHelp(): void {
    const value = Number(this.size.value);
    const bytes = Number.isFinite(value) && value > 0 ? unitToSize(value, this.unit.value === "MB" ? "MB" : "KB") : null;
    setText(
      this.sizeHelp,
      bytes === null
        ? "Files larger than this are skipped (1 KB = 1,024 bytes)."
        : `Files larger than ${formatCount(bytes)} bytes are skipped (1 KB = 1,024 bytes).`,
    );
  }

  async save(): Promise<void> {
    const read = readSettingsForm({
      model: this.model.value,
      device: this.device.value,
      exclude: this.exclude.value,
      size: this.size.value,
      unit: this.unit.value,
      editor: this.editor.value,
    });
    if (typeof read === "string") {
      showInlineError(this.error, { message: read, hint: null });
      this.size.focus();
      return;
    }
    showInlineError(this.error, null);
    this.saveBtn.disabled = true;
    setText(this.status, "Saving…");
    try {
      const saved = await this.deps.save({ ...this.opened, ...read });
      this.deps.onSaved(saved);
      setText(this.status, "Saved");
    } catch (e) {
      setText(this.status, "");
      showInlineError(this.error, toUiError(e));
    } finally {
      this.saveBtn.disabled = false;
    }
  }
}
