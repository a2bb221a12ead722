// The console's Selling tab: puts the shelf, the launch form, the live deals and the sales figures
// together, and re-renders only what an event touched (the tab bar itself is tabs.js).
import { LaunchForm } from "/console-assets/launch.js";
import { DealsView } from "/console-assets/deals.js";
import { ProductsView } from "/console-assets/products.js";
import { SalesView } from "/console-assets/sales.js";
import { PresetsView } from "/console-assets/presets.js";

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
    this.presets = new PresetsView(opts, "discount");
    this.products = new ProductsView({ ...opts, onDeal: (id) => this.launch.selectProduct(id) });
  }

  /** Take the latest state; ``type`` is the event that produced it (null: redraw everything). */
  update(state, type = null) {
    if (!state) return;
    const parts = type === null ? null : TOUCHES[type];
    if (parts === undefined) return; // an event of another tab
    const touched = (part) => parts === null || parts.includes(part);
    if (type === null) this.presets.refresh();
    if (touched("shelf")) this.products.update(state);
    if (touched("launch")) this.launch.update(state);
    if (touched("deals")) this.deals.update(state);
    if (touched("claims") || touched("funnel")) {
      this.sales.update(state, { claims: touched("claims"), funnel: touched("funnel"), shop: parts === null });
    }
  }
}
