// The launch form of a time-limited discount: which product, the deal price (percent off or a price),
// how many units, for how long, for whom, how long a claim holds its unit, and an optional delay.
import { isBusy } from "/static/js/busy.js";
import { currentLang, setText } from "/static/js/i18n.js";
import { FormError, el, sendForm, wholeNumber } from "/console-assets/forms.js";
import { formatMoney, parseMajor, toMajor } from "/static/js/money.js";

const $ = (sel) => document.querySelector(sel);
// The server's limits (server/discounts/rules.py), checked here first for a precise hint.
const MAX_QUANTITY = 100_000;
const MAX_PER_VIEWER = 100;
const MIN_DURATION_SECS = 10;
const MAX_DURATION_SECS = 86_400;
const MAX_WATCH_MINUTES = 600;
const MAX_HOLD_MINUTES = 1440;
const MAX_START_DELAY_SECS = 3600;

function pressed(group, value) {
  for (const b of group.querySelectorAll("button[data-value]")) {
    b.setAttribute("aria-pressed", String(b.dataset.value === value));
  }
}

/** The deal price of ``percent`` off a list price, rounded as the server does (half up). */
export function percentPrice(listMinor, percent) {
  return Math.floor((listMinor * (100 - percent) + 50) / 100);
}

export class LaunchForm {
  /** @param {{request: (type: string, data?: object) => Promise<any>, done: (key: string, vars?: object) => void}} opts */
  constructor(opts) {
    this.opts = opts;
    this.form = $("[data-launch-form]");
    this.select = $("[data-launch-product]");
    this.priceInput = $("[data-launch-price]");
    this.mode = "percent";
    this.duration = "60";
    this.products = [];
    this.pinnedId = null;
    this.chosen = null; // a product the host picked here (else the pinned one is proposed)
    this.optionsKey = "";
    this._bind();
  }

  update(state) {
    this.products = state.products || [];
    this.pinnedId = state.pinned ? state.pinned.product_id : null;
    this._options();
    this._preview();
  }

  /** Propose a product (the shelf's Deal button) and put the cursor on the price. */
  selectProduct(id) {
    this.chosen = id;
    this.select.value = String(id);
    this._preview();
    this.form.scrollIntoView({ block: "nearest", behavior: "smooth" });
    this.priceInput.focus();
  }

  product() {
    return this.products.find((p) => p.id === Number(this.select.value)) || null;
  }

  _options() {
    const key = JSON.stringify([currentLang(), this.products.map((p) => [p.id, p.name, p.price_minor, p.currency])]);
    if (key !== this.optionsKey) {
      this.optionsKey = key;
      const options = this.products.map((p) => {
        const option = el("option", "", `${p.name} · ${formatMoney(p.price_minor, p.currency)}`);
        option.value = String(p.id);
        return option;
      });
      if (!options.length) {
        const none = el("option");
        none.value = "";
        none.disabled = true;
        setText(none, "sell.launch.no_products");
        options.push(none);
      }
      this.select.replaceChildren(...options);
    }
    const ids = this.products.map((p) => p.id);
    const want = ids.includes(this.chosen) ? this.chosen : ids.includes(this.pinnedId) ? this.pinnedId : ids[0];
    if (want !== undefined && document.activeElement !== this.select) this.select.value = String(want);
    $("[data-launch-submit]").disabled = !ids.length;
  }

  /** The deal price the form describes, in minor units, or null while it is incomplete. */
  _dealPrice(product) {
    if (!product) return null;
    if (this.mode === "percent") {
      const percent = wholeNumber(this.priceInput.value, 1, 99);
      return percent === null ? null : percentPrice(product.price_minor, percent);
    }
    return parseMajor(this.priceInput.value, product.currency);
  }

