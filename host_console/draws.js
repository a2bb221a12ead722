// The console's Draws tab: the current draw (entries counting down on the server's clock with the live
// entrant count; close, draw, cancel; the winners with confirm and absent; the commitments and the
// verify page), the room's draws so far with the CSV export, and the form (draw_form.js).
import { currentLang, setText, t } from "/static/js/i18n.js";
import { formatClock } from "/static/js/time.js";
import { DrawForm } from "/console-assets/draw_form.js";
import { button, clearError, el, showError } from "/console-assets/forms.js";
import { PresetsView } from "/console-assets/presets.js";

const $ = (sel) => document.querySelector(sel);
const LIVE = new Set(["open", "frozen"]);
// Countdowns are redrawn this often; the text changes once a second, the lag stays under a frame or two.
const CLOCK_TICK_MS = 250;
// The last seconds of an entry window are shown in red.
const URGENT_MS = 10_000;
// Codes that mean something more precise for a draw than the Selling tab's wording; "create" refused
// with bad_state is always the one-draw-at-a-time rule.
const DRAW_ERRORS = new Set(["bad_state", "not_found", "not_eligible"]);
// The in-flight key of the panel's own buttons (close, draw, cancel): one of them at a time.
const PANEL = "panel";

/** Show a refused draw action: our wording for its code, then what the server said. */
export function showDrawError(target, err, context) {
  showError(target, err);
  const code = err && err.code;
  if (!DRAW_ERRORS.has(code) || !target.firstChild) return;
  setText(target.firstChild, context === "create" && code === "bad_state" ? "draw.err.busy" : `draw.err.${code}`);
}

function winnerName(w) {
  return w.name || t("draw.anonymous");
}

export class DrawsView {
  /**
   * @param {{request: (type: string, data?: object) => Promise<any>, serverNow: () => number,
   *          done: (key: string, vars?: object) => void}} opts
   */
  constructor(opts) {
    this.opts = opts;
    this.draw = null;
    this.draws = [];
    this.busy = new Set(); // actions in flight (PANEL, "confirm:2"): never sent twice, their buttons off
    this.body = $("[data-draw-body]");
    this.form = new DrawForm({ ...opts, fail: showDrawError });
    this.presets = new PresetsView(opts, "draw");
    this._bind();
    setInterval(() => this.tick(), CLOCK_TICK_MS);
  }

  /** Take the latest state; ``type`` is the event that produced it (null: redraw everything). */
  update(state, type = null) {
    if (!state || (type !== null && type !== "draw" && type !== "draw.entrants")) return;
    if (type === null) this.presets.refresh();
    this.draw = state.draw || null;
    this.draws = state.draws || (this.draw ? [this.draw] : []);
    if (type === "draw.entrants") {
      this._renderCounts(); // four times a second at most: only the numbers change
      return;
    }
    this.render();
  }

  render() {
    this._renderCurrent();
    this._renderHistory();
    this._renderBadge();
    this.tick();
  }

  // --- the current draw -----------------------------------------------------------------------------

  _renderCurrent() {
    const d = this.draw;
    $("[data-draw-none]").hidden = d !== null;
    this.body.hidden = d === null;
    if (d === null) return;
    if (this.body.dataset.drawId !== String(d.id)) clearError($("[data-draw-error]"));
    this.body.dataset.drawId = String(d.id);
    this.body.dataset.status = d.status;
    $("[data-draw-title]").textContent = d.title;
    const status = $("[data-draw-status]");
    status.dataset.status = d.status;
    setText(status, `draw.status.${d.status}`);
    const meta = $("[data-draw-meta]");
    if (d.mode === "keyword") setText(meta, "draw.meta.keyword", { keyword: d.keyword });
    else setText(meta, `draw.mode.${d.mode}`);
    $("[data-draw-prizes]").replaceChildren(...d.tiers.map((tier) => this._prize(tier)));
    $("[data-draw-clock]").hidden = d.status !== "open";
    const live = LIVE.has(d.status);
    for (const b of this.body.querySelectorAll("[data-draw-act]")) {
      const act = b.dataset.drawAct;
      b.hidden = !live || (act === "close" && d.status !== "open");
      b.disabled = this.busy.has(PANEL);
    }
    const unfilled = $("[data-draw-unfilled]");
    unfilled.hidden = !(d.status === "drawn" && d.unfilled > 0);
    if (!unfilled.hidden) setText(unfilled, "draw.current.unfilled", { n: d.unfilled });
    this._renderWinners(d);
    $("[data-draw-seed-hash]").textContent = d.seed_sha256;
    $("[data-draw-entrants-hash]").textContent = d.entrants_sha256 || "";
    $("[data-draw-seed]").textContent = d.seed || "";
    for (const node of this.body.querySelectorAll("[data-proof-entrants]")) node.hidden = !d.entrants_sha256;
    for (const node of this.body.querySelectorAll("[data-proof-seed]")) node.hidden = !d.seed;
    $("[data-draw-verify]").href = d.verify_path;
    this._renderCounts();
  }

