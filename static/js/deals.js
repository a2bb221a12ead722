// Discounts as the phone and the big screen read them: the phase at a server time, which deal to
// show, what a countdown runs to (its text: time.js). "Now" is always the server's clock as the page
// estimates it (RoomClient.serverNow(): Date.now() + the offset measured from pong), so every surface
// counts down to the same instant whatever its own clock says.

// An ended deal stays up this long, so people see "ended" rather than the card vanishing.
export const ENDED_SHOWN_MS = 8000;
// Countdowns repaint this often: tenths are not shown, but a 1 s step must not lag by up to 1 s.
export const TICK_MS = 100;

/** The phase at server time `now`: mirror of server/discounts/rules.phase. */
export function phase(d, now) {
  if (d.status === "ended" || now >= d.ends_ms) return "ended";
  if (now < d.starts_ms) return "scheduled";
  return d.claimed >= d.quantity ? "sold_out" : "live";
}

/** The instant a countdown runs to: the start while scheduled, else the end. */
export function countdownTarget(d, now) {
  return phase(d, now) === "scheduled" ? d.starts_ms : d.ends_ms;
}

export function percentOff(d) {
  if (d.percent_off) return d.percent_off;
  if (!d.list_price_minor) return 0;
  return Math.round(100 * (1 - d.price_minor / d.list_price_minor));
}

/** Remembers when each discount was seen to end, to keep an ended deal up for a few seconds. */
export class DealTracker {
  constructor() {
    this.endedAt = new Map(); // discount id -> server ms
  }

  /** Note discounts that are ended now; `ts` is the event's server time (null for a snapshot). */
  observe(discounts, ts) {
    for (const d of discounts || []) {
      if (d.status !== "ended" || this.endedAt.has(d.id)) continue;
      // A snapshot does not say when a stopped deal stopped: treat it as long over.
      this.endedAt.set(d.id, ts ?? (d.end_reason === "time" ? d.ends_ms : 0));
    }
  }

  endedMs(d) {
    return Math.min(d.ends_ms, this.endedAt.get(d.id) ?? Infinity);
  }

  /** The newest running deal, else the newest that ended a moment ago, else null. */
  current(discounts, now) {
    const list = discounts || [];
    for (let i = list.length - 1; i >= 0; i -= 1) if (phase(list[i], now) !== "ended") return list[i];
    for (let i = list.length - 1; i >= 0; i -= 1) {
      if (now - this.endedMs(list[i]) < ENDED_SHOWN_MS) return list[i];
    }
    return null;
  }
}

/** Set an element's text only when it changed (countdowns repaint ten times a second). */
export function put(el, text) {
  if (el.textContent !== text) el.textContent = text;
}
