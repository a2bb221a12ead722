// The shelf in the Selling tab: the product list (pin, deal, edit, remove), the add/edit form, and
// the CSV/JSON import (a file posted to the import URL on the console's session cookie).
import { api } from "/static/js/http.js";
import { setText, t } from "/static/js/i18n.js";
import { FormError, button, clearError, el, httpUrl, sendForm, showError, wholeNumber } from "/console-assets/forms.js";
import { fractionDigits, formatMoney, parseMajor, toMajor } from "/static/js/money.js";

const $ = (sel) => document.querySelector(sel);
// The server's limits (server/products/rules.py), checked here first so the host gets a precise hint.
const NAME_MAX_CHARS = 200;
const DESCRIPTION_MAX_CHARS = 2000;
const MAX_PRICE_MINOR = 10 ** 10;
const MAX_STOCK = 10_000_000;

export class ProductsView {
  /**
   * @param {{request: (type: string, data?: object) => Promise<any>, roomId: string,
   *          done: (key: string, vars?: object) => void, onDeal: (productId: number) => void}} opts
   */
  constructor(opts) {
    this.opts = opts;
    this.products = [];
    this.pinnedId = null;
    this.rows = new Map();
    this.list = $("[data-shelf]");
    this.form = $("[data-product-form]");
    this.editing = null; // the id of the product in the form, or null when adding
    this._bind();
  }

  update(state) {
    this.products = state.products || [];
    this.pinnedId = state.pinned ? state.pinned.product_id : null;
    if (this.editing !== null && !this.products.some((p) => p.id === this.editing)) this.resetForm();
    this.render();
  }

  render() {
    setText($("[data-shelf-count]"), "sell.products.count", { n: this.products.length });
    $("[data-shelf-empty]").hidden = this.products.length > 0;
    const ids = this.products.map((p) => p.id);
    for (const [id, row] of this.rows) {
      if (!ids.includes(id)) {
        row.remove();
        this.rows.delete(id);
      }
    }
    this.products.forEach((p, i) => {
      let row = this.rows.get(p.id);
      if (!row) {
        row = this._createRow(p.id);
        this.rows.set(p.id, row);
      }
      this._fillRow(row, p);
      if (this.list.children[i] !== row) this.list.insertBefore(row, this.list.children[i] || null);
    });
  }

  _createRow(id) {
    const li = el("li", "s-product");
    li.dataset.productId = String(id);
    const thumb = el("div", "s-thumb");
    const img = el("img");
    img.alt = "";
    img.loading = "lazy";
    img.referrerPolicy = "no-referrer";
    img.addEventListener("error", () => (img.hidden = true));
    thumb.append(img);
    const main = el("div", "s-p-main");
    const name = el("b", "s-p-name");
    const pin = el("span", "s-pin-badge");
    setText(pin, "sell.products.pinned");
    const meta = el("div", "s-p-meta muted");
    main.append(name, pin, meta);
    const actions = el("div", "s-p-actions");
    actions.append(
      button("sell.products.pin", { act: "pin" }, "s-btn"),
      button("sell.products.deal", { act: "deal" }, "s-btn"),
      button("sell.products.edit", { act: "edit" }, "s-btn"),
      button("sell.products.remove", { act: "remove" }, "s-btn s-danger"),
    );
    li.append(thumb, main, actions);
    return li;
  }

  _fillRow(li, p) {
    const pinned = p.id === this.pinnedId;
    li.classList.toggle("is-pinned", pinned);
    li.classList.toggle("is-editing", p.id === this.editing);
    const img = li.querySelector(".s-thumb img");
    if (p.image_url) {
      if (img.getAttribute("src") !== p.image_url) {
        img.hidden = false;
        img.src = p.image_url;
      }
    } else {
      img.removeAttribute("src");
      img.hidden = true;
    }
    li.querySelector(".s-p-name").textContent = p.name;
    li.querySelector(".s-pin-badge").hidden = !pinned;
    const parts = [formatMoney(p.price_minor, p.currency), t("sell.products.stock", { n: p.stock })];
    if (p.sku) parts.push(t("sell.products.sku", { sku: p.sku }));
    li.querySelector(".s-p-meta").textContent = parts.join(" · ");
    const pin = li.querySelector("[data-act=pin]");
    setText(pin, pinned ? "sell.products.unpin" : "sell.products.pin");
    pin.setAttribute("aria-pressed", String(pinned));
  }

  _product(id) {
    return this.products.find((p) => p.id === id);
  }

  async _rowAction(act, product) {
    const errorEl = $("[data-shelf-error]");
    clearError(errorEl);
    try {
      if (act === "pin") {
        await this.opts.request("product.pin", { id: product.id === this.pinnedId ? null : product.id });
      } else if (act === "deal") {
        this.opts.onDeal(product.id);
      } else if (act === "edit") {
        this.edit(product);
      } else if (act === "remove") {
        if (!confirm(t("sell.products.confirm_remove", { name: product.name }))) return;
        await this.opts.request("product.remove", { id: product.id });
        this.opts.done("sell.products.removed");
      }
    } catch (err) {
      showError(errorEl, err);
    }
  }