  _prize(tier) {
    const li = el("li", "d-prize");
    if (tier.image_url) {
      const img = el("img");
      img.alt = "";
      img.loading = "lazy";
      img.referrerPolicy = "no-referrer";
      img.src = tier.image_url;
      img.addEventListener("error", () => (img.hidden = true));
      li.append(img);
    }
    const count = el("span", "muted");
    setText(count, "draw.prize.count", { n: tier.count });
    li.append(el("b", "", tier.name), count);
    return li;
  }

  _renderWinners(d) {
    const drawn = d.status === "drawn";
    $("[data-draw-winners]").replaceChildren(
      ...(drawn ? d.winners : []).map((w) => {
        const li = el("li", "d-winner");
        li.dataset.place = String(w.place);
        li.dataset.status = w.status;
        const place = el("span", "d-place");
        setText(place, "draw.winner.place", { n: w.place });
        const tier = el("span", "d-tier-name muted", d.tiers[w.tier] ? d.tiers[w.tier].name : "");
        const name = el("b", "d-name", winnerName(w));
        name.dataset.winnerName = "";
        const status = el("span", "s-claim-status d-winner-status");
        status.dataset.status = w.status;
        setText(status, `draw.winner.${w.status}`);
        const actions = el("span", "d-winner-actions");
        if (w.status === "won") actions.append(this._placeButton("draw.act.confirm", "confirm", w.place));
        if (w.status === "won" || w.status === "confirmed") {
          actions.append(this._placeButton("draw.act.absent", "absent", w.place, "s-danger"));
        }
        li.append(place, tier, name, status, actions);
        if (w.claim_name || w.claim_phone || w.claim_email) li.append(this._claim(w));
        return li;
      }),
    );
  }

  _placeButton(key, act, place, extra = "") {
    const b = button(key, { placeAct: act }, `s-btn ${extra}`.trim());
    b.disabled = this.busy.has(`${act}:${place}`) || this.busy.has(PANEL);
    return b;
  }

  _claim(w) {
    const box = el("div", "d-claim");
    box.dataset.claim = "";
    const label = el("span", "muted");
    setText(label, "draw.claim.label");
    box.append(label, el("span", "", w.claim_name || ""));
    for (const value of [w.claim_phone, w.claim_email]) if (value) box.append(el("span", "d-contact", value));
    const consent = el("span", "muted");
    setText(consent, w.consent ? "draw.claim.consent_yes" : "draw.claim.consent_no");
    box.append(consent);
    return box;
  }

  /** The live entrant count of the current draw and of its history row. */
  _renderCounts() {
    const d = this.draw;
    if (d !== null) $("[data-draw-entrants]").textContent = String(d.entrants);
    for (const row of this.draws) {
      const cell = document.querySelector(`[data-draw-history] [data-draw-id="${row.id}"] [data-history-entrants]`);
      if (cell) cell.textContent = String(row.entrants);
    }
    this._renderBadge();
  }

  _renderBadge() {
    const badge = $("[data-draw-badge]");
    const d = this.draw;
    badge.hidden = !(d && LIVE.has(d.status));
    if (badge.hidden) return;
    if (d.status === "open") setText(badge, "draw.tab.open", { n: d.entrants });
    else setText(badge, "draw.tab.ready");
  }

