// The big screen's lucky draw: while entries are open, the prize, how to enter (the keyword large),
// a big countdown on the server's clock and the live entrant count; when the draw is drawn, reels of
// masked names that land on the server's winners, then the winners with their prizes. Names come
// masked from the server (the public shape) and are only ever set as text.
// The panel takes the stage while a draw is open or closed, and keeps the winners up for a while
// after the draw, until the host starts another draw, cancels it, or switches the layout.
import { setText } from "/static/js/i18n.js";
import { put } from "/static/js/deals.js";
import { formatClock } from "/static/js/time.js";
import { ROLL_MS, confetti, reducedMotion, reelNames, roll, settle } from "/screen-assets/reel.js";

// Winners stay on the stage this long after the draw (unless the layout changes or a draw starts).
export const WINNERS_SHOWN_MS = 120_000;
// The last seconds of the entry window are shown in the accent colour.
const URGENT_MS = 10_000;
// More winner cards than this would be unreadable from the back of the hall: the rest are counted.
const MAX_CARDS = 40;
const BY_WHAT_VIEWERS_DID = new Set(["askers", "claimers", "buyers"]);
const HOW = { keyword: "lucky.screen.keyword", shake: "lucky.screen.shake", everyone: "lucky.screen.everyone" };

function say(el, key, vars) {
  const v = vars ? JSON.stringify(vars) : undefined;
  if (el.dataset.i18n !== key || el.dataset.i18nVars !== v) setText(el, key, vars);
}

function httpUrl(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
}

/** The card size for a number of winners (fewer winners, bigger names). */
function sizeFor(n) {
  if (n <= 1) return "xl";
  if (n <= 3) return "l";
  if (n <= 6) return "m";
  if (n <= 12) return "s";
  return "xs";
}