  _preview() {
    const product = this.product();
    const unit = $("[data-launch-unit]");
    unit.textContent = this.mode === "percent" ? "%" : product ? product.currency : "";
    this.priceInput.placeholder = this.mode === "percent" ? "30" : product ? toMajor(product.price_minor, product.currency) : "";
    const preview = $("[data-launch-preview]");
    const price = this._dealPrice(product);
    if (price === null || price > product.price_minor) {
      preview.textContent = "";
      delete preview.dataset.i18n;
      return;
    }
    const off = product.price_minor ? Math.round((1 - price / product.price_minor) * 100) : 0;
    setText(preview, "sell.launch.preview", {
      price: formatMoney(price, product.currency),
      list: formatMoney(product.price_minor, product.currency),
      off,
    });
  }

  /** The form as a discount.launch message, or FormError naming the first bad field. */
  read() {
    const f = this.form.elements;
    const product = this.product();
    if (!product) throw new FormError("sell.v.product", undefined, this.select);
    const data = { product_id: product.id };
    if (this.mode === "percent") {
      const percent = wholeNumber(this.priceInput.value, 1, 99);
      if (percent === null) throw new FormError("sell.v.percent", undefined, this.priceInput);
      data.percent_off = percent;
    } else {
      const price = parseMajor(this.priceInput.value, product.currency);
      if (price === null) throw new FormError("sell.v.deal_price", { currency: product.currency }, this.priceInput);
      if (price > product.price_minor) {
        throw new FormError("sell.v.above_list", { list: formatMoney(product.price_minor, product.currency) }, this.priceInput);
      }
      data.price_minor = price;
    }
    const whole = (field, low, high, fallback) => {
      const raw = field.value.trim() === "" && fallback !== undefined ? String(fallback) : field.value;
      const n = field.validity.badInput ? null : wholeNumber(raw, low, high);
      if (n === null) throw new FormError("sell.v.range", { low, high }, field);
      return n;
    };
    data.quantity = whole(f.quantity, 1, MAX_QUANTITY);
    data.per_viewer_limit = whole(f.per_viewer_limit, 1, MAX_PER_VIEWER, 1);
    data.duration_secs =
      this.duration === "custom" ? whole(f.duration_secs, MIN_DURATION_SECS, MAX_DURATION_SECS) : Number(this.duration);
    data.audience = f.audience.value;
    if (data.audience === "watchers") data.watch_minutes = whole(f.watch_minutes, 1, MAX_WATCH_MINUTES);
    data.hold_secs = whole(f.hold_minutes, 1, MAX_HOLD_MINUTES, 15) * 60;
    data.starts_in_secs = whole(f.starts_in_secs, 0, MAX_START_DELAY_SECS, 0);
    return data;
  }

  async submit() {
    const submit = $("[data-launch-submit]");
    await sendForm(submit, $("[data-launch-error]"), async () => {
      const data = this.read();
      await this.opts.request("discount.launch", data);
      const product = this.product();
      this.opts.done(data.starts_in_secs ? "sell.launch.scheduled" : "sell.launch.done", {
        name: product ? product.name : "",
      });
    });
    // Every product gone meanwhile: nothing to launch, the button stays off.
    if (!isBusy(submit)) submit.disabled = !this.products.length;
  }

  _bind() {
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    this.select.addEventListener("change", () => {
      this.chosen = Number(this.select.value);
      this._preview();
    });
    this.priceInput.addEventListener("input", () => this._preview());
    const modes = $("[data-price-mode]");
    modes.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-value]");
      if (!b || b.dataset.value === this.mode) return;
      this.mode = b.dataset.value;
      pressed(modes, this.mode);
      this.priceInput.value = "";
      this._preview();
      this.priceInput.focus();
    });
    const durations = $("[data-duration]");
    const custom = $("[data-duration-custom]");
    durations.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-value]");
      if (!b) return;
      this.duration = b.dataset.value;
      pressed(durations, this.duration);
      custom.hidden = $("[data-duration-unit]").hidden = this.duration !== "custom";
      if (this.duration === "custom") custom.focus();
    });
    const audience = this.form.elements.audience;
    audience.addEventListener("change", () => {
      $("[data-watch-field]").hidden = audience.value !== "watchers";
    });
  }
}

