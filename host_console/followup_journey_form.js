// The journey editor: a marketer builds a journey without code. The trigger event, what makes it one
// journey per order / product / deal, the goal that ends it, an optional product filter, and the steps:
// wait N minutes (hours, days), wait until a time of day on the contact's clock, send a template; and
// what entries arriving while the journey is paused do (kept for the resume, or skipped). A send step
// on a channel that is off on this server says what to set up.
// Checked here first for a precise hint; the server checks it all again (rules.clean_journey).
import { setText, t } from "/static/js/i18n.js";
import { FormError, button, clearError, el, sendForm, wholeNumber } from "/console-assets/forms.js";
import {
  CHANNELS, COUPON_MAX_CHARS, MAX_STALE_MINUTES, MAX_STEPS, MAX_WAIT_MINUTES, NAME_MAX_CHARS, SLUG,
  channelLabel, channelOffWarning, eventOption, fillSelect, option, showFuError,
} from "/console-assets/followup_api.js";

const $ = (sel) => document.querySelector(sel);
const UNITS = { minutes: 1, hours: 60, days: 24 * 60 };
const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;
const KEY_BY = ["order_id", "product_id", "discount_id"];

/** Minutes as the largest whole unit: 4320 -> {amount: 3, unit: "days"}. */
export function waitParts(minutes) {
  if (minutes % UNITS.days === 0) return { amount: minutes / UNITS.days, unit: "days" };
  if (minutes % UNITS.hours === 0) return { amount: minutes / UNITS.hours, unit: "hours" };
  return { amount: minutes, unit: "minutes" };
}

function labelled(node, key) {
  node.setAttribute("aria-label", t(key));
  node.dataset.i18nAriaLabel = key;
  return node;
}

function caption(key, className = "f-step-label") {
  const span = el("span", className);
  setText(span, key);
  return span;
}

function numberInput(name, min, max) {
  const input = el("input", "f-num");
  input.name = name;
  input.type = "number";
  input.min = String(min);
  input.max = String(max);
  input.step = "1";
  input.inputMode = "numeric";
  return input;
}

/** A whole number from a field in [low, high] (null when empty and ``optional``), or FormError on it. */
function whole(field, low, high, optional = false) {
  if (optional && field.value.trim() === "" && !field.validity.badInput) return null;
  const n = field.validity.badInput ? null : wholeNumber(field.value, low, high);
  if (n === null) throw new FormError("sell.v.range", { low, high }, field);
  return n;
}

export class JourneyForm {
  /** @param {{api: object, done: (key: string, vars?: object) => void, reload: () => Promise<void>,
   *           products: () => object[]}} ctx */
  constructor(ctx) {
    this.ctx = ctx;
    this.data = null;
    this.editing = null; // the journey being edited (null: a new one)
    this.card = $("[data-fu-journey-editor]");
    this.form = $("[data-fu-journey-form]");
    this.steps = $("[data-fu-steps]");
    this._bind();
  }

  /** New overview data: the event, template and channel choices follow it. */
  update(data) {
    this.data = data;
    const f = this.form.elements;
    const events = data.events || [];
    fillSelect(f.entry, events.map((e) => eventOption(e)));
    fillSelect(f.goal, [option("", "fu.none"), ...events.map((e) => eventOption(e))], "");
    for (const row of this.steps.querySelectorAll("[data-kind=send]")) this._fillSendChoices(row);
  }

  /** Open the editor on a journey (null: a new one). */
  open(journey) {
    this.editing = journey;
    const f = this.form.elements;
    clearError($("[data-fu-journey-error]"));
    setText($("[data-fu-journey-editor-title]"), journey ? "fu.editor.edit_title" : "fu.editor.new_title", {
      name: journey ? journey.name : "",
    });
    f.key.value = journey ? journey.key : "";
    f.key.readOnly = journey !== null;
    f.name.value = journey ? journey.name : "";
    f.entry.value = journey ? journey.entry : "product.buy";
    f.goal.value = journey && journey.goal ? journey.goal : "";
    f.key_by.value = journey && journey.key_by ? journey.key_by : "";
    const conditions = (journey && journey.conditions) || {};
    f.source.value = conditions.source || "";
    f.while_paused.value = journey && journey.while_paused === "skip" ? "skip" : "hold";
    this._renderProducts(conditions.product_ids || []);
    this.steps.replaceChildren();
    for (const step of journey ? journey.steps : []) this._addStep(step);
    if (!journey) {
      this._addStep({ wait: { minutes: 30 } });
      this._addStep({ send: { channel: "auto", template: "" } });
    }
    this._stepsChanged();
    this.card.hidden = false;
    this.card.scrollIntoView({ block: "nearest" });
    (journey ? f.name : f.key).focus();
  }

  close() {
    this.card.hidden = true;
    this.editing = null;
  }

  // --- products -------------------------------------------------------------------------------------