export function initDraw({ client, stage }) {
  const box = document.querySelector("[data-draw]");
  const q = (sel) => box.querySelector(sel);
  const publicHost = (() => {
    try {
      return new URL(box.dataset.publicBase).host;
    } catch {
      return location.host;
    }
  })();
  let state = null;
  let tiersKey = "";
  const drawnSeenAt = new Map(); // draw id -> Date.now() when this screen saw it drawn live
  const dismissed = new Set(); // draws taken off the stage (a layout switch)
  const toRoll = new Set(); // draws whose new winners roll at the next paint
  let cards = new Map(); // place -> {li, entrant}
  let cardsFor = null;
  let rolling = 0; // reels still spinning

  /** Whether the draw is on the stage now. */
  function visible(d, now) {
    if (!d || dismissed.has(d.id) || d.status === "cancelled") return false;
    if (d.status === "open" || d.status === "frozen") return true;
    if (d.status !== "drawn") return false;
    const seenAt = drawnSeenAt.get(d.id);
    if (seenAt !== undefined) return Date.now() - seenAt < WINNERS_SHOWN_MS;
    // Loaded already drawn (a reload): shown for what is left of the time since the draw.
    const drawnMs = d.drawn_ms ?? Math.max(d.closes_ms || 0, d.created_ms || 0);
    return now - drawnMs < WINNERS_SHOWN_MS;
  }

  function paintTiers(d) {
    const key = JSON.stringify([d.id, d.tiers, document.documentElement.lang]);
    if (key === tiersKey) return;
    tiersKey = key;
    const img = q("[data-draw-image]");
    const url = d.tiers.map((t) => httpUrl(t.image_url)).find(Boolean) || null;
    img.hidden = !url;
    if (url && img.getAttribute("src") !== url) img.src = url;
    q("[data-draw-tiers]").replaceChildren(
      ...d.tiers.map((tier) => {
        const li = document.createElement("li");
        li.className = "s-draw-tier";
        const name = document.createElement("span");
        name.className = "s-draw-tier-name";
        // One prize named like the draw: the title above already says it.
        name.textContent = d.tiers.length === 1 && tier.name === d.title ? "" : tier.name;
        const count = document.createElement("span");
        count.className = "s-draw-tier-count";
        setText(count, "lucky.tier_count", { n: tier.count });
        li.append(name, count);
        return li;
      }),
    );
  }

  function paintOpen(d, now) {
    const open = d.status === "open" && now < d.closes_ms;
    const how = q("[data-draw-how]");
    if (!open) say(how, BY_WHAT_VIEWERS_DID.has(d.mode) ? `lucky.who.${d.mode}` : "lucky.screen.closed");
    else say(how, HOW[d.mode] || "lucky.screen.join");
    const keyword = q("[data-draw-keyword]");
    keyword.hidden = !(open && d.mode === "keyword" && d.keyword);
    if (!keyword.hidden) {
      put(keyword, d.keyword);
      keyword.dataset.long = String([...d.keyword].length > 8);
    }
    q("[data-draw-timer]").hidden = !open;
    const clock = q("[data-draw-clock]");
    const left = open ? d.closes_ms - now : 0;
    clock.dataset.remainingMs = String(Math.max(0, Math.round(left)));
    const text = formatClock(left);
    put(clock, text);
    clock.dataset.long = String(text.length > 5);
    box.dataset.urgent = String(open && left < URGENT_MS);
    const n = q("[data-draw-entrants]");
    n.dataset.n = String(d.entrants);
    put(n, String(d.entrants));
  }

  function buildCard(w, d) {
    const li = document.createElement("li");
    li.className = "s-win";
    li.dataset.place = String(w.place);
    const tier = document.createElement("div");
    tier.className = "s-win-tier";
    tier.textContent = d.tiers[w.tier] ? d.tiers[w.tier].name : "";
    const reel = document.createElement("div");
    reel.className = "s-reel";
    li.append(tier, reel);
    return li;
  }

  /** Make the winner cards; roll the ones whose winner is new (`animate`), or show them still. */
  function paintWinners(d, animate) {
    if (cardsFor !== d.id) {
      cards = new Map();
      cardsFor = d.id;
      q("[data-draw-winners]").replaceChildren();
    }
    const list = q("[data-draw-winners]");
    const winners = (d.winners || []).slice().sort((a, b) => a.place - b.place);
    const shown = winners.slice(0, MAX_CARDS);
    list.dataset.size = sizeFor(shown.length);
    list.dataset.count = String(shown.length);
    const places = new Set(shown.map((w) => w.place));
    for (const [place, card] of cards) {
      if (!places.has(place)) {
        card.li.remove();
        cards.delete(place);
      }
    }
    const rolls = [];
    shown.forEach((w, i) => {
      let card = cards.get(w.place);
      if (!card) {
        card = { li: buildCard(w, d), entrant: null };
        cards.set(w.place, card);
      }
      if (list.children[i] !== card.li) list.insertBefore(card.li, list.children[i] || null);
      card.li.dataset.status = w.status;
      if (card.entrant === w.entrant) return;
      card.entrant = w.entrant;
      const reel = card.li.querySelector(".s-reel");
      if (!animate || reducedMotion()) {
        settle(reel, w.name);
        card.li.dataset.landed = "true";
        return;
      }
      card.li.dataset.landed = "false";
      rolls.push(
        roll(reel, reelNames(d.sample, w.name, d.seed, w.place), rolls.length).then(() => {
          if (card.entrant !== w.entrant) return;
          settle(reel, w.name);
          card.li.dataset.landed = "true";
        }),
      );
    });
    const note = q("[data-draw-note]");
    const more = winners.length - shown.length;
    const nobody = winners.length === 0;
    note.hidden = !(d.unfilled > 0 || nobody || more > 0);
    if (nobody) say(note, "lucky.screen.nobody");
    else if (d.unfilled > 0) say(note, "lucky.screen.unfilled", { n: d.unfilled });
    else if (more > 0) say(note, "lucky.screen.more", { n: more });
    if (rolls.length) {
      rolling += 1;
      box.dataset.phase = "rolling";
      Promise.all(rolls).then(() => {
        rolling -= 1;
        if (rolling === 0 && cardsFor === d.id) {
          box.dataset.phase = "landed";
          confetti(q("[data-draw-confetti]"));
        }
      });
    } else if (!rolling) box.dataset.phase = "landed";
  }

  function paint() {
    if (!state) return;
    const now = client.serverNow();
    const d = state.draw;
    const show = visible(d, now);
    box.hidden = !show;
    if (stage.dataset.hasDraw !== String(show)) stage.dataset.hasDraw = String(show);
    if (!show) {
      delete box.dataset.phase;
      return;
    }
    box.dataset.drawId = String(d.id);
    box.dataset.status = d.status;
    box.dataset.mode = d.mode;
    box.dataset.tiers = String(d.tiers.length);
    put(q("[data-draw-title]"), d.title);
    paintTiers(d);
    const drawn = d.status === "drawn";
    q("[data-draw-open]").hidden = drawn;
    q("[data-draw-result]").hidden = !drawn;
    if (drawn) {
      paintWinners(d, toRoll.has(d.id));
      toRoll.delete(d.id);
    } else {
      box.dataset.phase = d.status === "open" && now < d.closes_ms ? "open" : "closed";
      paintOpen(d, now);
    }
    say(q("[data-draw-verify]"), "lucky.screen.verify", {
      code: (d.seed_sha256 || "").slice(0, 8),
      path: `${publicHost}${d.verify_path || ""}`,
    });
  }

  // Tests and the operator's console: finish the reels now, and what the screen shows.
  window.lwDrawScreen = {
    finish: () => {
      for (const a of box.getAnimations({ subtree: true })) a.finish();
    },
    rollMs: ROLL_MS,
  };

  return {
    /** A live `draw` event (before the render that shows it): new winners roll, including a
     * place drawn again for an absent winner; winners loaded with the page stand still. */
    observe(data) {
      if (data.status !== "drawn") return;
      if (!drawnSeenAt.has(data.id)) drawnSeenAt.set(data.id, Date.now());
      toRoll.add(data.id);
    },
    /** The host moved on (a layout switch, a spotlight): the winners make way. A running draw stays. */
    dismiss() {
      const d = state && state.draw;
      if (d && d.status === "drawn") dismissed.add(d.id);
      paint();
    },
    render(next) {
      state = next;
      paint();
    },
    tick: paint,
  };
}
