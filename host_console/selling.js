// The console's Selling tab: puts the shelf, the launch form, the live deals and the sales figures
// together, switches between the Questions and Selling tabs, and re-renders only what an event touched.
import { LaunchForm } from "/console-assets/launch.js";
import { DealsView } from "/console-assets/deals.js";
import { ProductsView } from "/console-assets/products.js";
import { SalesView } from "/console-assets/sales.js";

const $ = (sel) => document.querySelector(sel);
const TABS = ["questions", "selling"];
// Which parts of the tab each room event changes (null = a snapshot or a language switch: all).
const TOUCHES = {
  products: ["shelf", "launch", "deals", "claims", "funnel"],
  pinned: ["shelf", "launch", "deals"],
  discount: ["deals", "claims"],
  stock: ["deals"],
  claims: ["claims"],
  sales: ["funnel"],
};

export class SellingView {
  /**
   * @param {{request: (type: string, data?: object) => Promise<any>, roomId: string, base: string,
   *          serverNow: () => number, done: (key: string, vars?: object) => void}} opts
   */
  constructor(opts) {
    this.launch = new LaunchForm(opts);
    this.deals = new DealsView(opts);
    this.sales = new SalesView(opts);
    this.products = new ProductsView({ ...opts, onDeal: (id) => this.launch.selectProduct(id) });
    this._bindTabs();
  }

  /** Take the latest state; ``type`` is the event that produced it (null: redraw everything). */
  update(state, type = null) {
    if (!state) return;
    const parts = type === null ? null : TOUCHES[type];
    if (parts === undefined) return; // an event of the question side
    const touched = (part) => parts === null || parts.includes(part);
    if (touched("shelf")) this.products.update(state);
    if (touched("launch")) this.launch.update(state);
    if (touched("deals")) this.deals.update(state);
    if (touched("claims") || touched("funnel")) {
      this.sales.update(state, { claims: touched("claims"), funnel: touched("funnel"), shop: parts === null });
    }
  }

  active() {
    return this.tab === "selling";
  }

  show(tab, { remember = true } = {}) {
    this.tab = TABS.includes(tab) ? tab : "questions";
    for (const b of document.querySelectorAll("[data-tabs] [data-tab]")) {
      const on = b.dataset.tab === this.tab;
      b.setAttribute("aria-selected", String(on));
      b.tabIndex = on ? 0 : -1;
    }
    for (const panel of document.querySelectorAll("[data-panel]")) panel.hidden = panel.dataset.panel !== this.tab;
    document.body.dataset.consoleTab = this.tab;
    if (remember) history.replaceState(null, "", this.tab === "selling" ? "#selling" : location.pathname + location.search);
  }

  _bindTabs() {
    const bar = $("[data-tabs]");
    bar.addEventListener("click", (e) => {
      const b = e.target.closest("[data-tab]");
      if (b) this.show(b.dataset.tab);
    });
    bar.addEventListener("keydown", (e) => {
      if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
      const next = TABS[(TABS.indexOf(this.tab) + (e.key === "ArrowRight" ? 1 : TABS.length - 1)) % TABS.length];
      this.show(next);
      $(`[data-tab="${next}"]`).focus();
      e.preventDefault();
    });
    $("[data-goto-selling]").addEventListener("click", () => this.show("selling"));
    window.addEventListener("hashchange", () => this.show(location.hash === "#selling" ? "selling" : "questions", { remember: false }));
    this.show(location.hash === "#selling" ? "selling" : "questions", { remember: false });
  }
}
