// The live question queue: sort, filter, search, keyed rows that never jump under the host's cursor.
// While the pointer is over the queue panel, it is scrolled down, or a field in it has focus, the current
// order is kept and new items wait behind an "N new" bar; otherwise every change lands in sort order.
import { setText, t } from "/static/js/i18n.js";

const PREFS_KEY = "lw.console.queue";
// Scrolled further than this from the top counts as "reading": the order is held.
const SCROLL_HOLD_PX = 8;
const OPEN = new Set(["pending", "visible"]);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(act, key, className = "") {
  const b = el("button", `q-btn ${className}`.trim());
  b.type = "button";
  b.dataset.act = act;
  setText(b, key);
  return b;
}

function loadPrefs() {
  try {
    return { sort: "votes", kind: "feedback", status: "open", ...JSON.parse(localStorage.getItem(PREFS_KEY) || "{}") };
  } catch {
    return { sort: "votes", kind: "feedback", status: "open" };
  }
}

export class QueueView {
  /**
   * @param {{root: HTMLElement, act: (act: string, item: object, extra?: object) => Promise<unknown>,
   *          me: () => string}} opts
   */
  constructor(opts) {
    this.opts = opts;
    const root = opts.root;
    this.list = root.querySelector("[data-queue-list]");
    this.newBar = root.querySelector("[data-new-bar]");
    this.empty = root.querySelector("[data-queue-empty]");
    this.count = root.querySelector("[data-queue-count]");
    this.pendingChip = root.querySelector("[data-pending-chip]");
    this.sortGroup = root.querySelector("[data-sort]");
    this.kindSelect = root.querySelector("[data-filter-kind]");
    this.statusSelect = root.querySelector("[data-filter-status]");
    this.search = root.querySelector("[data-search]");
    this.prefs = loadPrefs();
    this.kindSelect.value = this.prefs.kind;
    this.statusSelect.value = this.prefs.status;
    this.items = new Map();
    this.products = new Map();
    this.spotlightId = null;
    this.order = []; // ids as shown, top first
    this.held = []; // new matching ids not shown yet (the list is held)
    this.rows = new Map();
    this.selected = null;
    this.pointerInside = false;
    this.seen = null; // ids known at the last render (new ones flash once)
    this._bind();
  }

  /** Take the latest room state (a snapshot or the state after an event). */
  update(state) {
    this.items = new Map([...(state.queue || []), ...(state.comments || [])].map((i) => [i.id, i]));
    this.products = new Map((state.products || []).map((p) => [p.id, p.name]));
    this.spotlightId = state.spotlight ? state.spotlight.id : null;
    this.render();
  }

  productName(item) {
    return item.product_id != null ? this.products.get(item.product_id) || `#${item.product_id}` : "";
  }

  matches(item) {
    const { kind, status } = this.prefs;
    if (kind === "feedback" ? item.kind === "comment" : kind !== "all" && item.kind !== kind) return false;
    if (status === "open" ? !OPEN.has(item.status) : status !== "all" && item.status !== status) return false;
    const q = this.search.value.trim().toLocaleLowerCase();
    if (!q) return true;
    return [item.text, item.author, this.productName(item), item.answer]
      .filter(Boolean)
      .some((s) => s.toLocaleLowerCase().includes(q));
  }

  compare(a, b) {
    switch (this.prefs.sort) {
      case "time":
        return b.created_ms - a.created_ms || b.id - a.id;
      case "product": {
        const pa = this.productName(a);
        const pb = this.productName(b);
        if (pa !== pb) return !pa ? 1 : !pb ? -1 : pa.localeCompare(pb);
        return b.votes - a.votes || a.id - b.id;
      }
      default: // votes; ties keep first come, first served
        return b.votes - a.votes || a.id - b.id;
    }
  }

  isHeld() {
    const focus = document.activeElement;
    const typing = focus && this.list.contains(focus) && focus.matches("input, textarea, select");
    return this.pointerInside || this.list.scrollTop > SCROLL_HOLD_PX || typing;
  }

