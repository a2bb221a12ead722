// The Follow-up tab's campaigns: a one-off send of a template to a segment of the room's audience, now
// or at a chosen time; then its progress and its counts by status, live from the "followup" event.
import { setText, t } from "/static/js/i18n.js";
import { FormError, button, el, sendForm } from "/console-assets/forms.js";
import {
  CHANNELS, NAME_MAX_CHARS, PENDING, channelLabel, channelOffWarning, countChip, fillSelect, numberText, option,
  rowAction, segmentLabel, showFuError, whenText,
} from "/console-assets/followup_api.js";

const $ = (sel) => document.querySelector(sel);
// The server takes a send time up to 90 days ahead.
const MAX_AHEAD_MS = 90 * 86_400_000;
// Status counts shown on a campaign, in this order (the others follow as they come).
const ORDER = ["sent", "delivered", "opened", "clicked", "scheduled", "claimed", "sending", "uncertain", "skipped",
  "capped", "stale", "failed", "dead", "cancelled"];

/** A time as a datetime-local value (local clock). */
function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

export class CampaignsView {
  /** @param {{api: object, done: (key: string, vars?: object) => void, reload: () => Promise<void>}} ctx */
  constructor(ctx) {
    this.ctx = ctx;
    this.data = null;
    this.campaigns = [];
    this.busy = new Set(); // campaign ids being cancelled
    this.form = $("[data-fu-campaign-form]");
    this.list = $("[data-fu-campaigns]");
    this._bind();
    this._whenChanged();
  }

  /** New overview data: the segment, channel and template choices follow it. */
  update(data) {
    this.data = data;
    const f = this.form.elements;
    fillSelect(
      f.segment,
      Object.entries(data.segments || {}).map(([s, n]) => option(s, "fu.segment.option", {
        segment: segmentLabel(s), n: numberText(n),
      })),
    );
    const configured = new Set(data.channels || []);
    fillSelect(f.channel, [
      option("auto", "fu.channel.auto"),
      ...CHANNELS.map((c) => option(c, configured.has(c) ? `fu.channel.${c}` : "fu.channel.off", {
        channel: channelLabel(c),
      })),
    ]);
    this._warnChannel();
    const keys = [...new Set(data.templates.map((tpl) => tpl.key))].sort();
    fillSelect(f.template, keys.map((k) => {
      const node = el("option", "", k);
      node.value = k;
      return node;
    }), keys.includes("post-stream") ? "post-stream" : undefined);
  }

  /** The live part: campaigns with their counts (newest first). */
  setCampaigns(campaigns) {
    this.campaigns = campaigns || [];
    this.render();
  }

  render() {
    setText($("[data-fu-campaign-count]"), "fu.campaigns.count", { n: this.campaigns.length });
    $("[data-fu-campaigns-empty]").hidden = this.campaigns.length > 0;
    this.list.replaceChildren(...this.campaigns.map((c) => this._row(c)));
  }

  _row(c) {
    const li = el("li", "f-campaign");
    li.dataset.campaignId = String(c.id);
    li.dataset.status = c.status;
    const head = el("div", "f-c-head");
    const status = el("span", "s-status f-c-status");
    status.dataset.status = c.status;
    status.dataset.fuCampaignStatus = "";
    setText(status, `fu.camp.${c.status}`);
    head.append(el("b", "f-c-name", c.name), status);
    if (c.status === "scheduled" || c.status === "sending") {
      const cancel = button("fu.act.cancel", { fuAct: "cancel" }, "s-btn s-danger");
      cancel.disabled = this.busy.has(c.id);
      head.append(cancel);
    }
    const meta = el("p", "muted f-c-meta");
    setText(meta, c.status === "scheduled" ? "fu.campaigns.meta_at" : "fu.campaigns.meta", {
      segment: segmentLabel(c.segment),
      channel: channelLabel(c.channel),
      template: c.template,
      when: whenText(c.send_ms),
    });
    const counts = c.counts || {};
    const listed = Object.values(counts).reduce((a, b) => a + b, 0);
    const total = Math.max(c.total || 0, listed);
    const waiting = [...PENDING].reduce((n, s) => n + (counts[s] || 0), 0);
    const done = listed - waiting;
    const share = total ? done / total : c.status === "done" ? 1 : 0;
    const bar = el("div", "s-bar f-c-bar");
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", String(total));
    bar.setAttribute("aria-valuenow", String(done));
    const fill = el("i");
    fill.style.width = `${Math.round(share * 100)}%`;
    bar.append(fill);
    const progress = el("p", "f-c-progress");
    progress.dataset.fuProgress = "";
    setText(progress, total || c.status !== "done" ? "fu.campaigns.progress" : "fu.campaigns.nobody", {
      done: numberText(done), total: numberText(total),
    });
    const chips = el("div", "f-funnel f-c-counts");
    const names = [...ORDER.filter((s) => s in counts), ...Object.keys(counts).filter((s) => !ORDER.includes(s))];
    for (const s of names) chips.append(countChip(`fu.msg.${s}`, counts[s], `is-${s}`));
    const error = el("p", "error-text f-c-error");
    error.setAttribute("role", "alert");
    li.append(head, meta, bar, progress, chips, error);
    return li;
  }

