// The live discounts: a card per deal with its countdown (on the server's clock), units left, claims
// and status, and the controls of a running deal (more time, more stock, a new price, stop). Also the
// compact "on sale now" card beside the question queue and the count on the Selling tab.
import { setText, t } from "/static/js/i18n.js";
import { FormError, button, clearError, el, showError, wholeNumber } from "/console-assets/forms.js";
import { formatMoney, parseMajor } from "/static/js/money.js";
import { formatClock } from "/static/js/time.js";

const $ = (sel) => document.querySelector(sel);
const ACTIVE = new Set(["scheduled", "live", "sold_out"]);
// Ended deals stay on the board a while (the last few), dimmed, for their final counts.
const RECENT_ENDED = 5;
// Countdowns are redrawn this often; the text changes once a second, the lag stays under a frame or two.
const CLOCK_TICK_MS = 250;
// The last seconds of a deal are shown in red.
const URGENT_MS = 10_000;
const MAX_ADD_STOCK = 100_000;

function countdown(d) {
  const span = el("span", "s-clock");
  span.dataset.countdown = "";
  setCountdown(span, d);
  return span;
}

function setCountdown(span, d) {
  span.dataset.endsMs = String(d.ends_ms);
  span.dataset.startsMs = String(d.starts_ms);
  span.dataset.status = d.status;
}

export class DealsView {
  /**
   * @param {{request: (type: string, data?: object) => Promise<any>, done: (key: string, vars?: object) => void,
   *          serverNow: () => number}} opts
   */
  constructor(opts) {
    this.opts = opts;
    this.discounts = [];
    this.names = new Map();
    this.rows = new Map();
    this.list = $("[data-deal-list]");
    this._bind();
    setInterval(() => this.tick(), CLOCK_TICK_MS);
  }

  update(state) {
    this.discounts = state.discounts || [];
    this.names = new Map((state.products || []).map((p) => [p.id, p.name]));
    this.pinned = state.pinned ? state.pinned.product_id : null;
    this.render();
    this.renderMini();
    this.tick();
  }

  productName(id) {
    return this.names.get(id) || `#${id}`;
  }

  active() {
    return this.discounts.filter((d) => ACTIVE.has(d.status)).sort((a, b) => b.id - a.id);
  }

  render() {
    const ended = this.discounts
      .filter((d) => !ACTIVE.has(d.status))
      .sort((a, b) => b.id - a.id)
      .slice(0, RECENT_ENDED);
    const shown = [...this.active(), ...ended];
    const keep = new Set(shown.map((d) => d.id));
    for (const [id, card] of this.rows) {
      if (!keep.has(id)) {
        card.remove();
        this.rows.delete(id);
      }
    }
    shown.forEach((d, i) => {
      let card = this.rows.get(d.id);
      if (!card) {
        card = this._createCard(d);
        this.rows.set(d.id, card);
      }
      this._fillCard(card, d);
      if (this.list.children[i] !== card) this.list.insertBefore(card, this.list.children[i] || null);
    });
    $("[data-deal-empty]").hidden = shown.length > 0;
    const live = this.active().length;
    const badge = $("[data-sell-badge]");
    badge.hidden = live === 0;
    if (live) setText(badge, "sell.tab.live", { n: live });
  }

  /** The compact card in the Questions tab: what is pinned and the deals running now. */
  renderMini() {
    $("[data-sell-mini]").hidden = this.pinned == null && !this.active().length;
    const pinnedEl = $("[data-mini-pinned]");
    if (this.pinned != null) setText(pinnedEl, "sell.mini.pinned", { name: this.productName(this.pinned) });
    else setText(pinnedEl, "sell.mini.nothing_pinned");
    $("[data-mini-deals]").replaceChildren(
      ...this.active().map((d) => {
        const li = el("li");
        li.dataset.discountId = String(d.id);
        li.dataset.status = d.status;
        const name = el("b", "", this.productName(d.product_id));
        const left = el("span", "muted");
        setText(left, "sell.mini.left", { n: d.remaining, of: d.quantity });
        const status = el("span", "s-status");
        status.dataset.status = d.status;
        setText(status, `sell.status.${d.status}`);
        li.append(name, status, countdown(d), left);
        return li;
      }),
    );
  }