  /** Re-render; ``reflow`` applies the sort order even while the list is held (the host asked). */
  render({ reflow = false } = {}) {
    const matching = [...this.items.values()].filter((i) => this.matches(i)).sort((a, b) => this.compare(a, b));
    const ids = matching.map((i) => i.id);
    if (!reflow && this.isHeld() && this.seen !== null) {
      const keep = new Set(ids);
      this.order = this.order.filter((id) => keep.has(id));
      const shown = new Set(this.order);
      this.held = ids.filter((id) => !shown.has(id));
    } else {
      this.order = ids;
      this.held = [];
    }
    const firstRender = this.seen === null;
    for (const id of this.order) {
      let row = this.rows.get(id);
      if (!row) {
        row = this._createRow(id);
        this.rows.set(id, row);
        if (!firstRender && !this.seen.has(id)) row.classList.add("is-new");
      }
      this._fillRow(row, this.items.get(id));
    }
    for (const [id, row] of this.rows) {
      if (!this.order.includes(id)) {
        row.remove();
        this.rows.delete(id);
      }
    }
    const current = [...this.list.children].map((r) => Number(r.dataset.itemId));
    if (current.length !== this.order.length || current.some((id, i) => id !== this.order[i])) {
      this.list.replaceChildren(...this.order.map((id) => this.rows.get(id)));
    }
    this.seen = new Set([...this.seen || [], ...this.items.keys()]);
    if (this.selected !== null && !this.rows.has(this.selected)) this.selected = null;
    this._renderChrome();
  }

  _renderChrome() {
    this.newBar.hidden = this.held.length === 0;
    if (this.held.length) setText(this.newBar, "console.queue.new_items", { n: this.held.length });
    this.empty.hidden = this.order.length > 0 || this.held.length > 0;
    setText(this.count, "console.queue.count", { n: this.order.length });
    const pending = [...this.items.values()].filter((i) => i.status === "pending").length;
    this.pendingChip.hidden = pending === 0;
    if (pending) setText(this.pendingChip, "console.queue.pending_chip", { n: pending });
    for (const b of this.sortGroup.querySelectorAll("button")) {
      b.setAttribute("aria-pressed", String(b.dataset.value === this.prefs.sort));
    }
    for (const [id, row] of this.rows) row.classList.toggle("is-selected", id === this.selected);
  }

  _createRow(id) {
    const row = el("li", "q-row");
    row.dataset.itemId = String(id);
    const votes = el("div", "q-votes");
    votes.append(el("strong", "q-vote-n"), el("span", "q-vote-l"));
    const main = el("div", "q-main");
    const meta = el("div", "q-meta");
    meta.append(
      el("span", "q-kind"),
      el("span", "q-status"),
      el("span", "q-onair"),
      el("span", "q-blocked"),
      el("span", "q-claim"),
      el("span", "q-author"),
      el("span", "q-product"),
      el("time", "q-time"),
    );
    const answer = el("p", "q-answer");
    answer.append(el("b"), el("span"));
    const reply = el("p", "q-reply");
    reply.append(el("b"), el("span"));
    const tools = el("div", "q-rowtools");
    tools.append(
      button("hide", "console.act.hide"),
      button("restore", "console.act.restore"),
      button("claim", "console.act.claim"),
      button("more", "console.act.more", "q-more"),
    );
    main.append(meta, el("p", "q-text"), answer, reply, tools);
    const actions = el("div", "q-actions");
    actions.append(
      button("spotlight", "console.act.spotlight", "q-primary"),
      button("approve", "console.act.approve", "q-approve"),
    );
    row.append(votes, main, actions);
    return row;
  }

  _panel(row) {
    let panel = row.querySelector(".q-panel");
    if (panel) return panel;
    panel = el("div", "q-panel");
    panel.hidden = true;
    const answerForm = el("form", "q-form");
    answerForm.dataset.form = "answer";
    const answerText = el("textarea");
    answerText.rows = 2;
    answerText.maxLength = 1000;
    answerText.name = "text";
    answerText.placeholder = t("console.answer.placeholder");
    answerText.dataset.i18nPlaceholder = "console.answer.placeholder";
    const answerBtn = el("button", "q-btn q-primary");
    answerBtn.type = "submit";
    setText(answerBtn, "console.act.answer");
    answerForm.append(answerText, answerBtn);

    const replyForm = el("form", "q-form");
    replyForm.dataset.form = "reply";
    const replyText = el("textarea");
    replyText.rows = 2;
    replyText.maxLength = 1000;
    replyText.name = "text";
    replyText.placeholder = t("console.reply.placeholder");
    replyText.dataset.i18nPlaceholder = "console.reply.placeholder";
    const replyBtn = el("button", "q-btn");
    replyBtn.type = "submit";
    setText(replyBtn, "console.act.reply");
    replyForm.append(replyText, replyBtn);

    const tools = el("div", "q-tools");
    const muteForm = el("form", "q-mute");
    muteForm.dataset.form = "mute";
    const minutes = el("input");
    minutes.type = "number";
    minutes.name = "minutes";
    minutes.min = "1";
    minutes.max = "1440";
    minutes.value = "10";
    minutes.setAttribute("aria-label", t("console.act.minutes"));
    minutes.dataset.i18nAriaLabel = "console.act.minutes";
    const unit = el("span", "muted");
    setText(unit, "console.act.minutes");
    const muteBtn = el("button", "q-btn");
    muteBtn.type = "submit";
    setText(muteBtn, "console.act.mute");
    muteForm.append(minutes, unit, muteBtn);
    tools.append(
      muteForm,
      button("ban", "console.act.ban", "q-danger"),
      button("answered", "console.act.answered"),
      button("reopen", "console.act.reopen"),
    );
    panel.append(answerForm, replyForm, tools);
    row.querySelector(".q-main").append(panel);
    panel.addEventListener("submit", (e) => this._onPanelSubmit(e, row));
    this._fillRow(row, this.items.get(Number(row.dataset.itemId)));
    return panel;
  }