  /** The entry window's countdown, on the server's clock (Date.now() + the offset ping/pong measured). */
  tick() {
    const d = this.draw;
    if (!d || d.status !== "open") return;
    const ms = d.closes_ms - this.opts.serverNow();
    const clock = $("[data-draw-countdown]");
    const text = formatClock(ms, { pad: false });
    if (clock.textContent !== text) clock.textContent = text;
    clock.classList.toggle("is-urgent", ms < URGENT_MS);
    const label = $("[data-draw-clock-label]");
    const key = ms > 0 ? "draw.current.closes_in" : "draw.current.closing";
    if (label.dataset.i18n !== key) setText(label, key);
  }

  // --- history --------------------------------------------------------------------------------------

  _renderHistory() {
    const rows = [...this.draws].sort((a, b) => b.id - a.id);
    setText($("[data-draw-history-count]"), "draw.history.count", { n: rows.length });
    $("[data-draw-history-empty]").hidden = rows.length > 0;
    $("[data-draw-history]").replaceChildren(...rows.map((d) => this._historyRow(d)));
  }

  _historyRow(d) {
    const tr = el("tr");
    tr.dataset.drawId = String(d.id);
    tr.dataset.status = d.status;
    const when = new Date(d.created_ms).toLocaleString(currentLang(), {
      month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit",
    });
    const title = el("td", "d-h-title");
    const link = el("a", "", d.title);
    link.href = d.verify_path;
    link.target = "_blank";
    link.rel = "noopener";
    const status = el("span", "muted d-h-status");
    setText(status, `draw.status.${d.status}`);
    title.append(link, status);
    const entrants = el("td", "", String(d.entrants));
    entrants.dataset.historyEntrants = "";
    const winners = el("td", "d-h-winners");
    const current = d.winners.filter((w) => w.status !== "absent");
    for (const w of current) {
      const who = el("span", "d-h-winner", winnerName(w));
      who.dataset.status = w.status;
      const mark = el("span", "muted");
      setText(mark, `draw.winner.${w.status}`);
      who.append(" ", mark);
      winners.append(who);
    }
    if (d.status === "drawn" && !current.length) setText(winners, "draw.history.nobody");
    const claimed = el("td", "");
    if (d.status === "drawn") {
      const n = current.filter((w) => w.status === "claimed").length;
      claimed.textContent = `${n}/${current.length}`;
    }
    claimed.dataset.historyClaimed = "";
    tr.append(el("td", "muted", when), title, entrants, winners, claimed);
    return tr;
  }

  // --- actions --------------------------------------------------------------------------------------

  /** Send one action of the current draw; ``key`` marks it in flight (a second press is ignored). */
  async _act(key, type, data, confirmText) {
    const d = this.draw;
    if (!d || this.busy.has(key) || this.busy.has(PANEL)) return;
    if (confirmText && !confirm(confirmText)) return;
    const errorEl = $("[data-draw-error]");
    clearError(errorEl);
    this.busy.add(key);
    this._renderCurrent();
    try {
      const result = await this.opts.request(type, { id: d.id, ...data });
      if (type === "draw.absent") this.opts.done(result.replaced ? "draw.done.redrawn" : "draw.done.nobody_left");
      if (type === "draw.cancel") this.opts.done("draw.done.cancelled");
    } catch (err) {
      showDrawError(errorEl, err, type);
    } finally {
      this.busy.delete(key);
      this._renderCurrent();
    }
  }

  _bind() {
    this.body.addEventListener("click", (e) => {
      const b = e.target.closest("button");
      if (!b || b.disabled || !this.draw) return;
      const act = b.dataset.drawAct;
      if (act === "close") this._act(PANEL, "draw.close", {});
      else if (act === "run") this._act(PANEL, "draw.run", {});
      else if (act === "cancel") {
        this._act(PANEL, "draw.cancel", {}, t("draw.confirm_cancel", { title: this.draw.title }));
      }
      const place = b.closest("[data-place]");
      if (act || !place) return;
      const n = Number(place.dataset.place);
      if (b.dataset.placeAct === "confirm") {
        this._act(`confirm:${n}`, "draw.confirm", { place: n });
      } else if (b.dataset.placeAct === "absent") {
        const w = this.draw.winners.find((x) => x.place === n && x.status !== "absent");
        const question = t("draw.confirm_absent", { name: w ? winnerName(w) : "", n });
        this._act(`absent:${n}`, "draw.absent", { place: n }, question);
      }
    });
  }
}
