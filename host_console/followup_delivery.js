// The Follow-up tab's delivery view: the dead-letter count and the alerts (live, from the "followup"
// event; a journey that paused itself stands out), the messages that failed or gave up with a Retry
// each, and the log of the latest messages with their status and why.
import { setText } from "/static/js/i18n.js";
import { button, clearError, el } from "/console-assets/forms.js";
import {
  channelLabel, numberText, reasonText, rowAction, serverText, showFuError, statusBadge, whenText,
} from "/console-assets/followup_api.js";

const $ = (sel) => document.querySelector(sel);
// Alerts of this kind mean a journey's circuit breaker stopped it (server/followup/delivery.py).
const BREAKER = "journey.paused";

export class DeliveryView {
  /** @param {{api: object, done: (key: string, vars?: object) => void, reload: () => Promise<void>}} ctx */
  constructor(ctx) {
    this.ctx = ctx;
    this.problems = [];
    this.log = [];
    this.journeyNames = new Map();
    this.campaignNames = new Map();
    this.busy = new Set(); // message ids being retried
    this._bind();
  }

  /** The names that say where a message came from. */
  setNames(journeys, campaigns) {
    this.journeyNames = new Map((journeys || []).map((j) => [j.id, j.name]));
    this.campaignNames = new Map((campaigns || []).map((c) => [c.id, c.name]));
  }

  /** The live part: dead-letter count and alerts. */
  setLive(summary) {
    const dead = summary.dead || 0;
    $("[data-fu-dead]").textContent = numberText(dead);
    $("[data-fu-dead-box]").dataset.dead = dead > 0 ? "yes" : "no";
    const badge = $("[data-fu-badge]");
    badge.hidden = dead === 0;
    if (dead) setText(badge, "fu.tab.dead", { n: numberText(dead) });
    // Sent again after a worker stopped mid-send: email may then arrive twice (docs/followup.md).
    const uncertain = summary.uncertain || 0;
    $("[data-fu-uncertain-box]").hidden = uncertain === 0;
    $("[data-fu-uncertain]").textContent = numberText(uncertain);
    const alerts = summary.alerts || [];
    $("[data-fu-alerts-empty]").hidden = alerts.length > 0;
    $("[data-fu-alerts]").replaceChildren(...alerts.map((a) => this._alert(a)));
  }

  _alert(a) {
    const li = el("li", "f-alert");
    li.dataset.kind = a.kind;
    if (a.kind === BREAKER) li.classList.add("is-breaker");
    const time = el("time", "muted", whenText(a.created_ms));
    time.dateTime = new Date(a.created_ms).toISOString();
    li.append(time);
    if (a.kind === BREAKER) {
      const label = el("b");
      setText(label, "fu.alerts.breaker");
      li.append(label);
    }
    li.append(serverText(a.text, "f-alert-text"));
    return li;
  }

  /** Fetch the failed and dead messages and the log (errors show in the card). */
  async load() {
    const errorEl = $("[data-fu-delivery-error]");
    try {
      const [dead, failed, log] = await Promise.all([
        this.ctx.api.get("/messages?status=dead"),
        this.ctx.api.get("/messages?status=failed"),
        this.ctx.api.get("/messages"),
      ]);
      clearError(errorEl);
      this.problems = [...dead.messages, ...failed.messages].sort((a, b) => b.id - a.id);
      this.log = log.messages;
      this.render();
    } catch (err) {
      showFuError(errorEl, err);
    }
  }

  render() {
    const problems = $("[data-fu-problems]");
    $("[data-fu-problems-empty]").hidden = this.problems.length > 0;
    problems.replaceChildren(...this.problems.map((m) => this._problem(m)));
    $("[data-fu-log-empty]").hidden = this.log.length > 0;
    $("[data-fu-log]").replaceChildren(...this.log.map((m) => this._logRow(m)));
  }

  /** Where a message came from: its journey's name (and step) or its campaign. */
  _origin(m) {
    const span = el("span", "muted f-origin");
    if (m.journey_id !== null && m.journey_id !== undefined) {
      const name = this.journeyNames.get(m.journey_id);
      setText(span, "fu.log.from_journey", { name: name || `#${m.journey_id}`, n: (m.step ?? 0) + 1 });
    } else if (m.campaign_id !== null && m.campaign_id !== undefined) {
      const name = this.campaignNames.get(m.campaign_id) || `#${m.campaign_id}`;
      setText(span, "fu.log.from_campaign", { name });
    }
    return span;
  }

  _problem(m) {
    const li = el("li", "f-problem");
    li.dataset.messageId = String(m.id);
    li.dataset.status = m.status;
    const head = el("div", "f-p-head");
    const channel = el("span", "muted", channelLabel(m.channel));
    head.append(el("b", "f-p-template", m.template), channel, statusBadge(m.status));
    const retry = button("fu.act.retry", { fuAct: "retry" }, "s-btn");
    retry.disabled = this.busy.has(m.id);
    head.append(retry);
    const meta = el("p", "muted f-p-meta");
    const attempts = el("span");
    setText(attempts, "fu.log.attempts", { n: m.attempts });
    meta.append(this._origin(m), attempts, el("span", "", whenText(m.created_ms)));
    const error = el("p", "error-text f-p-error");
    error.setAttribute("role", "alert");
    li.append(head, meta);
    if (m.reason) li.append(reasonText(m.reason));
    li.append(error);
    return li;
  }

  _logRow(m) {
    const tr = el("tr");
    tr.dataset.messageId = String(m.id);
    const time = el("td", "muted", whenText(m.sent_ms || m.created_ms));
    const what = el("td", "f-l-what");
    what.append(el("b", "", m.template), this._origin(m));
    const status = el("td");
    status.append(statusBadge(m.status));
    const reason = el("td", "f-l-reason");
    if (m.reason) reason.append(reasonText(m.reason));
    tr.append(time, what, el("td", "", channelLabel(m.channel)), status, reason);
    return tr;
  }

  async retry(m, row) {
    const findButton = () => $(`[data-fu-problems] [data-message-id="${m.id}"] [data-fu-act=retry]`);
    const errorEl = row.querySelector(".f-p-error");
    await rowAction(this, { id: m.id, button: findButton, errorEl }, async () => {
      await this.ctx.api.post(`/messages/${m.id}/retry`);
      this.ctx.done("fu.done.retried");
    });
  }

  _bind() {
    $("[data-fu-problems]").addEventListener("click", (e) => {
      const b = e.target.closest("[data-fu-act=retry]");
      const row = e.target.closest("[data-message-id]");
      if (!b || !row || b.disabled) return;
      const m = this.problems.find((x) => String(x.id) === row.dataset.messageId);
      if (m) this.retry(m, row);
    });
    $("[data-fu-refresh]").addEventListener("click", () => this.ctx.reload());
  }
}