  /** Redraw every countdown from the server's clock (Date.now() + the offset measured by ping/pong). */
  tick() {
    const now = this.opts.serverNow();
    for (const span of document.querySelectorAll("[data-countdown]")) {
      const { status } = span.dataset;
      const ends = Number(span.dataset.endsMs);
      const starts = Number(span.dataset.startsMs);
      let ms = 0;
      if (status === "scheduled" && now < starts) ms = starts - now;
      // A clock estimate a few ms behind the server must not show a live deal longer than it runs.
      else if (status !== "ended") ms = Math.min(ends - now, ends - starts);
      const text = formatClock(ms, { pad: false });
      if (span.textContent !== text) span.textContent = text;
      span.classList.toggle("is-urgent", status !== "ended" && status !== "scheduled" && ms < URGENT_MS);
    }
  }

  _createCard(d) {
    const li = el("li", "s-deal");
    li.dataset.discountId = String(d.id);
    const head = el("div", "s-deal-head");
    head.append(el("b", "s-deal-name"), el("span", "s-status"));
    const price = el("div", "s-deal-price");
    price.append(el("b", "s-now"), el("s", "s-was muted"), el("span", "s-off"));
    const time = el("div", "s-deal-time");
    time.append(countdown(d), el("span", "s-clock-label muted"));
    const bar = el("div", "s-bar");
    bar.setAttribute("role", "progressbar");
    bar.append(el("i"));
    const counts = el("div", "s-deal-counts");
    const remaining = el("span", "s-remaining");
    const n = el("b");
    n.dataset.remaining = "";
    remaining.append(n, el("span", "s-of muted"));
    const claimed = el("span", "s-claimed");
    claimed.dataset.claimed = "";
    counts.append(remaining, claimed);
    const meta = el("div", "s-deal-meta muted");
    li.append(head, price, time, bar, counts, meta, this._controls(d), el("p", "error-text s-deal-error"));
    return li;
  }

  _controls(d) {
    const box = el("div", "s-deal-controls");
    const timeRow = el("div", "s-control-row");
    const timeLabel = el("span", "muted");
    setText(timeLabel, "sell.deal.time");
    timeRow.append(
      timeLabel,
      button("sell.deal.extend", { extend: "30" }, "s-btn", { n: 30 }),
      button("sell.deal.extend", { extend: "60" }, "s-btn", { n: 60 }),
    );
    const stockRow = el("form", "s-control-row");
    stockRow.dataset.addForm = "";
    const stockLabel = el("span", "muted");
    setText(stockLabel, "sell.deal.stock");
    const custom = el("input", "s-small");
    custom.name = "amount";
    custom.inputMode = "numeric";
    custom.autocomplete = "off";
    custom.dataset.addCustom = "";
    custom.setAttribute("aria-label", t("sell.deal.add_custom"));
    custom.dataset.i18nAriaLabel = "sell.deal.add_custom";
    const go = button("sell.deal.add", {}, "s-btn");
    go.type = "submit";
    stockRow.append(
      stockLabel,
      button("sell.deal.add_n", { add: "10" }, "s-btn", { n: 10 }),
      button("sell.deal.add_n", { add: "50" }, "s-btn", { n: 50 }),
      custom,
      go,
    );
    const priceRow = el("form", "s-control-row");
    priceRow.dataset.priceForm = "";
    const priceLabel = el("span", "muted");
    setText(priceLabel, "sell.deal.price");
    const mode = el("select", "s-small");
    mode.name = "mode";
    mode.setAttribute("aria-label", t("sell.launch.price"));
    mode.dataset.i18nAriaLabel = "sell.launch.price";
    for (const [value, key] of [["percent", "sell.price.percent"], ["price", "sell.price.fixed"]]) {
      const option = el("option");
      option.value = value;
      setText(option, key);
      mode.append(option);
    }
    const value = el("input", "s-small");
    value.name = "value";
    value.inputMode = "decimal";
    value.autocomplete = "off";
    value.setAttribute("aria-label", t("sell.deal.new_price"));
    value.dataset.i18nAriaLabel = "sell.deal.new_price";
    const apply = button("sell.deal.reprice", {}, "s-btn");
    apply.type = "submit";
    priceRow.append(priceLabel, mode, value, apply);
    const stop = button("sell.deal.stop", { stop: "" }, "s-btn s-danger s-stop");
    box.append(timeRow, stockRow, priceRow, stop);
    return box;
  }

