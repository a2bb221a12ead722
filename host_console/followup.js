// The console's Follow-up tab: journeys (followup_journeys.js, the editor in followup_journey_form.js),
// message templates, campaigns, delivery and settings of follow-up messaging. The overview comes from
// the follow-up API when the tab is shown and after each change; campaign progress, the dead-letter
// count and the alerts also come live with the host's "followup" event (state.followup).
import { clearError } from "/console-assets/forms.js";
import { FollowupApi, showFuError } from "/console-assets/followup_api.js";
import { CampaignsView } from "/console-assets/followup_campaigns.js";
import { DeliveryView } from "/console-assets/followup_delivery.js";
import { JourneysView } from "/console-assets/followup_journeys.js";
import { SettingsView } from "/console-assets/followup_settings.js";
import { TemplatesView } from "/console-assets/followup_templates.js";

const $ = (sel) => document.querySelector(sel);

function summaryOf(source) {
  return { campaigns: source.campaigns || [], dead: source.dead || 0, alerts: source.alerts || [] };
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

  _renderLive() {
    if (!this.summary) return;
    this.campaigns.setCampaigns(this.summary.campaigns);
    this.delivery.setLive(this.summary);
  }
}
