// The form that sets up a lucky draw: the prize (one prize with a count, or tiers with eligibility
// and an order), how viewers enter, extra chances, and the room-wide rules (earlier winners, wins per
// viewer, time to claim). Checked here first for a precise hint; the server checks it all again.
import { setText, t } from "/static/js/i18n.js";
import { FormError, button, el, httpUrl, sendForm, wholeNumber } from "/console-assets/forms.js";

const $ = (sel) => document.querySelector(sel);
// The server's limits (server/draws/rules.py).
const TITLE_MAX_CHARS = 200;
const KEYWORD_MAX_CHARS = 40;
const MAX_TIERS = 10;
const MAX_WINNERS = 500;
const MAX_EXTRA_CHANCES = 10;
const MIN_WINDOW_SECS = 5;
const MAX_WINDOW_SECS = 3600;
const MAX_WINS = 100;
const MAX_CLAIM_HOURS = 720; // 30 days, the server's longest claim window
const WINDOW_MODES = new Set(["join", "everyone", "keyword", "shake"]);
const ELIGIBLE = ["all", "followers", "askers", "claimers", "buyers"];
const WEIGHTS = ["asked", "claimed", "paid", "delivered", "followed"];

function labelled(node, key) {
  node.setAttribute("aria-label", t(key));
  node.dataset.i18nAriaLabel = key;
  return node;
}

function tooLong(text, max) {
  return [...text].length > max;
}

/** A number field as a whole number in [low, high] (``fallback`` when empty), or FormError on it. */
function whole(field, low, high, fallback) {
  const raw = field.value.trim() === "" && fallback !== undefined ? String(fallback) : field.value;
  const n = field.validity.badInput ? null : wholeNumber(raw, low, high);
  if (n === null) throw new FormError("sell.v.range", { low, high }, field);
  return n;
}

function imageUrl(field) {
  const value = field.value.trim();
  if (value && !httpUrl(value)) throw new FormError("sell.v.url", undefined, field);
  return value || null;
}

export class DrawForm {
  /** @param {{request: (type: string, data?: object) => Promise<any>, done: (key: string, vars?: object) => void,
   *           fail: (target: Element, err: object, context: string) => void}} opts */
  constructor(opts) {
    this.opts = opts;
    this.form = $("[data-draw-form]");
    this.tierList = $("[data-tier-list]");
    this.kind = "single";
    this._bind();
    this._modeChanged();
  }

  // --- prize tiers ----------------------------------------------------------------------------------

  _tierRow() {
    const li = el("li", "d-tier");
    const name = labelled(el("input", "d-tier-name"), "draw.tier.name");
    name.name = "tier_name";
    name.maxLength = TITLE_MAX_CHARS;
    name.autocomplete = "off";
    name.placeholder = t("draw.tier.name");
    name.dataset.i18nPlaceholder = "draw.tier.name";
    const count = labelled(el("input", "d-tier-count"), "draw.tier.count");
    count.name = "tier_count";
    count.type = "number";
    count.min = "1";
    count.max = String(MAX_WINNERS);
    count.step = "1";
    count.value = "1";
    count.inputMode = "numeric";
    const image = labelled(el("input", "d-tier-image"), "draw.tier.image_url");
    image.name = "tier_image";
    image.type = "url";
    image.maxLength = 1000;
    image.autocomplete = "off";
    image.placeholder = "https://";
    const eligible = labelled(el("select", "d-tier-eligible"), "draw.tier.eligible");
    eligible.name = "tier_eligible";
    for (const value of ELIGIBLE) {
      const option = el("option");
      option.value = value;
      setText(option, `draw.eligible.${value}`);
      eligible.append(option);
    }
    const remove = button("draw.tier.remove", { tierRemove: "" }, "s-btn s-danger");
    li.append(name, count, eligible, remove, image);
    return li;
  }

  _addTier() {
    if (this.tierList.children.length >= MAX_TIERS) return;
    const row = this._tierRow();
    this.tierList.append(row);
    this._tiersChanged();
    return row;
  }

  _tiersChanged() {
    const rows = this.tierList.children.length;
    $("[data-tier-add]").disabled = rows >= MAX_TIERS;
    for (const b of this.tierList.querySelectorAll("[data-tier-remove]")) b.disabled = rows <= 1;
    [...this.tierList.children].forEach((row, i) => (row.dataset.tier = String(i + 1)));
  }

