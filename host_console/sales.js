// What selling brought: the live claims (who took a unit, with which code, and what became of it),
// the funnel per product (distinct viewers at each step), and the shop's webhook settings.
import { currentLang, setText } from "/static/js/i18n.js";
import { copyText, el } from "/console-assets/forms.js";

const $ = (sel) => document.querySelector(sel);
// The funnel's main path, then the side figures (shown muted), as in server/intents/log.py FUNNEL.
const STEPS = ["views", "clicks", "claims", "redeemed", "details", "paid"];
const SIDE_STEPS = new Set(["details", "paid"]);

function timeText(ms) {
  return new Date(ms).toLocaleTimeString(currentLang(), {
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  });
}

export class SalesView {
  /** @param {{base: string, done: (key: string, vars?: object) => void}} opts */
  constructor(opts) {
    this.opts = opts;
    this.claimRows = new Map();
    this.shop = null;
    this.secretShown = false;
    this._bind();
  }

  update(state, { claims = true, funnel = true, shop = true } = {}) {
    const names = new Map((state.products || []).map((p) => [p.id, p.name]));
    const productOf = new Map((state.discounts || []).map((d) => [d.id, d.product_id]));
    if (claims) this.renderClaims(state.claims || [], names, productOf);
    if (funnel) this.renderFunnel(state.sales || { products: {}, followers: 0 }, state.products || [], names);
    if (shop) this.renderShop(state.shop || null);
  }

  renderClaims(claims, names, productOf) {
    const body = $("[data-claims]");
    const shown = [...claims].sort((a, b) => b.id - a.id); // newest first
    const keep = new Set(shown.map((c) => c.id));
    for (const [id, row] of this.claimRows) {
      if (!keep.has(id)) {
        row.remove();
        this.claimRows.delete(id);
      }
    }
    shown.forEach((c, i) => {
      let row = this.claimRows.get(c.id);
      if (!row) {
        row = el("tr");
        row.dataset.claimId = String(c.id);
        const status = el("span", "s-claim-status");
        const statusCell = el("td");
        statusCell.append(status);
        const who = el("td", "s-who");
        who.append(el("span", "s-name"), el("span", "s-what muted"));
        row.append(el("td", "s-time"), who, el("td", "s-code"), statusCell);
        this.claimRows.set(c.id, row);
      }
      const [time, whoCell, code, statusCell] = row.children;
      const [who, what] = whoCell.children;
      const stamp = timeText(c.created_ms);
      if (time.textContent !== stamp) time.textContent = stamp;
      if (c.name) {
        who.textContent = c.name;
        delete who.dataset.i18n;
      } else {
        setText(who, "console.item.anonymous");
      }
      // Claims name their discount; only the room's latest discounts are held, so an old one may be unknown.
      const productId = productOf.get(c.discount_id);
      what.textContent = productId == null ? "" : names.get(productId) || `#${productId}`;
      code.textContent = c.code;
      const status = statusCell.firstChild;
      status.dataset.status = c.status;
      row.dataset.status = c.status;
      setText(status, `sell.claim.${c.status}`);
      if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null);
    });
    $("[data-claims-empty]").hidden = shown.length > 0;
    const reserved = claims.filter((c) => c.status === "reserved").length;
    setText($("[data-claims-count]"), "sell.claims.count", { n: claims.length, reserved });
  }

  renderFunnel(sales, products, names) {
    $("[data-followers]").textContent = String(sales.followers || 0);
    const ids = products.map((p) => String(p.id));
    for (const id of Object.keys(sales.products || {})) if (!ids.includes(id)) ids.push(id);
    $("[data-funnel]").replaceChildren(
      ...ids.map((id) => {
        const steps = (sales.products || {})[id] || {};
        const row = el("tr");
        row.dataset.productId = id;
        const name = el("th", "", names.get(Number(id)) || `#${id}`);
        name.scope = "row";
        row.append(name);
        const views = steps.views || 0;
        for (const step of STEPS) {
          const n = steps[step] || 0;
          const cell = el("td", SIDE_STEPS.has(step) ? "s-side" : "");
          cell.dataset.step = step;
          cell.append(el("b", "s-n", String(n)));
          if (step !== "views" && views > 0) {
            const pct = el("span", "s-pct muted");
            setText(pct, "sell.funnel.pct", { n: Math.round((n / views) * 100) });
            cell.append(pct);
          }
          row.append(cell);
        }
        return row;
      }),
    );
  }

  webhookUrl() {
    return this.shop ? `${this.opts.base}${this.shop.webhook_path}` : "";
  }

  renderShop(shop) {
    this.shop = shop;
    $("[data-webhook-url]").textContent = shop ? this.webhookUrl() : "—";
    const secret = $("[data-webhook-secret]");
    const hidden = !this.secretShown;
    secret.dataset.hidden = String(hidden);
    secret.textContent = !shop ? "—" : hidden ? `${shop.webhook_secret.slice(0, 6)}${"•".repeat(16)}` : shop.webhook_secret;
    const toggle = $("[data-secret-toggle]");
    toggle.setAttribute("aria-pressed", String(!hidden));
    setText(toggle, hidden ? "sell.shop.show" : "sell.shop.hide");
  }

  _bind() {
    $("[data-secret-toggle]").addEventListener("click", () => {
      this.secretShown = !this.secretShown;
      this.renderShop(this.shop);
    });
    for (const b of document.querySelectorAll("[data-copy-webhook]")) {
      b.addEventListener("click", () => {
        if (!this.shop) return;
        const text = b.dataset.copyWebhook === "url" ? this.webhookUrl() : this.shop.webhook_secret;
        copyText(text, () => this.opts.done("host.copied"));
      });
    }
  }
}

