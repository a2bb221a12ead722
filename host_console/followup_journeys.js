// The Follow-up tab's journeys: each with its trigger and goal, its status (a journey the circuit
// breaker paused says why), pause/resume, what entries arriving while paused do (kept for the resume,
// or skipped: listed), and per step what it does and what came of it (the funnel).
import { setText, t } from "/static/js/i18n.js";
import { button, el } from "/console-assets/forms.js";
import {
  channelLabel, countChip, eventLabel, numberText, rowAction, serverText, whenText,
} from "/console-assets/followup_api.js";
import { JourneyForm, waitParts } from "/console-assets/followup_journey_form.js";

const $ = (sel) => document.querySelector(sel);
// The funnel of a send step, in order; then messages still waiting and what stopped the others, when
// not zero.
const FUNNEL = ["sent", "opened", "clicked", "converted"];
const OTHERS = ["scheduled", "skipped", "capped", "stale", "failed", "dead", "cancelled"];
// What the host's own pause writes (server/followup/console.py): shown in our words.
const HOST_PAUSE = "paused by the host";

export class JourneysView {
  /** @param {{api: import("./followup_api.js").FollowupApi, done: (key: string, vars?: object) => void,
   *           reload: () => Promise<void>, products: () => object[]}} ctx */
  constructor(ctx) {
    this.ctx = ctx;
    this.data = null;
    this.busy = new Set(); // journey keys whose pause/resume is in flight
    this.list = $("[data-fu-journeys]");
    this.form = new JourneyForm(ctx);
    this._bind();
  }

  update(data) {
    this.data = data;
    this.render();
    this.form.update(data);
  }

  render() {
    const journeys = this.data ? this.data.journeys : [];
    setText($("[data-fu-journey-count]"), "fu.journeys.count", { n: journeys.length });
    $("[data-fu-journeys-empty]").hidden = journeys.length > 0;
    this.list.replaceChildren(...journeys.map((j) => this._row(j)));
  }

  _row(j) {
    const li = el("li", "f-journey");
    li.dataset.journeyKey = j.key;
    li.dataset.status = j.status;
    const head = el("div", "f-j-head");
    const status = el("span", "s-status f-j-status");
    status.dataset.status = j.status;
    status.dataset.fuJourneyStatus = "";
    setText(status, `fu.jstatus.${j.status}`);
    const toggle = button(j.status === "active" ? "fu.act.pause" : "fu.act.resume", { fuAct: "toggle" }, "s-btn");
    toggle.disabled = this.busy.has(j.key);
    const edit = button("fu.act.edit", { fuAct: "edit" }, "s-btn");
    head.append(el("b", "f-j-name", j.name), status, toggle, edit);
    li.append(head);

    const flow = el("p", "muted f-j-flow");
    const entry = el("span", "f-j-entry", eventLabel(j.entry));
    const arrow = el("span", "f-arrow", "→");
    arrow.setAttribute("aria-hidden", "true");
    const goal = el("span");
    if (j.goal) setText(goal, "fu.journeys.goal", { goal: eventLabel(j.goal) });
    else setText(goal, "fu.journeys.no_goal");
    flow.append(entry, arrow, goal);
    li.append(flow);

    if (j.status === "paused") {
      const why = el("p", "f-paused");
      why.dataset.fuPaused = "";
      if (!j.paused_reason || j.paused_reason === HOST_PAUSE) setText(why, "fu.journeys.paused_by_host");
      else {
        const label = el("b");
        setText(label, "fu.journeys.paused_auto");
        why.classList.add("is-auto");
        why.append(label, " ", serverText(j.paused_reason));
      }
      li.append(why);
      const mode = el("p", "f-j-entries muted");
      mode.dataset.fuWhilePaused = j.while_paused;
      setText(mode, j.while_paused === "skip" ? "fu.journeys.while_skip" : "fu.journeys.while_hold");
      li.append(mode);
    }
    li.append(...this._entries(j));

    const steps = el("ol", "f-j-steps");
    const funnel = (this.data.funnel || {})[String(j.id)] || {};
    j.steps.forEach((step, i) => steps.append(this._step(step, funnel[String(i)])));
    li.append(steps);
    const error = el("p", "error-text f-j-error");
    error.setAttribute("role", "alert");
    li.append(error);
    return li;
  }