  _fillRow(row, item) {
    const me = this.opts.me();
    const mine = item.claimed_by && item.claimed_by === me;
    const taken = item.claimed_by && !mine;
    row.dataset.status = item.status;
    row.dataset.kind = item.kind;
    row.classList.toggle("is-taken", Boolean(taken));
    row.classList.toggle("is-mine", Boolean(mine));
    row.classList.toggle("is-onair", item.id === this.spotlightId);
    row.classList.toggle("is-blocked", Boolean(item.blocked_word));
    const q = (sel) => row.querySelector(sel);
    q(".q-vote-n").textContent = String(item.votes);
    setText(q(".q-vote-l"), "console.item.votes");
    const kind = q(".q-kind");
    kind.dataset.kind = item.kind;
    setText(kind, `console.kind.${item.kind}`);
    const status = q(".q-status");
    status.dataset.status = item.status;
    setText(status, `console.status.${item.status}`);
    const onair = q(".q-onair");
    onair.hidden = item.id !== this.spotlightId;
    setText(onair, "console.item.on_screen");
    const blocked = q(".q-blocked");
    blocked.hidden = !item.blocked_word;
    if (item.blocked_word) setText(blocked, "console.item.blocked", { word: item.blocked_word });
    const claim = q(".q-claim");
    claim.hidden = !item.claimed_by;
    if (taken) setText(claim, "console.item.taken_by", { name: item.claimed_by });
    else if (mine) setText(claim, "console.item.yours");
    const author = q(".q-author");
    if (item.author) {
      delete author.dataset.i18n;
      author.textContent = item.author;
    } else setText(author, "console.item.anonymous");
    const product = q(".q-product");
    product.hidden = item.product_id == null;
    product.textContent = this.productName(item);
    const time = q(".q-time");
    const created = new Date(item.created_ms);
    time.dateTime = created.toISOString();
    time.textContent = created.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    time.title = created.toLocaleString();
    if (q(".q-text").textContent !== item.text) q(".q-text").textContent = item.text;
    for (const [sel, value, key] of [
      [".q-answer", item.answer, "console.item.answer_label"],
      [".q-reply", item.reply, "console.item.reply_label"],
    ]) {
      const p = q(sel);
      p.hidden = !value;
      setText(p.firstChild, key);
      p.lastChild.textContent = value || "";
    }
    const act = (name) => q(`[data-act="${name}"]`);
    const isComment = item.kind === "comment";
    act("spotlight").hidden = isComment || item.status === "hidden" || item.status === "answered" || item.id === this.spotlightId;
    act("approve").hidden = item.status !== "pending";
    act("hide").hidden = item.status === "hidden";
    act("restore").hidden = item.status !== "hidden";
    const claimBtn = act("claim");
    claimBtn.disabled = Boolean(taken);
    claimBtn.classList.toggle("is-on", Boolean(mine));
    setText(claimBtn, mine ? "console.act.release" : taken ? "console.act.taken" : "console.act.claim");
    const panel = row.querySelector(".q-panel");
    if (panel) {
      panel.querySelector('[data-act="answered"]').hidden = !(item.status === "visible" || item.status === "pending");
      panel.querySelector('[data-act="reopen"]').hidden = item.status !== "answered";
      panel.querySelector('[data-form="answer"]').hidden = isComment;
    }
  }

  async _onPanelSubmit(e, row) {
    e.preventDefault();
    const form = e.target;
    const item = this.items.get(Number(row.dataset.itemId));
    if (!item) return;
    const field = form.elements.namedItem(form.dataset.form === "mute" ? "minutes" : "text");
    const extra = form.dataset.form === "mute" ? { minutes: Number(field.value) } : { text: field.value };
    const ok = await this.opts.act(form.dataset.form, item, extra);
    if (ok && form.dataset.form !== "mute") field.value = "";
  }