  // --- the form -------------------------------------------------------------------------------------

  /** A channel that is off on this server: say what to set up (its messages would all be skipped). */
  _warnChannel() {
    const configured = new Set((this.data && this.data.channels) || []);
    channelOffWarning($("[data-fu-campaign-channel-off]"), this.form.elements.channel.value, configured);
  }

  _whenChanged() {
    const later = this.form.elements.when.value === "later";
    const at = this.form.elements.send_at;
    at.disabled = !later;
    if (later && !at.value) at.value = localInput(Date.now() + 3600_000);
    at.min = localInput(Date.now());
  }

  read() {
    const f = this.form.elements;
    const name = f.name.value.trim();
    if (!name) throw new FormError("fu.v.name", undefined, f.name);
    if ([...name].length > NAME_MAX_CHARS) throw new FormError("sell.v.too_long", { n: NAME_MAX_CHARS }, f.name);
    if (!f.template.value) throw new FormError("fu.v.template", undefined, f.template);
    const data = { name, segment: f.segment.value, channel: f.channel.value, template: f.template.value };
    if (f.when.value === "later") {
      const ms = new Date(f.send_at.value).getTime(); // "YYYY-MM-DDTHH:MM" is read on the local clock
      if (!Number.isFinite(ms) || ms < Date.now() || ms > Date.now() + MAX_AHEAD_MS) {
        throw new FormError("fu.v.send_at", undefined, f.send_at);
      }
      data.send_ms = ms;
    }
    return data;
  }

  submit() {
    const send = async () => {
      const data = this.read();
      await this.ctx.api.post("/campaigns", data);
      this.ctx.done(data.send_ms ? "fu.done.campaign_scheduled" : "fu.done.campaign_started", { name: data.name });
      this.form.elements.name.value = "";
      await this.ctx.reload();
    };
    return sendForm($("[data-fu-campaign-submit]"), $("[data-fu-campaign-error]"), send, showFuError);
  }

  async cancel(c, row) {
    if (this.busy.has(c.id) || !confirm(t("fu.confirm_cancel", { name: c.name }))) return;
    const findButton = () => this.list.querySelector(`[data-campaign-id="${c.id}"] [data-fu-act=cancel]`);
    const errorEl = row.querySelector(".f-c-error");
    await rowAction(this, { id: c.id, button: findButton, errorEl }, async () => {
      await this.ctx.api.post(`/campaigns/${c.id}/cancel`);
      this.ctx.done("fu.done.campaign_cancelled", { name: c.name });
    });
  }

  _bind() {
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    for (const radio of this.form.querySelectorAll("[name=when]")) {
      radio.addEventListener("change", () => this._whenChanged());
    }
    this.form.elements.channel.addEventListener("change", () => this._warnChannel());
    this.list.addEventListener("click", (e) => {
      const b = e.target.closest("[data-fu-act=cancel]");
      const row = e.target.closest("[data-campaign-id]");
      if (!b || !row || b.disabled) return;
      const c = this.campaigns.find((x) => String(x.id) === row.dataset.campaignId);
      if (c) this.cancel(c, row);
    });
  }
}
