// Danmaku: comments fly right to left in lanes. A comment takes a lane only when the previous one in
// that lane has fully entered (plus a gap), and every comment moves at the same speed, so two can never
// overlap. The screen never falls behind: what is in flight is capped, and when more waits than the
// lanes can carry, the oldest waiting comments are dropped (questions are kept longer and fly first).
// Only transform is animated (compositor-only): venue PCs and OBS browser sources are weak.

const SPEED_CQW_PER_SEC = 9; // ~7 s to cross the field: readable, and lanes free up quickly
const GAP_CQW = 3; // empty space between two comments in a lane
const LANE_CQW = 4.6; // lane height; the text is 2.4cqw (see .dm in screen.css)
const MAX_IN_FLIGHT = 30; // DOM nodes moving at once, whatever the lane count
// Waiting room: one comment per lane, about one lane-cycle (~3 s) of what the lanes can carry, so
// the newest comment is on screen within seconds however hard the audience types.
const WAITING_PER_LANE = 1;
const MAX_WAITING = 20;
const MAX_WAIT_MS = 8000; // a backstop: older than this, a waiting comment is stale: skip it
const PUMP_MS = 150;

export class Danmaku {
  constructor(field, build) {
    this.field = field;
    this.build = build; // item -> element (textContent only)
    this.lanes = []; // per lane: the time (ms) it can take the next comment
    this.questions = [];
    this.comments = [];
    this.flying = new Set();
    this.enabled = true;
    this.counters = { launched: 0, dropped: 0, maxInFlight: 0, maxWaiting: 0 };
    setInterval(() => this.pump(), PUMP_MS);
  }

  push(item) {
    if (!this.enabled) return;
    (item.kind === "comment" ? this.comments : this.questions).push({ item, at: performance.now() });
    this._trim();
    this.pump();
  }

  setEnabled(on) {
    if (on === this.enabled) return;
    this.enabled = on;
    if (on) return;
    this.questions = [];
    this.comments = [];
    for (const anim of this.flying) anim.cancel();
  }

  stats() {
    return {
      ...this.counters,
      inFlight: this.flying.size,
      waiting: this.questions.length + this.comments.length,
      lanes: this.lanes.length,
      nodes: this.field.childElementCount,
    };
  }

  _drop(queue) {
    queue.shift();
    this.counters.dropped += 1;
  }

  _trim() {
    const stale = performance.now() - MAX_WAIT_MS;
    while (this.comments.length && this.comments[0].at < stale) this._drop(this.comments);
    while (this.questions.length && this.questions[0].at < stale - MAX_WAIT_MS) this._drop(this.questions);
    const cap = Math.min(MAX_WAITING, Math.max(4, Math.ceil(this.lanes.length * WAITING_PER_LANE)));
    while (this.comments.length + this.questions.length > cap) {
      this._drop(this.comments.length ? this.comments : this.questions);
    }
    const waiting = this.comments.length + this.questions.length;
    this.counters.maxWaiting = Math.max(this.counters.maxWaiting, waiting);
  }

  pump() {
    this._trim();
    if (!this.enabled || !(this.questions.length || this.comments.length)) return;
    const width = this.field.clientWidth;
    const height = this.field.clientHeight;
    if (!width || !height) return;
    const cqw = this.field.closest("[data-stage]").clientWidth / 100;
    const laneHeight = LANE_CQW * cqw;
    const count = Math.max(1, Math.floor(height / laneHeight));
    while (this.lanes.length < count) this.lanes.push(0);
    this.lanes.length = count;
    const now = performance.now();
    while ((this.questions.length || this.comments.length) && this.flying.size < MAX_IN_FLIGHT) {
      const free = [];
      this.lanes.forEach((t, i) => t <= now && free.push(i));
      if (!free.length) break;
      const lane = free[Math.floor(Math.random() * free.length)];
      const { item } = (this.questions.length ? this.questions : this.comments).shift();
      this._launch(item, lane, { width, laneHeight, cqw, now });
    }
  }

  _launch(item, lane, { width, laneHeight, cqw, now }) {
    const node = this.build(item);
    node.style.top = `${lane * laneHeight + (laneHeight - 3.8 * cqw) / 2}px`;
    this.field.append(node);
    const size = node.offsetWidth; // measured once, before it moves
    const speed = SPEED_CQW_PER_SEC * cqw; // px per second
    const distance = width + size;
    this.lanes[lane] = now + ((size + GAP_CQW * cqw) / speed) * 1000;
    const anim = node.animate([{ transform: "translateX(0)" }, { transform: `translateX(${-distance}px)` }], {
      duration: (distance / speed) * 1000,
      easing: "linear",
    });
    this.flying.add(anim);
    this.counters.launched += 1;
    this.counters.maxInFlight = Math.max(this.counters.maxInFlight, this.flying.size);
    const done = () => {
      node.remove();
      this.flying.delete(anim);
    };
    anim.onfinish = done;
    anim.oncancel = done;
  }
}
