// The phone's lucky-draw card: the prize, the entry countdown (on the server's clock) and the live
// entrant count; entering by the draw's mode (a Join button, entered by the phone itself, the
// keyword put into the comment box, a shake race with a tap fallback, or who is in by what they did);
// then the result: "You won" with the claim form, "Not this time", and the verification code.
// The server decides everything; the phone knows it won when its entrant pseudonym is among the
// `draw` event's winners (the pseudonym comes from the draw.enter/draw.shake ack or personal.my_draws).
import { setText } from "/static/js/i18n.js";
import { put } from "/static/js/deals.js";
import { formatClock } from "/static/js/time.js";
import { toast } from "/static/js/ui.js";
import { initClaimForm } from "/static/viewer/claim.js";
import { ShakeCounter } from "/static/viewer/shake.js";

// The big screen rolls names for about this long before it lands on the winners: the phone waits
// as long before it tells, so nobody's phone spoils the moment for the room (tests: a short roll).
export const REVEAL_MS = navigator.webdriver ? 300 : 4200;
// Results shown to those who did not win (and to non-entrants), after the draw was seen live.
const RESULT_SHOWN_MS = 120_000;
const CANCELLED_SHOWN_MS = 8000;
// Phones that must ask the server whether they are in spread their question over up to this long,
// 1 ms per entrant: 10,000 entrants ask over 10 s, not all in the same instant.
// Under this much time left to claim, the deadline becomes a countdown.
const CLAIM_COUNTDOWN_MS = 3_600_000;
const BY_WHAT_VIEWERS_DID = new Set(["askers", "claimers", "buyers"]);

function say(el, key, vars) {
  const v = vars ? JSON.stringify(vars) : undefined;
  if (el.dataset.i18n !== key || el.dataset.i18nVars !== v) setText(el, key, vars);
}

function httpUrl(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
}

/** Keyword matching as the server does it (NFKC, case folded, spaces and punctuation ignored). */
export function foldForMatch(text) {
  return String(text).normalize("NFKC").toLowerCase().replace(/[^\p{L}\p{N}]+/gu, "");
}

