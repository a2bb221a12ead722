// Deals and draws prepared in the studio, listed in the Selling and Draws tabs ("Prepared") with one
// Launch button each: discount.preset / draw.preset over the WebSocket. The list comes from
// GET /api/rooms/{room}/presets on the console's session; Launch is hidden when the console's scopes
// (roles.js, from the welcome) lack the one the action needs.
import { api } from "/static/js/http.js";
import { setText, t } from "/static/js/i18n.js";
import { button, el } from "/console-assets/forms.js";
import { can } from "/console-assets/roles.js";

const ACTION = { discount: "discount.preset", draw: "draw.preset" };
const SCOPE = { discount: "deals:run", draw: "draws:run" };
const DONE = { discount: "presets.done.discount", draw: "presets.done.draw" };

export class PresetsView {
  /**
   * @param {{request: (type: string, data?: object) => Promise<any>, roomId: string,
   *          done: (key: string, vars?: object) => void}} opts
   * @param {"discount" | "draw"} kind
   */
  constructor(opts, kind) {
    this.opts = opts;
    this.kind = kind;
    this.root = document.querySelector(`[data-presets="${kind}"]`);
    this.presets = [];
    this.loading = null;
    if (this.root) this.refresh();
  }

  /** Read the list again (on a snapshot: a reconnect may follow changes made in the studio). */
  refresh() {
    if (!this.root || this.loading) return this.loading;
    this.loading = api("GET", `/api/rooms/${encodeURIComponent(this.opts.roomId)}/presets`)
      .then((data) => {
        this.presets = (data.presets || []).filter((p) => p.kind === this.kind);
        this.render();
      })
      .catch(() => {
        /* the studio's presets are a convenience: the launch forms still work */
      })
      .finally(() => {
        this.loading = null;
      });
    return this.loading;
  }

  render() {
    const list = this.root.querySelector("[data-presets-list]");
    const empty = this.root.querySelector("[data-presets-empty]");
    this.root.hidden = false;
    empty.hidden = this.presets.length > 0;
    const allowed = can(SCOPE[this.kind]);
    list.replaceChildren(
      ...this.presets.map((preset) => {
        const li = el("li", "c-preset");
        li.dataset.presetId = preset.id;
        li.append(el("span", "c-preset-label", preset.label));
        if (preset.launched_ms) {
          const when = el("span", "muted");
          setText(when, "presets.launched");
          li.append(" ", when);
        }
        if (allowed) {
          const launch = button("presets.launch", { presetLaunch: preset.id }, "primary");
          launch.addEventListener("click", () => this.launch(preset, launch));
          li.append(" ", launch);
        }
        return li;
      }),
    );
  }

  async launch(preset, control) {
    const error = this.root.querySelector("[data-presets-error]");
    error.textContent = "";
    control.disabled = true;
    try {
      await this.opts.request(ACTION[this.kind], { id: preset.id });
      this.opts.done(DONE[this.kind]);
      await this.refresh();
    } catch (err) {
      error.textContent = (err && err.message) || t("presets.failed");
    } finally {
      control.disabled = false;
    }
  }
}