  /** What became of the entries that arrived while the journey was paused. */
  _entries(j) {
    const e = j.paused_entries || {};
    const out = [];
    if (e.held) {
      const held = el("p", "f-j-entries f-warn");
      held.dataset.fuHeld = String(e.held);
      setText(held, "fu.journeys.held", { n: numberText(e.held) });
      out.push(held);
    }
    if (e.entered || e.goal) {
      const released = el("p", "f-j-entries muted");
      released.dataset.fuReleased = "";
      setText(released, "fu.journeys.released", { entered: numberText(e.entered), goal: numberText(e.goal) });
      out.push(released);
    }
    if (e.skipped) {
      const box = el("details", "f-j-entries f-j-skipped");
      box.dataset.fuSkipped = String(e.skipped);
      const summary = el("summary");
      setText(summary, "fu.journeys.skipped", { n: numberText(e.skipped) });
      const list = el("ul");
      for (const item of e.skipped_recent || []) list.append(this._skipped(item));
      const more = e.skipped - (e.skipped_recent || []).length;
      if (more > 0) {
        const li = el("li", "muted");
        setText(li, "fu.journeys.skipped_more", { n: numberText(more) });
        list.append(li);
      }
      box.append(summary, list);
      out.push(box);
    }
    return out;
  }

  _skipped(item) {
    const li = el("li");
    li.dataset.fuSkippedItem = "";
    const product = item.product_id ? this.ctx.products().find((p) => p.id === item.product_id) : null;
    const event = [eventLabel(item.event), product ? product.name : null, item.order_id].filter(Boolean).join(" ");
    const who = item.name || t("fu.journeys.anonymous");
    setText(li, "fu.journeys.skipped_item", { when: whenText(item.event_ms), event, who });
    return li;
  }

  _step(step, cell) {
    const li = el("li", "f-j-step");
    const what = el("span", "f-j-what");
    if (step.wait && step.wait.until) {
      li.dataset.kind = "until";
      setText(what, "fu.step.until_text", { time: step.wait.until });
    } else if (step.wait) {
      li.dataset.kind = "wait";
      const { amount, unit } = waitParts(step.wait.minutes);
      setText(what, `fu.step.wait_${unit}`, { n: numberText(amount) });
    } else {
      li.dataset.kind = "send";
      const s = step.send;
      setText(what, "fu.step.send_text", { template: s.template, channel: channelLabel(s.channel) });
      const tags = el("span", "f-j-tags muted");
      if (s.channel !== "auto" && !(this.data.channels || []).includes(s.channel)) {
        tags.append(this._tag("fu.step.channel_off_tag", undefined, "is-warn"));
      }
      if (s.transactional) tags.append(this._tag("fu.step.transactional_tag"));
      if (s.stale_minutes) {
        const { amount, unit } = waitParts(s.stale_minutes);
        tags.append(this._tag(`fu.step.stale_${unit}`, { n: numberText(amount) }));
      }
      if (s.coupon) tags.append(this._tag("fu.step.coupon_tag", { code: s.coupon }));
      li.append(what, tags);
      li.append(this._funnel(cell || {}));
      return li;
    }
    li.append(what);
    return li;
  }

  _tag(key, vars, className = "") {
    const tag = el("span", `f-tag ${className}`.trim());
    setText(tag, key, vars);
    return tag;
  }

  _funnel(cell) {
    const box = el("div", "f-funnel");
    box.dataset.fuFunnel = "";
    for (const name of FUNNEL) box.append(countChip(`fu.funnel.${name}`, cell[name] || 0));
    for (const name of OTHERS) {
      if (cell[name]) box.append(countChip(`fu.msg.${name}`, cell[name], `is-${name}`));
    }
    return box;
  }

  async _toggle(j, row) {
    if (this.busy.has(j.key)) return;
    const errorEl = row.querySelector(".f-j-error");
    errorEl.replaceChildren();
    const selector = `[data-journey-key="${CSS.escape(j.key)}"] [data-fu-act=toggle]`;
    const findButton = () => this.list.querySelector(selector);
    const next = j.status === "active" ? "paused" : "active";
    await rowAction(this, { id: j.key, button: findButton, errorEl }, async () => {
      await this.ctx.api.post(`/journeys/${encodeURIComponent(j.key)}/status`, { status: next });
      this.ctx.done(next === "active" ? "fu.done.resumed" : "fu.done.paused", { name: j.name });
    });
  }

  _bind() {
    this.list.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-fu-act]");
      const row = e.target.closest("[data-journey-key]");
      if (!b || !row || b.disabled || !this.data) return;
      const j = this.data.journeys.find((x) => x.key === row.dataset.journeyKey);
      if (!j) return;
      if (b.dataset.fuAct === "toggle") this._toggle(j, row);
      else if (b.dataset.fuAct === "edit") this.form.open(j);
    });
    $("[data-fu-journey-new]").addEventListener("click", () => {
      if (this.data) this.form.open(null); // the choices come with the overview
    });
  }
}