  _setKind(kind) {
    this.kind = kind;
    for (const b of this.form.querySelectorAll("[data-prize-kind] button")) {
      b.setAttribute("aria-pressed", String(b.dataset.value === kind));
    }
    for (const node of this.form.querySelectorAll("[data-single]")) node.hidden = kind !== "single";
    $("[data-tiers]").hidden = kind !== "tiers";
    if (kind === "tiers" && !this.tierList.children.length) {
      this._addTier();
      this._addTier();
    }
  }

  // --- entry mode -----------------------------------------------------------------------------------

  _modeChanged() {
    const mode = this.form.elements.mode.value;
    $("[data-window-field]").hidden = !WINDOW_MODES.has(mode);
    $("[data-keyword-field]").hidden = mode !== "keyword";
    setText($("[data-mode-hint]"), `draw.hint.${mode}`);
  }

  // --- reading and sending --------------------------------------------------------------------------

  /** The form as a draw.create message, or FormError naming the first bad field. */
  read() {
    const f = this.form.elements;
    const title = f.title.value.trim();
    if (!title) throw new FormError("draw.v.title", undefined, f.title);
    if (tooLong(title, TITLE_MAX_CHARS)) throw new FormError("sell.v.too_long", { n: TITLE_MAX_CHARS }, f.title);
    const mode = f.mode.value;
    const data = { title, mode };
    if (this.kind === "single") {
      data.count = whole(f.count, 1, MAX_WINNERS);
      const url = imageUrl(f.image_url);
      if (url) data.image_url = url;
    } else {
      data.tiers = [...this.tierList.children].map((row) => {
        const name = row.querySelector("[name=tier_name]");
        const tier = { name: name.value.trim() };
        if (!tier.name) throw new FormError("draw.v.tier_name", undefined, name);
        if (tooLong(tier.name, TITLE_MAX_CHARS)) throw new FormError("sell.v.too_long", { n: TITLE_MAX_CHARS }, name);
        tier.count = whole(row.querySelector("[name=tier_count]"), 1, MAX_WINNERS);
        const url = imageUrl(row.querySelector("[name=tier_image]"));
        if (url) tier.image_url = url;
        tier.eligible = row.querySelector("[name=tier_eligible]").value;
        return tier;
      });
      if (data.tiers.reduce((n, tier) => n + tier.count, 0) > MAX_WINNERS) {
        throw new FormError("draw.v.too_many", { n: MAX_WINNERS }, this.tierList.querySelector("[name=tier_count]"));
      }
      data.tier_order = f.tier_order.value;
    }
    if (mode === "keyword") {
      const keyword = f.keyword.value.trim();
      if (!keyword) throw new FormError("draw.v.keyword", undefined, f.keyword);
      if (tooLong(keyword, KEYWORD_MAX_CHARS)) {
        throw new FormError("sell.v.too_long", { n: KEYWORD_MAX_CHARS }, f.keyword);
      }
      data.keyword = keyword;
    }
    if (WINDOW_MODES.has(mode)) data.window_secs = whole(f.window_secs, MIN_WINDOW_SECS, MAX_WINDOW_SECS, 30);
    const weights = {};
    for (const action of WEIGHTS) {
      const n = whole(f[`weight_${action}`], 0, MAX_EXTRA_CHANCES, 0);
      if (n) weights[action] = n;
    }
    if (Object.keys(weights).length) data.weights = weights;
    data.exclude_winners = f.exclude_winners.checked;
    if (f.max_wins.value.trim() !== "" || f.max_wins.validity.badInput) data.max_wins = whole(f.max_wins, 1, MAX_WINS);
    data.claim_secs = whole(f.claim_hours, 1, MAX_CLAIM_HOURS, 24) * 3600;
    return data;
  }

  submit() {
    const send = async () => {
      const draw = await this.opts.request("draw.create", this.read());
      this.opts.done(draw.status === "open" ? "draw.form.done_open" : "draw.form.done_ready", { title: draw.title });
    };
    const fail = (target, err) => this.opts.fail(target, err, "create");
    return sendForm($("[data-draw-submit]"), $("[data-draw-form-error]"), send, fail);
  }

  _bind() {
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    this.form.querySelector("[data-prize-kind]").addEventListener("click", (e) => {
      const b = e.target.closest("button[data-value]");
      if (b && b.dataset.value !== this.kind) this._setKind(b.dataset.value);
    });
    $("[data-tier-add]").addEventListener("click", () => {
      const row = this._addTier();
      if (row) row.querySelector("[name=tier_name]").focus();
    });
    this.tierList.addEventListener("click", (e) => {
      const b = e.target.closest("[data-tier-remove]");
      if (!b || this.tierList.children.length <= 1) return;
      b.closest("li").remove();
      this._tiersChanged();
    });
    this.form.elements.mode.addEventListener("change", () => this._modeChanged());
  }
}
