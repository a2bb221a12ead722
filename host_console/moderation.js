// The console's side panels: what is on the big screen, the room's moderation settings (pre/post,
// slow mode, screen layout, keyword blocklist), mutes and bans in force, and reaction activity.
import { setText, t } from "/static/js/i18n.js";

const $ = (sel) => document.querySelector(sel);
const SLOW_MODE_SECS = [0, 3, 5, 10, 30, 60, 120, 300];
const REACTION_EMOJI = { heart: "❤️", like: "👍", laugh: "😂", wow: "😮", fire: "🔥", clap: "👏" };
// The sparkline: 30 buckets of 2 s = the last minute of reactions.
const SPARK_BUCKETS = 30;
const SPARK_BUCKET_MS = 2000;

function pressed(group, value) {
  for (const b of group.querySelectorAll("button[data-value]")) {
    b.setAttribute("aria-pressed", String(b.dataset.value === value));
  }
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export class SidePanels {
  /**
   * @param {{request: (type: string, data?: object) => Promise<unknown>, fail: (err: object) => void,
   *          done: (key: string, vars?: object) => void, next: () => object | null}} opts
   */
  constructor(opts) {
    this.opts = opts;
    this.state = null;
    this.reactionTotals = Object.fromEntries(Object.keys(REACTION_EMOJI).map((k) => [k, 0]));
    this.reactionLog = []; // [ms, count] per queue tick with reactions
    this.blocklistDirty = false;
    this._bind();
    this._buildSlowOptions();
    this._renderReactions();
    setInterval(() => this._renderReactions(), 1000);
  }

  update(state) {
    this.state = state;
    const s = state.settings || { moderation: "post", slow_mode_secs: 0, layout: "wall" };
    pressed($("[data-layout]"), s.layout);
    pressed($("[data-moderation]"), s.moderation);
    setText($("[data-moderation-hint]"), `console.moderation.${s.moderation}_hint`);
    const slow = $("[data-slow-mode]");
    const secs = String(Math.round(s.slow_mode_secs));
    if (![...slow.options].some((o) => o.value === secs)) this._buildSlowOptions(Number(secs));
    if (document.activeElement !== slow) slow.value = secs;
    this._renderSpotlight();
    this._renderBlocklist();
    this._renderSanctions();
  }

  /** A ``queue`` event's reactions: add them to the running totals and the last-minute log. */
  addReactions(counts) {
    let n = 0;
    for (const [kind, count] of Object.entries(counts || {})) {
      this.reactionTotals[kind] = (this.reactionTotals[kind] || 0) + count;
      n += count;
    }
    if (n) this.reactionLog.push([Date.now(), n]);
    this._renderReactions();
  }

  _buildSlowOptions(extra) {
    const select = $("[data-slow-mode]");
    const values = [...SLOW_MODE_SECS];
    if (extra !== undefined && !values.includes(extra)) values.push(extra);
    select.replaceChildren(
      ...values
        .sort((a, b) => a - b)
        .map((v) => {
          const option = document.createElement("option");
          option.value = String(v);
          if (v === 0) setText(option, "console.slow.off");
          else setText(option, "console.slow.secs", { n: v });
          return option;
        }),
    );
  }

  _renderSpotlight() {
    const body = $("[data-spotlight]");
    const item = this.state.spotlight;
    $("[data-spotlight-clear]").disabled = !item;
    if (!item) {
      const p = document.createElement("p");
      p.className = "muted sp-none";
      setText(p, "console.spotlight.none");
      body.replaceChildren(p);
      return;
    }
    const text = document.createElement("p");
    text.className = "sp-text";
    text.textContent = item.text;
    const meta = document.createElement("div");
    meta.className = "sp-meta";
    const who = document.createElement("span");
    if (item.author) who.textContent = item.author;
    else setText(who, "console.item.anonymous");
    const votes = document.createElement("span");
    setText(votes, "console.spotlight.votes", { n: item.votes });
    meta.append(who, votes);
    body.replaceChildren(meta, text);
    if (item.answer) {
      const answer = document.createElement("p");
      answer.className = "sp-answer";
      answer.textContent = item.answer;
      body.append(answer);
    }
  }

  _renderBlocklist() {
    const words = this.state.blocklist || [];
    setText($("[data-blocklist-count]"), "console.blocklist.count", { n: words.length });
    const area = $("[data-blocklist]");
    if (!this.blocklistDirty && document.activeElement !== area) area.value = words.join("\n");
  }

  _renderSanctions() {
    const list = $("[data-sanctions]");
    const sanctions = this.state.sanctions || [];
    const names = new Map();
    for (const item of [...(this.state.queue || []), ...(this.state.comments || [])]) {
      if (item.author) names.set(item.viewer_id, item.author);
    }
    if (!sanctions.length) {
      const li = document.createElement("li");
      li.className = "muted";
      setText(li, "console.sanctions.none");
      list.replaceChildren(li);
      return;
    }
    list.replaceChildren(
      ...sanctions.map((s) => {
        const li = document.createElement("li");
        const who = document.createElement("b");
        if (names.has(s.viewer_id)) who.textContent = names.get(s.viewer_id);
        else setText(who, "console.item.anonymous");
        const what = document.createElement("span");
        what.className = "muted";
        if (s.banned) setText(what, "console.sanctions.banned");
        else setText(what, "console.sanctions.muted_until", { time: clock(s.mute_until_ms) });
        const pardon = document.createElement("button");
        pardon.type = "button";
        setText(pardon, "console.sanctions.pardon");
        pardon.addEventListener("click", () =>
          this.opts
            .request("viewer.sanction", { viewer_id: s.viewer_id, mode: "pardon" })
            .then(() => this.opts.done("console.done.pardon"), this.opts.fail),
        );
        li.append(who, what, pardon);
        return li;
      }),
    );
  }

  _renderReactions() {
    const now = Date.now();
    this.reactionLog = this.reactionLog.filter(([ms]) => now - ms < SPARK_BUCKETS * SPARK_BUCKET_MS);
    const perMinute = this.reactionLog.reduce((sum, [, n]) => sum + n, 0);
    setText($("[data-reaction-rate]"), "console.reactions.rate", { n: perMinute });
    const buckets = new Array(SPARK_BUCKETS).fill(0);
    for (const [ms, n] of this.reactionLog) {
      const i = SPARK_BUCKETS - 1 - Math.floor((now - ms) / SPARK_BUCKET_MS);
      if (i >= 0) buckets[i] += n;
    }
    const peak = Math.max(1, ...buckets);
    const spark = $("[data-reaction-spark]");
    if (spark.children.length !== SPARK_BUCKETS) {
      spark.replaceChildren(...buckets.map(() => document.createElement("i")));
    }
    buckets.forEach((n, i) => (spark.children[i].style.height = `${Math.max(4, (n / peak) * 100)}%`));
    const list = $("[data-reactions]");
    list.replaceChildren(
      ...Object.entries(REACTION_EMOJI).map(([kind, emoji]) => {
        const li = document.createElement("li");
        li.dataset.reaction = kind;
        const icon = document.createElement("span");
        icon.textContent = emoji;
        icon.setAttribute("aria-label", t(`console.reactions.${kind}`));
        const n = document.createElement("b");
        n.textContent = String(this.reactionTotals[kind] || 0);
        li.append(icon, n);
        return li;
      }),
    );
  }

  settings(data) {
    return this.opts.request("settings.update", data).catch(this.opts.fail);
  }

  _bind() {
    $("[data-layout]").addEventListener("click", (e) => {
      const b = e.target.closest("button[data-value]");
      if (b) this.settings({ layout: b.dataset.value });
    });
    $("[data-moderation]").addEventListener("click", (e) => {
      const b = e.target.closest("button[data-value]");
      if (b) this.settings({ moderation: b.dataset.value });
    });
    $("[data-slow-mode]").addEventListener("change", (e) => {
      this.settings({ slow_mode_secs: Number(e.target.value) });
    });
    $("[data-spotlight-next]").addEventListener("click", () => this.next());
    $("[data-spotlight-clear]").addEventListener("click", () => this.clear());
    const area = $("[data-blocklist]");
    area.addEventListener("input", () => (this.blocklistDirty = true));
    $("[data-blocklist-form]").addEventListener("submit", async (e) => {
      e.preventDefault();
      const errorEl = $("[data-blocklist-error]");
      errorEl.textContent = "";
      const words = area.value.split(/[\n,，]/).map((w) => w.trim()).filter(Boolean);
      try {
        await this.opts.request("settings.update", { blocklist: words });
        this.blocklistDirty = false;
        this.opts.done("console.done.blocklist");
      } catch (err) {
        this.opts.fail(err, errorEl);
      }
    });
  }

  /** Answer the next question: the first open one in the queue's current order. */
  next() {
    const current = this.state && this.state.spotlight ? this.state.spotlight.id : null;
    const item = this.opts.next(current);
    if (!item) {
      this.opts.done("console.spotlight.no_next");
      return;
    }
    this.opts.request("item.spotlight", { id: item.id }).catch(this.opts.fail);
  }

  clear() {
    if (!this.state || !this.state.spotlight) return;
    this.opts.request("item.spotlight", { id: null }).catch(this.opts.fail);
  }
}