  _fillCard(li, d) {
    li.dataset.status = d.status;
    li.querySelector(".s-deal-name").textContent = this.productName(d.product_id);
    const status = li.querySelector(".s-status");
    status.dataset.status = d.status;
    setText(status, `sell.status.${d.status}`);
    li.querySelector(".s-now").textContent = formatMoney(d.price_minor, d.currency);
    li.querySelector(".s-was").textContent = formatMoney(d.list_price_minor, d.currency);
    const off = d.percent_off ?? (d.list_price_minor ? Math.round((1 - d.price_minor / d.list_price_minor) * 100) : 0);
    setText(li.querySelector(".s-off"), "sell.deal.off", { n: off });
    setCountdown(li.querySelector("[data-countdown]"), d);
    const label = li.querySelector(".s-clock-label");
    if (d.status === "scheduled") setText(label, "sell.deal.starts_in");
    else if (d.status === "ended") setText(label, d.end_reason === "stopped" ? "sell.deal.stopped" : "sell.deal.timed_out");
    else setText(label, "sell.deal.left");
    const bar = li.querySelector(".s-bar");
    const share = d.quantity ? Math.min(1, d.remaining / d.quantity) : 0;
    bar.firstChild.style.width = `${share * 100}%`;
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", String(d.quantity));
    bar.setAttribute("aria-valuenow", String(d.remaining));
    li.querySelector("[data-remaining]").textContent = String(d.remaining);
    setText(li.querySelector(".s-of"), "sell.deal.of", { n: d.quantity });
    setText(li.querySelector("[data-claimed]"), "sell.deal.claimed", { n: d.claimed });
    const meta = [
      d.audience === "watchers" ? t("sell.deal.watchers", { n: d.watch_minutes }) : t(`sell.audience.${d.audience}`),
    ];
    meta.push(t("sell.deal.limit", { n: d.per_viewer_limit }), t("sell.deal.hold", { n: Math.round(d.hold_secs / 60) }));
    li.querySelector(".s-deal-meta").textContent = meta.join(" · ");
    li.querySelector(".s-deal-controls").hidden = d.status === "ended";
  }

  // --- controls -------------------------------------------------------------------------------------

  async _change(card, type, data, trigger) {
    const errorEl = card.querySelector(".s-deal-error");
    clearError(errorEl);
    if (trigger) trigger.disabled = true;
    try {
      await this.opts.request(type, { id: Number(card.dataset.discountId), ...data });
      return true;
    } catch (err) {
      showError(errorEl, err);
      return false;
    } finally {
      if (trigger) trigger.disabled = false;
    }
  }

  _deal(card) {
    return this.discounts.find((d) => d.id === Number(card.dataset.discountId));
  }

  _reprice(card, form) {
    const d = this._deal(card);
    const value = form.elements.value;
    if (form.elements.mode.value === "percent") {
      const percent = wholeNumber(value.value, 1, 99);
      if (percent === null) throw new FormError("sell.v.percent", undefined, value);
      return { percent_off: percent };
    }
    const price = parseMajor(value.value, d.currency);
    if (price === null) throw new FormError("sell.v.deal_price", { currency: d.currency }, value);
    if (price > d.list_price_minor) {
      throw new FormError("sell.v.above_list", { list: formatMoney(d.list_price_minor, d.currency) }, value);
    }
    return { price_minor: price };
  }

  _bind() {
    this.list.addEventListener("click", async (e) => {
      const b = e.target.closest("button");
      const card = e.target.closest("[data-discount-id]");
      if (!b || !card || b.type === "submit") return;
      if (b.dataset.extend) {
        await this._change(card, "discount.update", { extend_secs: Number(b.dataset.extend) }, b);
      } else if (b.dataset.add) {
        await this._change(card, "discount.update", { add_stock: Number(b.dataset.add) }, b);
      } else if (b.dataset.stop !== undefined) {
        if (!confirm(t("sell.deal.confirm_stop", { name: this.productName(this._deal(card).product_id) }))) return;
        if (await this._change(card, "discount.stop", {}, b)) this.opts.done("sell.deal.stopped_done");
      }
    });
    this.list.addEventListener("submit", async (e) => {
      e.preventDefault();
      const form = e.target;
      const card = form.closest("[data-discount-id]");
      const errorEl = card.querySelector(".s-deal-error");
      const trigger = form.querySelector("button[type=submit]");
      try {
        if (form.dataset.addForm !== undefined) {
          const field = form.elements.amount;
          const n = wholeNumber(field.value, 1, MAX_ADD_STOCK);
          if (n === null) throw new FormError("sell.v.range", { low: 1, high: MAX_ADD_STOCK }, field);
          if (await this._change(card, "discount.update", { add_stock: n }, trigger)) field.value = "";
        } else if (form.dataset.priceForm !== undefined) {
          const change = this._reprice(card, form);
          if (await this._change(card, "discount.update", change, trigger)) {
            form.elements.value.value = "";
            this.opts.done("sell.deal.repriced");
          }
        }
      } catch (err) {
        showError(errorEl, err);
      }
    });
  }
}