  _renderProducts(chosen) {
    const box = $("[data-fu-products]");
    const products = this.ctx.products() || [];
    const known = new Set(products.map((p) => p.id));
    const rows = products.map((p) => [p.id, p.name]);
    for (const id of chosen) if (!known.has(id)) rows.push([id, `#${id}`]); // kept even when gone from the shelf
    box.replaceChildren(
      ...rows.map(([id, name]) => {
        const label = el("label", "d-check f-product");
        const input = el("input");
        input.type = "checkbox";
        input.name = "product";
        input.value = String(id);
        input.checked = chosen.includes(id);
        label.append(input, el("span", "", name));
        return label;
      }),
    );
    $("[data-fu-products-none]").hidden = rows.length > 0;
  }

  // --- steps ----------------------------------------------------------------------------------------

  _addStep(step) {
    if (this.steps.children.length >= MAX_STEPS) return null;
    const li = el("li", "f-step");
    const body = el("div", "f-step-body");
    if (step.wait && step.wait.until !== undefined) {
      li.dataset.kind = "until";
      const time = labelled(el("input", "f-time"), "fu.step.until_label");
      time.name = "until";
      time.type = "time";
      time.value = step.wait.until || "10:00";
      body.append(caption("fu.step.until"), time, caption("fu.step.until_hint", "muted f-step-hint"));
    } else if (step.wait) {
      li.dataset.kind = "wait";
      const { amount, unit } = waitParts(step.wait.minutes || 30);
      const n = labelled(numberInput("amount", 1, MAX_WAIT_MINUTES), "fu.step.wait_amount");
      n.value = String(amount);
      const units = labelled(el("select", "f-unit"), "fu.step.wait_unit");
      units.name = "unit";
      units.append(...Object.keys(UNITS).map((u) => option(u, `fu.unit.${u}`)));
      units.value = unit;
      body.append(caption("fu.step.wait"), n, units);
    } else {
      li.dataset.kind = "send";
      const s = step.send || {};
      const template = labelled(el("select", "f-template"), "fu.step.template");
      template.name = "template";
      const channel = labelled(el("select", "f-channel"), "fu.step.channel");
      channel.name = "channel";
      const line = el("div", "f-step-line");
      line.append(caption("fu.step.send"), template, caption("fu.step.via", "muted"), channel);
      const transactional = el("label", "d-check f-step-check");
      const box = el("input");
      box.type = "checkbox";
      box.name = "transactional";
      box.checked = Boolean(s.transactional);
      transactional.append(box, caption("fu.step.transactional", ""));
      const stale = labelled(numberInput("stale", 1, MAX_STALE_MINUTES), "fu.step.stale");
      stale.value = s.stale_minutes ? String(s.stale_minutes) : "";
      stale.placeholder = "—";
      const staleLabel = el("label", "f-step-field");
      staleLabel.append(caption("fu.step.stale", "muted"), stale);
      const coupon = labelled(el("input", "f-coupon"), "fu.step.coupon");
      coupon.name = "coupon";
      coupon.maxLength = COUPON_MAX_CHARS;
      coupon.autocomplete = "off";
      coupon.value = s.coupon || "";
      const couponLabel = el("label", "f-step-field");
      couponLabel.append(caption("fu.step.coupon", "muted"), coupon);
      const extra = el("div", "f-step-line f-step-extra");
      extra.append(transactional, staleLabel, couponLabel);
      const warn = el("p", "f-warn f-step-warn");
      warn.dataset.fuChannelOff = "";
      warn.hidden = true;
      channel.addEventListener("change", () => this._warnChannel(li));
      body.append(line, extra, warn);
      li.dataset.template = s.template || "";
      li.dataset.channel = s.channel || "auto";
    }
    const tools = el("div", "f-step-tools");
    tools.append(
      labelled(button("fu.step.up_short", { stepAct: "up" }, "s-btn"), "fu.step.up"),
      labelled(button("fu.step.down_short", { stepAct: "down" }, "s-btn"), "fu.step.down"),
      labelled(button("fu.step.remove_short", { stepAct: "remove" }, "s-btn s-danger"), "fu.step.remove"),
    );
    li.append(body, tools);
    if (li.dataset.kind === "send") this._fillSendChoices(li);
    this.steps.append(li);
    return li;
  }

  /** The template and channel choices of a send step (the templates' keys; configured channels first). */
  _fillSendChoices(row) {
    const template = row.querySelector("[name=template]");
    const channel = row.querySelector("[name=channel]");
    const keys = [...new Set(((this.data && this.data.templates) || []).map((tpl) => tpl.key))].sort();
    const wanted = template.value || row.dataset.template;
    if (wanted && !keys.includes(wanted)) keys.push(wanted);
    const choices = [option("", "fu.step.pick_template"), ...keys.map((k) => {
      const node = el("option", "", k);
      node.value = k;
      return node;
    })];
    template.replaceChildren(...choices);
    template.value = wanted || "";
    const configured = new Set((this.data && this.data.channels) || []);
    const chosen = channel.value || row.dataset.channel;
    channel.replaceChildren(
      option("auto", "fu.channel.auto"),
      ...CHANNELS.map((c) => option(c, configured.has(c) ? `fu.channel.${c}` : "fu.channel.off", {
        channel: channelLabel(c),
      })),
    );
    channel.value = chosen || "auto";
    this._warnChannel(row);
  }