export function initLucky({ client, composer }) {
  const card = document.querySelector("[data-lucky]");
  const q = (sel) => card.querySelector(sel);
  const entrants = new Map(); // draw id -> this viewer's entrant pseudonym
  const settled = new Set(); // draws whose entrant list this phone's personal state reflects
  const keywordSent = new Set(); // keyword draws this page sent the keyword in (optimistic)
  const autoTried = new Set();
  const seen = new Map(); // draw id -> {status, at: Date.now() when it changed live}
  const revealAt = new Map(); // draw id -> Date.now() after which the result is told
  const claimedHere = new Set();
  let state = null;
  let joining = false;
  let tiersKey = "";
  let shown = null;

  const shaker = new ShakeCounter({
    send: async (count) => {
      const d = shown;
      if (!d) return;
      const result = await client.request("draw.shake", { id: d.id, count });
      learn(result.id, result.entrant);
    },
    onChange: () => paint(),
  });
  let shakeFor = null;

  function learn(drawId, entrant) {
    if (entrants.get(drawId) === entrant) return;
    entrants.set(drawId, entrant);
    paint();
  }

  const entrantOf = (d) => entrants.get(d.id) ?? null;

  function myWin(d) {
    const entrant = entrantOf(d);
    return entrant ? (d.winners || []).find((w) => w.entrant === entrant) : null;
  }

  /** What the card shows now: one of open, closed, drawing, won, claimed, expired, lost, done, cancelled. */
  function view(d, now) {
    const live = seen.get(d.id);
    const recently = (ms) => {
      if (live && live.status === d.status) return Date.now() - live.at < ms;
      return d.status === "drawn" && d.drawn_ms != null && now - d.drawn_ms < ms; // loaded just after
    };
    if (d.status === "cancelled") return recently(CANCELLED_SHOWN_MS) ? "cancelled" : null;
    if (d.status === "open") return now < d.closes_ms ? "open" : "closed";
    if (d.status === "frozen") return "closed";
    if (d.status !== "drawn") return null;
    if ((revealAt.get(d.id) ?? 0) > Date.now()) return "drawing";
    const entrant = entrantOf(d);
    const win = myWin(d);
    if (win) {
      if (win.status === "claimed" || claimedHere.has(d.id)) return now < d.claim_until_ms ? "claimed" : null;
      if (now < d.claim_until_ms) return "won";
      return recently(RESULT_SHOWN_MS) ? "expired" : null;
    }
    if (!recently(RESULT_SHOWN_MS)) return null;
    return entrant ? "lost" : "done";
  }

  function paintTiers(d) {
    const key = JSON.stringify([d.id, d.tiers]);
    if (key === tiersKey) return;
    tiersKey = key;
    q("[data-lucky-tiers]").replaceChildren(
      ...d.tiers.map((tier) => {
        const li = document.createElement("li");
        li.className = "v-lucky-tier";
        const url = httpUrl(tier.image_url);
        if (url) {
          const img = document.createElement("img");
          img.className = "v-lucky-img";
          img.dataset.productImage = "";
          img.alt = "";
          img.src = url;
          li.append(img);
        }
        const name = document.createElement("span");
        name.className = "v-lucky-tier-name";
        // One prize named like the draw: the title above already says it.
        name.textContent = d.tiers.length === 1 && tier.name === d.title ? "" : tier.name;
        const count = document.createElement("span");
        count.className = "v-lucky-tier-count";
        setText(count, "lucky.tier_count", { n: tier.count });
        li.append(name, count);
        return li;
      }),
    );
  }

  function paintOpen(d, now, entered) {
    const how = q("[data-lucky-how]");
    const mode = d.mode;
    const howKey = { everyone: "lucky.everyone", keyword: "lucky.keyword.how", shake: "lucky.shake.how" }[mode];
    how.hidden = !howKey;
    if (howKey) say(how, howKey);
    const keywordBox = q("[data-lucky-keyword-box]");
    keywordBox.hidden = mode !== "keyword";
    if (mode === "keyword") put(q("[data-lucky-keyword]"), d.keyword || "");
    const join = q("[data-lucky-join]");
    join.hidden = mode !== "join" || entered;
    join.disabled = joining;
    say(join, joining ? "lucky.joining" : "lucky.join");
    const shake = q("[data-lucky-shake]");
    shake.hidden = mode !== "shake";
    if (mode === "shake") {
      q("[data-lucky-shakes]").dataset.n = String(shaker.total);
      say(q("[data-lucky-shakes]"), "lucky.shake.count", { n: shaker.total });
      q("[data-lucky-motion]").hidden = !ShakeCounter.needsPermission() || shaker.listening;
    }
    const clock = q("[data-lucky-clock]");
    const left = d.closes_ms - now;
    clock.dataset.remainingMs = String(Math.max(0, Math.round(left)));
    put(clock, formatClock(left));
    card.dataset.urgent = String(left < 10_000);
  }

  function paintResult(d, v, now) {
    const result = q("[data-lucky-result]");
    const win = myWin(d);
    const prize = win ? d.tiers[win.tier] : null;
    const keys = {
      closed: BY_WHAT_VIEWERS_DID.has(d.mode) ? `lucky.who.${d.mode}` : "lucky.closed",
      drawing: "lucky.drawing",
      won: "lucky.won",
      claimed: "lucky.won",
      expired: "lucky.won",
      lost: "lucky.lost",
      done: "lucky.done",
      cancelled: "lucky.cancelled",
    };
    result.hidden = !keys[v];
    let vars;
    if (prize) vars = { prize: prize.name };
    else if (v === "done") vars = { n: (d.winners || []).length };
    if (keys[v]) say(result, keys[v], vars);
    const form = q("[data-lucky-claim]");
    form.hidden = v !== "won";
    const done = q("[data-lucky-claimed]");
    done.hidden = v !== "claimed";
    const deadline = q("[data-lucky-deadline]");
    deadline.hidden = v !== "won" && v !== "expired";
    if (v === "expired") say(deadline, "lucky.claim.over");
    else if (v === "won") {
      const left = d.claim_until_ms - now;
      if (left < CLAIM_COUNTDOWN_MS) say(deadline, "lucky.claim.within", { time: formatClock(left) });
      else {
        const at = new Date(d.claim_until_ms - client.clockOffsetMs);
        const options = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
        const time = new Intl.DateTimeFormat(document.documentElement.lang, options).format(at);
        say(deadline, "lucky.claim.by", { time });
      }
    }
  }

  function paint() {
    if (!state) return;
    const d = state.draw;
    const now = client.serverNow();
    const v = d ? view(d, now) : null;
    shown = v ? d : null;
    card.hidden = !v;
    syncShaker(d, v);
    if (!v) {
      delete card.dataset.state;
      return;
    }
    card.dataset.drawId = String(d.id);
    if (v === "won" && card.dataset.state === "drawing") announceWin();
    card.dataset.state = v;
    card.dataset.mode = d.mode;
    put(q("[data-lucky-title]"), d.title);
    paintTiers(d);
    const entered = Boolean(entrantOf(d)) || keywordSent.has(d.id);
    card.dataset.entered = String(entered);
    const count = q("[data-lucky-entrants]");
    count.hidden = d.status === "cancelled";
    count.dataset.n = String(d.entrants);
    say(count, "lucky.entrants", { n: d.entrants });

    const open = v === "open";
    q("[data-lucky-timer]").hidden = !open;
    for (const sel of ["[data-lucky-how]", "[data-lucky-keyword-box]", "[data-lucky-join]", "[data-lucky-shake]"]) {
      q(sel).hidden = true;
    }
    if (open) paintOpen(d, now, entered);
    else card.dataset.urgent = "false";
    q("[data-lucky-in]").hidden = !entered || !(open || v === "closed");
    paintResult(d, v, now);

    const verify = q("[data-lucky-verify]");
    const path = typeof d.verify_path === "string" && d.verify_path.startsWith("/d/") ? d.verify_path : null;
    verify.hidden = !path || v === "cancelled";
    if (path && verify.getAttribute("href") !== path) verify.href = path;
    say(verify, "lucky.verify", { code: (d.seed_sha256 || "").slice(0, 8) });
    autoEnter(d, v);
  }

  /** The result just came in and it is a win: bring the card into view (the viewer may be reading
   * comments further down), with a buzz where phones allow it. */
  function announceWin() {
    const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    card.scrollIntoView({ block: "start", behavior: smooth ? "smooth" : "auto" });
    if (navigator.vibrate) navigator.vibrate([120, 80, 240]);
  }

  function syncShaker(d, v) {
    const racing = d && d.mode === "shake" && v === "open";
    if (racing && shakeFor !== d.id) {
      shaker.reset();
      shakeFor = d.id;
      shaker.start();
    } else if (!racing && shaker.active) shaker.stop();
  }

  /** Everyone draws: the phone enters by itself, once, when it sees the open draw. */
  function autoEnter(d, v) {
    if (d.mode !== "everyone" || v !== "open" || entrantOf(d) || autoTried.has(d.id)) return;
    if (client.status !== "live") return;
    autoTried.add(d.id);
    client.request("draw.enter", { id: d.id }).then(
      (result) => learn(result.id, result.entrant),
      (err) => {
        if (err && (err.code === "offline" || err.code === "timeout")) autoTried.delete(d.id);
      },
    );
  }

  async function join() {
    const d = shown;
    if (!d || joining) return;
    joining = true;
    paint();
    try {
      const result = await client.request("draw.enter", { id: d.id });
      learn(result.id, result.entrant);
    } catch (err) {
      toast(err && err.code === "draw_closed" ? "lucky.err.draw_closed" : "err.generic");
    } finally {
      joining = false;
      paint();
    }
  }

  function loadPersonal(personal) {
    if (!personal || !personal.my_draws) return;
    // Wins come with the `draw` event's winners (by pseudonym); absent places are not wins.
    for (const [id, entry] of Object.entries(personal.my_draws)) entrants.set(Number(id), entry.entrant);
    const d = state && state.draw;
    if (d && (d.status === "frozen" || d.status === "drawn")) settled.add(d.id);
    paint();
  }

  const claimForm = initClaimForm(q("[data-lucky-claim]"), async (data) => {
    const d = shown;
    if (!d) return;
    await client.request("draw.claim", { id: d.id, ...data });
    claimedHere.add(d.id);
    paint();
  });

  q("[data-lucky-join]").addEventListener("click", join);
  q("[data-lucky-tap]").addEventListener("click", () => shaker.add(1));
  q("[data-lucky-motion]").addEventListener("click", async () => {
    if (!(await shaker.askPermission())) toast("lucky.shake.denied");
    paint();
  });
  q("[data-lucky-use-keyword]").addEventListener("click", () => {
    if (shown && shown.keyword) composer.fill(shown.keyword);
  });

  // Tests and a curious developer.
  window.lwLucky = {
    shakes: () => shaker.total,
    unsent: () => shaker.pending + (shaker.inFlight ? 1 : 0),
    entrant: (id) => entrants.get(id) ?? null,
  };

  return {
    /** A `draw.entry` frame: the server put this viewer in a draw (by a comment, or by what it did). */
    learnEntry(data) {
      settled.add(data.id);
      learn(data.id, data.entrant);
    },
    /** Every welcome carries the viewer's entries and wins (`snap`: the state it goes with). */
    loadPersonal(personal, snap) {
      if (snap) state = snap;
      loadPersonal(personal);
    },
    /** A `draw` event (live, with the server's timestamp) after it was applied to the state. */
    observe(data) {
      const before = seen.get(data.id);
      if (!before || before.status !== data.status) {
        seen.set(data.id, { status: data.status, at: Date.now() });
        if (data.status === "drawn") revealAt.set(data.id, Date.now() + REVEAL_MS);
        if (data.status === "open") claimForm.reset();
      }
    },
    /** The viewer's own comment was accepted: a keyword in it entered them (optimistic). */
    sent(item) {
      const d = state && state.draw;
      if (!d || d.mode !== "keyword" || d.status !== "open" || !d.keyword) return;
      if (client.serverNow() >= d.closes_ms) return;
      if (foldForMatch(item.text).includes(foldForMatch(d.keyword))) {
        keywordSent.add(d.id);
        paint();
      }
    },
    render(next) {
      state = next;
      paint();
    },
    tick: paint,
  };
}