  // --- the form -------------------------------------------------------------------------------------

  edit(p) {
    const f = this.form.elements;
    this.editing = p.id;
    f.id.value = String(p.id);
    f.name.value = p.name;
    f.currency.value = p.currency;
    f.price.value = toMajor(p.price_minor, p.currency);
    f.stock.value = String(p.stock);
    f.sku.value = p.sku || "";
    f.image_url.value = p.image_url || "";
    f.shop_url.value = p.shop_url || "";
    f.description.value = p.description || "";
    setText($("[data-product-form-title]"), "sell.product.edit_title", { name: p.name });
    setText($("[data-product-submit]"), "sell.product.save");
    $("[data-product-cancel]").hidden = false;
    clearError($("[data-product-error]"));
    this.render();
    this.form.scrollIntoView({ block: "nearest", behavior: "smooth" });
    f.name.focus();
  }

  resetForm() {
    this.editing = null;
    this.form.reset();
    this.form.elements.id.value = "";
    setText($("[data-product-form-title]"), "sell.product.add_title");
    setText($("[data-product-submit]"), "sell.product.add");
    $("[data-product-cancel]").hidden = true;
    clearError($("[data-product-error]"));
    this.render();
  }

  /** The form as a product.save message, or FormError naming the first bad field. */
  readForm() {
    const f = this.form.elements;
    const name = f.name.value.trim();
    if (!name) throw new FormError("sell.v.name", undefined, f.name);
    if ([...name].length > NAME_MAX_CHARS) throw new FormError("sell.v.too_long", { n: NAME_MAX_CHARS }, f.name);
    const currency = f.currency.value.trim().toUpperCase();
    if (!/^[A-Z]{3}$/.test(currency) || fractionDigits(currency) === null) {
      throw new FormError("sell.v.currency", undefined, f.currency);
    }
    const price = parseMajor(f.price.value, currency);
    if (price === null || price > MAX_PRICE_MINOR) {
      throw new FormError("sell.v.price", { digits: fractionDigits(currency), currency }, f.price);
    }
    // A number field holding text reads as "" (validity.badInput): that is an error, not a zero.
    const stock = f.stock.validity.badInput ? null : wholeNumber(f.stock.value || "0", 0, MAX_STOCK);
    if (stock === null) throw new FormError("sell.v.range", { low: 0, high: MAX_STOCK }, f.stock);
    const urls = {};
    for (const key of ["image_url", "shop_url"]) {
      const value = f[key].value.trim();
      if (value && !httpUrl(value)) throw new FormError("sell.v.url", undefined, f[key]);
      urls[key] = value || null;
    }
    const description = f.description.value.trim();
    if ([...description].length > DESCRIPTION_MAX_CHARS) {
      throw new FormError("sell.v.too_long", { n: DESCRIPTION_MAX_CHARS }, f.description);
    }
    const data = {
      name,
      price_minor: price,
      currency,
      stock,
      sku: f.sku.value.trim() || null,
      ...urls,
      description: description || null,
    };
    if (this.editing !== null) data.id = this.editing;
    return data;
  }

  save() {
    return sendForm($("[data-product-submit]"), $("[data-product-error]"), async () => {
      const data = this.readForm();
      const saved = await this.opts.request("product.save", data);
      this.opts.done(data.id ? "sell.product.saved" : "sell.product.added", { name: saved.name });
      this.resetForm();
      this.form.elements.name.focus();
    });
  }

  // --- import ---------------------------------------------------------------------------------------

  async importFile(file) {
    const result = $("[data-import-result]");
    clearError(result);
    result.classList.remove("error-text");
    setText(result, "sell.import.busy", { name: file.name });
    const type = /\.json$/i.test(file.name) || /json/i.test(file.type) ? "application/json" : "text/csv";
    try {
      const url = `/api/rooms/${encodeURIComponent(this.opts.roomId)}/products/import`;
      const body = await api("POST", url, file, { type });
      setText(result, "sell.import.done", { added: body.added, updated: body.updated });
      result.dataset.code = "ok";
    } catch (err) {
      result.classList.add("error-text");
      showError(result, err);
    }
  }

  _bind() {
    this.list.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-act]");
      const li = e.target.closest("[data-product-id]");
      const product = b && li ? this._product(Number(li.dataset.productId)) : null;
      if (product) this._rowAction(b.dataset.act, product);
    });
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.save();
    });
    $("[data-product-cancel]").addEventListener("click", () => this.resetForm());
    const input = $("[data-import-file]");
    input.addEventListener("change", async () => {
      const file = input.files && input.files[0];
      if (!file) return;
      try {
        await this.importFile(file);
      } finally {
        input.value = ""; // the same file, fixed, can be picked again
      }
    });
  }
}