  /** A send step on a channel that is off on this server says what to set up. */
  _warnChannel(row) {
    const channel = row.querySelector("[name=channel]");
    const configured = new Set((this.data && this.data.channels) || []);
    channelOffWarning(row.querySelector("[data-fu-channel-off]"), channel.value, configured);
  }

  _stepsChanged() {
    const rows = [...this.steps.children];
    rows.forEach((row, i) => {
      row.querySelector("[data-step-act=up]").disabled = i === 0;
      row.querySelector("[data-step-act=down]").disabled = i === rows.length - 1;
      row.querySelector("[data-step-act=remove]").disabled = rows.length <= 1;
    });
    for (const b of this.form.querySelectorAll("[data-fu-add]")) b.disabled = rows.length >= MAX_STEPS;
  }

  // --- reading and sending --------------------------------------------------------------------------

  /** The form as a journey spec, or FormError naming the first bad field. */
  read() {
    const f = this.form.elements;
    const key = f.key.value.trim();
    if (!SLUG.test(key)) throw new FormError("fu.v.key", undefined, f.key);
    const name = f.name.value.trim();
    if (!name) throw new FormError("fu.v.name", undefined, f.name);
    if ([...name].length > NAME_MAX_CHARS) throw new FormError("sell.v.too_long", { n: NAME_MAX_CHARS }, f.name);
    const entry = f.entry.value;
    const goal = f.goal.value || null;
    if (goal === entry) throw new FormError("fu.v.goal", undefined, f.goal);
    const conditions = {};
    const ids = [...this.form.querySelectorAll("[name=product]:checked")].map((c) => Number(c.value));
    if (ids.length) conditions.product_ids = ids;
    if (f.source.value) conditions.source = f.source.value;
    const rows = [...this.steps.children];
    if (!rows.length) throw new FormError("fu.v.steps", undefined, this.form.querySelector("[data-fu-add=send]"));
    const steps = rows.map((row) => this._readStep(row));
    if (!steps.some((s) => s.send)) {
      throw new FormError("fu.v.send", undefined, this.form.querySelector("[data-fu-add=send]"));
    }
    return {
      key, name, entry, goal, key_by: f.key_by.value || null, conditions, steps, while_paused: f.while_paused.value,
    };
  }

  _readStep(row) {
    const field = (name) => row.querySelector(`[name=${name}]`);
    if (row.dataset.kind === "until") {
      const value = field("until").value;
      if (!HHMM.test(value)) throw new FormError("fu.v.time", undefined, field("until"));
      return { wait: { until: value } };
    }
    if (row.dataset.kind === "wait") {
      const factor = UNITS[field("unit").value] || 1;
      const amount = whole(field("amount"), 1, Math.floor(MAX_WAIT_MINUTES / factor));
      return { wait: { minutes: amount * factor } };
    }
    const template = field("template").value;
    if (!template) throw new FormError("fu.v.template", undefined, field("template"));
    const send = { channel: field("channel").value, template, transactional: field("transactional").checked };
    const stale = whole(field("stale"), 1, MAX_STALE_MINUTES, true);
    if (stale !== null) send.stale_minutes = stale;
    const coupon = field("coupon").value.trim();
    if (coupon) send.coupon = coupon;
    return { send };
  }

  submit() {
    const send = async () => {
      const saved = await this.ctx.api.post("/journeys", this.read());
      this.ctx.done("fu.done.journey_saved", { name: saved.name });
      this.close();
      await this.ctx.reload();
    };
    return sendForm($("[data-fu-journey-save]"), $("[data-fu-journey-error]"), send, showFuError);
  }

  _bind() {
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    $("[data-fu-journey-cancel]").addEventListener("click", () => this.close());
    for (const b of this.form.querySelectorAll("[data-fu-add]")) {
      b.addEventListener("click", () => {
        const kind = b.dataset.fuAdd;
        const wait = kind === "until" ? { until: "10:00" } : { minutes: 30 };
        const step = kind === "send" ? { send: { channel: "auto" } } : { wait };
        const row = this._addStep(step);
        this._stepsChanged();
        if (row) row.querySelector("input, select").focus();
      });
    }
    this.steps.addEventListener("click", (e) => {
      const b = e.target.closest("[data-step-act]");
      if (!b || b.disabled) return;
      const row = b.closest("li");
      const act = b.dataset.stepAct;
      if (act === "up" && row.previousElementSibling) row.previousElementSibling.before(row);
      else if (act === "down" && row.nextElementSibling) row.nextElementSibling.after(row);
      else if (act === "remove" && this.steps.children.length > 1) row.remove();
      this._stepsChanged();
      const still = this.steps.contains(row) ? row.querySelector(`[data-step-act=${act}]`) : null;
      if (still && !still.disabled) still.focus();
    });
  }
}