  act(name, id = this.selected) {
    const item = id !== null ? this.items.get(id) : undefined;
    if (!item) return;
    const row = this.rows.get(id);
    if (name === "more") {
      const panel = this._panel(row);
      panel.hidden = !panel.hidden;
      row.classList.toggle("is-open", !panel.hidden);
      const form = [...panel.querySelectorAll("form")].find((f) => !f.hidden);
      if (!panel.hidden && form) form.querySelector("textarea, input")?.focus();
      return;
    }
    if (name === "hide" && item.status === "hidden") name = "restore";
    if (name === "claim" && item.claimed_by === this.opts.me()) name = "release";
    this.opts.act(name, item);
  }

  select(id, scroll = true) {
    this.selected = id;
    this._renderChrome();
    if (scroll && id !== null) this.rows.get(id)?.scrollIntoView({ block: "nearest" });
  }

  move(step) {
    if (!this.order.length) return;
    const at = this.order.indexOf(this.selected);
    const next = at < 0 ? 0 : Math.max(0, Math.min(this.order.length - 1, at + step));
    this.select(this.order[next]);
  }

  /** The first open feedback item in the shown order other than ``exceptId``: the natural "next". */
  nextCandidate(exceptId) {
    for (const id of [...this.order, ...this.held]) {
      const item = this.items.get(id);
      if (item && id !== exceptId && item.kind !== "comment" && OPEN.has(item.status)) return item;
    }
    return null;
  }

  showHeld() {
    this.list.scrollTop = 0;
    this.render({ reflow: true });
  }

  _savePrefs() {
    localStorage.setItem(PREFS_KEY, JSON.stringify(this.prefs));
    this.render({ reflow: true });
  }

  _bind() {
    // The whole panel, not just the list: reaching for the "N new" bar must not reflow the list.
    this.opts.root.addEventListener("pointerenter", () => (this.pointerInside = true));
    this.opts.root.addEventListener("pointerleave", () => {
      this.pointerInside = false;
      if (this.held.length || this.seen !== null) this.render();
    });
    this.list.addEventListener("scroll", () => {
      if (this.list.scrollTop <= SCROLL_HOLD_PX && this.held.length) this.render();
    });
    this.list.addEventListener("focusout", () => queueMicrotask(() => this.render()));
    this.list.addEventListener("animationend", (e) => e.target.classList?.remove("is-new"));
    this.list.addEventListener("click", (e) => {
      const row = e.target.closest(".q-row");
      if (!row) return;
      const id = Number(row.dataset.itemId);
      this.select(id, false);
      const btn = e.target.closest("button[data-act]");
      if (btn && !btn.disabled) this.act(btn.dataset.act, id);
    });
    this.newBar.addEventListener("click", () => this.showHeld());
    this.pendingChip.addEventListener("click", () => {
      this.prefs.status = "pending";
      this.prefs.kind = "all";
      this.statusSelect.value = "pending";
      this.kindSelect.value = "all";
      this._savePrefs();
    });
    this.sortGroup.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-value]");
      if (!b) return;
      this.prefs.sort = b.dataset.value;
      this._savePrefs();
    });
    this.kindSelect.addEventListener("change", () => {
      this.prefs.kind = this.kindSelect.value;
      this._savePrefs();
    });
    this.statusSelect.addEventListener("change", () => {
      this.prefs.status = this.statusSelect.value;
      this._savePrefs();
    });
    this.search.addEventListener("input", () => this.render({ reflow: true }));
    this.search.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        this.search.value = "";
        this.search.blur();
        this.render({ reflow: true });
      } else if (e.key === "Enter" || e.key === "ArrowDown") {
        e.preventDefault();
        this.search.blur();
        this.move(0);
      }
    });
  }

  /** Keyboard shortcuts; returns true when the key was used. */
  onKey(e) {
    const keys = {
      j: () => this.move(1),
      arrowdown: () => this.move(1),
      k: () => this.move(-1),
      arrowup: () => this.move(-1),
      a: () => this.act("spotlight"),
      e: () => this.act("approve"),
      h: () => this.act("hide"),
      c: () => this.act("claim"),
      m: () => this.act("more"),
      "/": () => this.search.focus(),
      escape: () => this.select(null),
    };
    const fn = keys[e.key.toLowerCase()];
    if (!fn) return false;
    fn();
    return true;
  }
}
