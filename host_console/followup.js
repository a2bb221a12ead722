// The console's Follow-up tab: journeys (followup_journeys.js, the editor in followup_journey_form.js),
// message templates, campaigns, delivery and settings of follow-up messaging. The overview comes from
// the follow-up API when the tab is shown and after each change; campaign progress, the dead-letter
// count and the alerts also come live with the host's "followup" event (state.followup). A channel that a
// journey or a waiting campaign uses but no process can send on is named at the top, with its setting.
import { setText } from "/static/js/i18n.js";
import { clearError, el } from "/console-assets/forms.js";
import { FollowupApi, channelOffWarning, showFuError } from "/console-assets/followup_api.js";
import { CampaignsView } from "/console-assets/followup_campaigns.js";
import { DeliveryView } from "/console-assets/followup_delivery.js";
import { JourneysView } from "/console-assets/followup_journeys.js";
import { SettingsView } from "/console-assets/followup_settings.js";
import { TemplatesView } from "/console-assets/followup_templates.js";

const $ = (sel) => document.querySelector(sel);

function summaryOf(source) {
  return {
    campaigns: source.campaigns || [],
    dead: source.dead || 0,
    uncertain: source.uncertain_resend || 0,
    alerts: source.alerts || [],
  };
}

export class FollowupView {
  /** @param {{roomId: string, done: (key: string, vars?: object) => void}} opts */
  constructor(opts) {
    this.api = new FollowupApi(opts.roomId);
    this.data = null; // the overview (GET /followup)
    this.summary = null; // campaigns, dead letters, alerts: from the state once it has them
    this.seenLive = null; // the state's followup part last taken (a language switch redraws the same)
    this.products = [];
    this.loading = null;
    this.again = false;
    const ctx = { api: this.api, done: opts.done, reload: () => this.load(), products: () => this.products };
    this.journeys = new JourneysView(ctx);
    this.templates = new TemplatesView(ctx);
    this.campaigns = new CampaignsView(ctx);
    this.delivery = new DeliveryView(ctx);
    this.settings = new SettingsView(ctx);
    this.panel = $("[data-panel=followup]");
    // Fresh figures each time the tab is opened (the funnel and the log are not pushed live).
    new MutationObserver(() => {
      if (!this.panel.hidden) this.load();
    }).observe(this.panel, { attributes: true, attributeFilter: ["hidden"] });
    if (!this.panel.hidden) this.load();
  }

  /** Take the latest state; ``type`` is the event that produced it (null: a snapshot, a language switch). */
  update(state, type = null) {
    if (!state || (type !== null && type !== "followup" && type !== "products")) return;
    this.products = state.products || [];
    if (type === "products") return;
    const live = state.followup;
    if (live && live !== this.seenLive) {
      this.seenLive = live;
      this._takeSummary(summaryOf(live));
    } else if (type === null && this.data) {
      this.render();
    }
  }

  _takeSummary(next) {
    const before = this.summary;
    this.summary = next;
    this._renderLive();
    if (!before || !this.data || this.panel.hidden) return;
    // A new alert may be a journey that paused itself; a new dead letter belongs in the lists.
    const known = new Set(before.alerts.map((a) => a.id));
    if (next.alerts.some((a) => !known.has(a.id)) || next.dead !== before.dead) this.load();
  }

  /** Fetch the overview and the message lists, then redraw. A call during a load loads once more after
   * it (what the first one read may predate the change that asked for the second). */
  load() {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = (async () => {
      do {
        this.again = false;
        await this._load();
      } while (this.again);
    })().finally(() => {
      this.loading = null;
    });
    return this.loading;
  }

  async _load() {
    const errorEl = $("[data-fu-load-error]");
    try {
      const [data] = await Promise.all([this.api.get(), this.delivery.load()]);
      clearError(errorEl);
      this.data = data;
      // The live summary comes in order on the WebSocket (snapshot, then "followup" events); a GET
      // answered after a newer event would put older figures back, so it only fills in before then.
      if (!this.seenLive) this.summary = summaryOf(data);
      this.render();
    } catch (err) {
      showFuError(errorEl, err);
    }
  }

  render() {
    const data = this.data;
    this.panel.dataset.loaded = "";
    this.delivery.setNames(data.journeys, data.campaigns);
    this.journeys.update(data);
    this.templates.update(data);
    this.campaigns.update(data);
    this.settings.update(data);
    this.delivery.render();
    this._renderLive();
  }

  /** The setup warnings: each channel in use (a journey's send step, a campaign still to go) that no
   * delivering process has configured, with who uses it; or that no such process runs at all. */
  _renderSetup() {
    const data = this.data;
    if (!data) return;
    const configured = new Set(data.channels || []);
    const users = new Map(); // channel -> names of the journeys and campaigns using it
    const use = (channel, name) => {
      if (channel === "auto" || configured.has(channel)) return;
      if (!users.has(channel)) users.set(channel, []);
      if (!users.get(channel).includes(name)) users.get(channel).push(name);
    };
    for (const j of data.journeys) for (const step of j.steps) if (step.send) use(step.send.channel, j.name);
    const campaigns = (this.summary && this.summary.campaigns) || data.campaigns || [];
    for (const c of campaigns) if (c.status === "scheduled" || c.status === "sending") use(c.channel, c.name);
    const items = [];
    if (configured.size === 0) {
      const li = el("li");
      li.dataset.fuSetupChannel = "none";
      setText(li, "fu.setup.none");
      items.push(li);
    } else {
      for (const [channel, names] of users) {
        const li = el("li");
        li.dataset.fuSetupChannel = channel;
        const text = el("span");
        channelOffWarning(text, channel, configured);
        const who = el("span", "muted");
        setText(who, "fu.setup.used_by", { names: names.join(", ") });
        li.append(text, who);
        items.push(li);
      }
    }
    $("[data-fu-setup-list]").replaceChildren(...items);
    $("[data-fu-setup]").hidden = items.length === 0;
  }

  _renderLive() {
    if (!this.summary) return;
    this._renderSetup();
    this.campaigns.setCampaigns(this.summary.campaigns);
    this.delivery.setLive(this.summary);
  }
}
