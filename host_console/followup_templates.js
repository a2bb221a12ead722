// The Follow-up tab's message templates: listed by key with their language and channel variants, an
// editor (subject, body, language, channel) and a preview rendered by the server with sample data, so
// a typo in a variable shows before anything is sent.
import { setText } from "/static/js/i18n.js";
import { FormError, clearError, el, sendForm } from "/console-assets/forms.js";
import { SLUG, channelLabel, localeLabel, showFuError } from "/console-assets/followup_api.js";

const $ = (sel) => document.querySelector(sel);
// What a template can use (server/followup/templates.py SAMPLE); shown as a reminder, not translated.
const VARIABLES = [
  "contact.name", "product.name", "product.price", "product.url", "room.title", "coupon", "order_id",
  "unsubscribe_url",
];
const SUBJECT_MAX_CHARS = 200;
const BODY_MAX_CHARS = 20_000;

export class TemplatesView {
  /** @param {{api: object, done: (key: string, vars?: object) => void, reload: () => Promise<void>}} ctx */
  constructor(ctx) {
    this.ctx = ctx;
    this.data = null;
    this.list = $("[data-fu-templates]");
    this.editor = $("[data-fu-template-editor]");
    this.form = $("[data-fu-template-form]");
    $("[data-fu-template-vars]").replaceChildren(
      ...VARIABLES.map((v) => el("code", "f-var", `{{ ${v} }}`)),
    );
    this._bind();
  }

  update(data) {
    this.data = data;
    this.render();
  }

  render() {
    const byKey = new Map();
    for (const tpl of this.data.templates) {
      if (!byKey.has(tpl.key)) byKey.set(tpl.key, []);
      byKey.get(tpl.key).push(tpl);
    }
    setText($("[data-fu-template-count]"), "fu.templates.count", { n: byKey.size });
    this.list.replaceChildren(
      ...[...byKey].map(([key, variants]) => {
        const li = el("li", "f-template");
        li.dataset.templateKey = key;
        const variantBox = el("span", "f-variants");
        for (const tpl of variants) {
          const b = el("button", "s-btn f-variant");
          b.type = "button";
          b.dataset.templateId = String(tpl.id);
          const language = localeLabel(tpl.locale);
          b.textContent = tpl.channel === "*" ? language : `${language} · ${channelLabel(tpl.channel)}`;
          b.title = tpl.subject || "";
          variantBox.append(b);
        }
        li.append(el("b", "f-t-key", key), variantBox);
        return li;
      }),
    );
  }

  /** Open the editor on a template (null: a new one). */
  open(tpl) {
    const f = this.form.elements;
    clearError($("[data-fu-template-error]"));
    this._clearPreview();
    setText($("[data-fu-template-editor-title]"), tpl ? "fu.tpl.edit_title" : "fu.tpl.new_title", {
      key: tpl ? tpl.key : "",
    });
    f.key.value = tpl ? tpl.key : "";
    f.locale.value = tpl ? tpl.locale : "en";
    f.channel.value = tpl ? tpl.channel : "*";
    f.subject.value = tpl ? tpl.subject || "" : "";
    f.body.value = tpl ? tpl.body : "";
    this.editor.hidden = false;
    this.editor.scrollIntoView({ block: "nearest" });
    (tpl ? f.body : f.key).focus();
  }

  close() {
    this.editor.hidden = true;
  }

  _parts() {
    const f = this.form.elements;
    const body = f.body.value;
    if (!body.trim()) throw new FormError("fu.v.body", undefined, f.body);
    if (body.length > BODY_MAX_CHARS) throw new FormError("sell.v.too_long", { n: BODY_MAX_CHARS }, f.body);
    const subject = f.subject.value.trim();
    if (subject.length > SUBJECT_MAX_CHARS) {
      throw new FormError("sell.v.too_long", { n: SUBJECT_MAX_CHARS }, f.subject);
    }
    return { subject: subject || null, body };
  }

  _clearPreview() {
    $("[data-fu-preview]").hidden = true;
    clearError($("[data-fu-preview-error]"));
  }

  async preview() {
    const errorEl = $("[data-fu-preview-error]");
    this._clearPreview();
    try {
      const rendered = await this.ctx.api.post("/preview", this._parts());
      $("[data-fu-preview-subject]").textContent = rendered.subject || "";
      $("[data-fu-preview-subject-row]").hidden = !rendered.subject;
      $("[data-fu-preview-text]").textContent = rendered.text;
      $("[data-fu-preview]").hidden = false;
    } catch (err) {
      showFuError(errorEl, err);
    }
  }

  save() {
    const f = this.form.elements;
    const send = async () => {
      const key = f.key.value.trim();
      if (!SLUG.test(key)) throw new FormError("fu.v.key", undefined, f.key);
      const body = { key, locale: f.locale.value, channel: f.channel.value, ...this._parts() };
      await this.ctx.api.post("/templates", body);
      this.ctx.done("fu.done.template_saved", { key });
      await this.ctx.reload();
    };
    return sendForm($("[data-fu-template-save]"), $("[data-fu-template-error]"), send, showFuError);
  }

  _bind() {
    this.list.addEventListener("click", (e) => {
      const b = e.target.closest("[data-template-id]");
      if (!b || !this.data) return;
      const tpl = this.data.templates.find((x) => String(x.id) === b.dataset.templateId);
      if (tpl) this.open(tpl);
    });
    $("[data-fu-template-new]").addEventListener("click", () => this.open(null));
    $("[data-fu-template-cancel]").addEventListener("click", () => this.close());
    $("[data-fu-template-preview]").addEventListener("click", () => this.preview());
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.save();
    });
    this.form.elements.body.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.metaKey || e.ctrlKey)) this.preview();
    });
  }
}
