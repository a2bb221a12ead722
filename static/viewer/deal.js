// The phone's deal card: the current discount with its countdown, stock and claim button; the
// viewer's claims (code, copy, checkout link, hold countdown, give back); following the room.
// The phone explains why a claim is not possible yet (not eligible, not started); the server alone
// decides, and its refusals are translated from their error codes.
import { setText } from "/static/js/i18n.js";
import { formatMoney } from "/static/js/money.js";
import { errorKey, toast } from "/static/js/ui.js";
import { countdownTarget, percentOff, phase, put } from "/static/js/deals.js";
import { formatClock } from "/static/js/time.js";
import { syncList } from "/static/viewer/lists.js";

const ACTIVE = new Set(["reserved", "redeemed"]);
const SELLING_ERRORS = new Set([
  "not_started", "discount_ended", "sold_out", "limit_reached", "not_eligible", "not_found",
]);
const CLAIM_NEWS = { expired: "shop.mine.expired", released: "shop.mine.released", redeemed: "shop.mine.redeemed" };
// The second tap of "give it back" must come within this time.
const RELEASE_CONFIRM_MS = 4000;
// A refusal stays under the button this long, unless things change for the better before.
const ERROR_SHOWN_MS = 8000;
const BUTTON = {
  live: "shop.claim.button",
  scheduled: "shop.claim.not_started",
  sold_out: "shop.claim.sold_out",
  ended: "shop.claim.ended",
  not_eligible: "shop.claim.locked",
};

/** setText, skipped when the key and values are already shown (the card repaints 10 times a second). */
function say(el, key, vars) {
  const v = vars ? JSON.stringify(vars) : undefined;
  if (el.dataset.i18n !== key || el.dataset.i18nVars !== v) setText(el, key, vars);
}

function httpUrl(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard API on plain http: the old way still works on phones.
    const area = document.createElement("textarea");
    area.value = text;
    area.readOnly = true;
    area.style.cssText = "position:fixed;top:0;left:0;opacity:0";
    document.body.append(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch {
      ok = false;
    }
    area.remove();
    return ok;
  }
}

export function initDeal({ client, tracker, intents, askedAbout, onAsk }) {
  const card = document.querySelector("[data-deal]");
  const q = (sel) => card.querySelector(sel);
  const claimButton = q("[data-deal-claim]");
  const claimsList = q("[data-deal-claims]");
  const coupons = document.querySelector("[data-coupons]");
  const couponsList = coupons.querySelector("[data-coupons-list]");
  const claims = new Map(); // claim id -> the viewer's claim
  let following = false;
  let joinedMs = null;
  let state = null;
  let claiming = false;
  let error = null; // {discountId, view, key, at}: why the last claim was refused
  let shown = null; // the discount on the card

  const heldOn = (d) => [...claims.values()].filter((c) => c.discount_id === d.id && ACTIVE.has(c.status));

  /** Why this viewer may not claim yet, computed from their own state (null: nothing stops them). */
  function reason(d, now) {
    if (d.audience === "followers" && !following) return { key: "shop.reason.followers", follow: true };
    if (d.audience === "watchers") {
      const left = (joinedMs ?? now) + (d.watch_minutes || 0) * 60_000 - now;
      const vars = { n: d.watch_minutes, time: formatClock(left) };
      if (left > 0) return { key: "shop.reason.watchers", vars };
    }
    if (d.audience === "askers" && !askedAbout(d.product_id)) return { key: "shop.reason.askers", ask: true };
    return null;
  }

  function view(d, now, why) {
    if (heldOn(d).length >= d.per_viewer_limit) return "claimed";
    const p = phase(d, now);
    if (p !== "live") return p;
    return why ? "not_eligible" : "live";
  }

  function paintFollow() {
    for (const button of document.querySelectorAll("[data-follow]")) {
      button.setAttribute("aria-pressed", String(following));
      say(button, following ? "shop.following" : "shop.follow");
    }
  }

  function paintClaim(li, c, now, product) {
    li.dataset.itemId = String(c.id);
    li.dataset.status = c.status;
    const label = li.querySelector("[data-claim-label]");
    if (product === undefined) say(label, "shop.mine.title");
    else {
      delete label.dataset.i18n;
      put(label, product ? product.name : "");
    }
    put(li.querySelector("[data-claim-code]"), c.code);
    const link = li.querySelector("[data-claim-checkout]");
    const url = httpUrl(c.checkout_url);
    link.hidden = !url;
    if (url && link.getAttribute("href") !== url) link.href = url;
    const note = li.querySelector("[data-claim-note]");
    if (c.status === "reserved") {
      const left = c.expires_ms - now;
      note.dataset.remainingMs = String(Math.max(0, Math.round(left)));
      say(note, "shop.mine.expires", { time: formatClock(left) });
    } else say(note, "shop.mine.redeemed");
    li.querySelector("[data-claim-release]").hidden = c.status !== "reserved";
  }

  /** The codes for the deal on the card, and below it the viewer's codes from earlier deals. */
  function paintClaims(d, now) {
    const held = [...claims.values()].filter((c) => ACTIVE.has(c.status)).sort((a, b) => b.id - a.id);
    const here = held.filter((c) => d && c.discount_id === d.id);
    const elsewhere = held.filter((c) => !d || c.discount_id !== d.id);
    claimsList.hidden = here.length === 0;
    syncList(claimsList, here, buildClaim, (li, c) => paintClaim(li, c, now));
    coupons.hidden = elsewhere.length === 0;
    const products = new Map((state.products || []).map((p) => [p.id, p]));
    syncList(couponsList, elsewhere, buildClaim, (li, c) => {
      paintClaim(li, c, now, products.get(c.product_id) || null);
    });
  }

  function buildClaim() {
    const li = document.createElement("li");
    li.className = "v-claim";
    const label = document.createElement("span");
    label.className = "v-claim-label";
    label.dataset.claimLabel = "";
    const row = document.createElement("div");
    row.className = "v-claim-row";
    const code = document.createElement("code");
    code.className = "v-claim-code";
    code.dataset.claimCode = "";
    const copy = document.createElement("button");
    copy.type = "button";
    copy.dataset.claimCopy = "";
    setText(copy, "shop.mine.copy");
    row.append(code, copy);
    const checkout = document.createElement("a");
    checkout.className = "button primary v-claim-checkout";
    checkout.dataset.claimCheckout = "";
    checkout.target = "_blank";
    checkout.rel = "noopener";
    setText(checkout, "shop.mine.checkout");
    const foot = document.createElement("div");
    foot.className = "v-claim-foot";
    const note = document.createElement("span");
    note.className = "muted";
    note.dataset.claimNote = "";
    const release = document.createElement("button");
    release.type = "button";
    release.className = "v-claim-release";
    release.dataset.claimRelease = "";
    setText(release, "shop.mine.release");
    foot.append(note, release);
    li.append(label, row, checkout, foot);
    return li;
  }

  function paint() {
    if (!state) return;
    const now = client.serverNow();
    const d = tracker.current(state.discounts, now);
    shown = d;
    card.hidden = !d;
    paintClaims(d, now);
    if (!d) return;
    const product = (state.products || []).find((p) => p.id === d.product_id);
    const p = phase(d, now);
    const why = p === "ended" ? null : reason(d, now);
    const v = view(d, now, why);
    card.dataset.discountId = String(d.id);
    card.dataset.phase = p;
    card.dataset.state = v;

    const img = q("[data-deal-image]");
    const url = httpUrl(product && product.image_url);
    img.hidden = !url;
    if (url && img.getAttribute("src") !== url) img.src = url;
    put(q("[data-deal-name]"), product ? product.name : "");
    put(q("[data-deal-price]"), formatMoney(d.price_minor, d.currency, { digits: d.digits }));
    put(q("[data-deal-list]"), formatMoney(d.list_price_minor, d.currency, { digits: d.digits }));
    say(q("[data-deal-off]"), "shop.deal.off", { n: percentOff(d) });

    const clock = q("[data-deal-clock]");
    const remaining = p === "ended" ? 0 : countdownTarget(d, now) - now;
    clock.dataset.remainingMs = String(Math.max(0, Math.round(remaining)));
    put(clock, formatClock(remaining));
    const timerKey = { scheduled: "shop.deal.starts_in", ended: "shop.deal.ended" }[p] || "shop.deal.ends_in";
    say(q("[data-deal-timer-label]"), timerKey);
    card.dataset.urgent = String(p === "live" && remaining < 10_000);

    const left = q("[data-deal-left]");
    left.dataset.n = String(d.remaining);
    say(left, "shop.deal.left", { n: d.remaining });
    const ratio = d.quantity > 0 ? Math.min(1, d.claimed / d.quantity) : 1;
    q("[data-deal-bar]").style.setProperty("--p", String(ratio));

    const reasonEl = q("[data-deal-reason]");
    reasonEl.hidden = !why;
    if (why) say(reasonEl, why.key, why.vars);
    q("[data-deal-follow]").hidden = !(why && why.follow);
    q("[data-deal-ask]").hidden = !(why && why.ask);

    claimButton.hidden = v === "claimed";
    claimButton.disabled = claiming || v !== "live";
    if (claiming) say(claimButton, "shop.claim.busy");
    else if (v !== "claimed") say(claimButton, v === "live" && heldOn(d).length ? "shop.claim.again" : BUTTON[v]);

    const errorEl = q("[data-deal-error]");
    const better = v !== error?.view && (v === "live" || v === "claimed");
    if (error && (error.discountId !== d.id || better || Date.now() - error.at > ERROR_SHOWN_MS)) error = null;
    errorEl.hidden = !error;
    if (error) say(errorEl, error.key);
    else errorEl.textContent = "";
  }

  async function claim() {
    const d = shown;
    if (!d || claiming) return;
    claiming = true;
    error = null;
    paint();
    try {
      const result = await client.request("discount.claim", { id: d.id });
      claims.set(result.id, result);
      toast("shop.mine.claimed");
      document.dispatchEvent(new CustomEvent("lw:claimed", { detail: result })); // the opt-in box offers itself
    } catch (err) {
      const code = err && err.code;
      const key = SELLING_ERRORS.has(code) ? `shop.err.${code}` : errorKey(err);
      const now = client.serverNow();
      error = { discountId: d.id, view: view(d, now, reason(d, now)), key, at: Date.now() };
    } finally {
      claiming = false;
      paint();
    }
  }

  /** A claim changed (a `claim` frame: the hold ran out, given back, redeemed; or a release's ack). */
  function applyClaim(c) {
    const before = claims.get(c.id);
    claims.set(c.id, { ...before, ...c });
    if (CLAIM_NEWS[c.status] && (!before || before.status !== c.status)) toast(CLAIM_NEWS[c.status]);
    paint();
  }

  async function follow(on) {
    try {
      const result = await client.request("room.follow", { on });
      following = result.following;
      paintFollow();
      paint();
    } catch (err) {
      toast(errorKey(err));
    }
  }

  claimButton.addEventListener("click", claim);
  for (const button of document.querySelectorAll("[data-follow]")) {
    button.addEventListener("click", () => follow(!following));
  }
  q("[data-deal-ask]").addEventListener("click", () => shown && onAsk(shown.product_id));
  async function onClaimClick(e) {
    const li = e.target.closest("[data-item-id]");
    if (!li) return;
    const c = claims.get(Number(li.dataset.itemId));
    if (!c) return;
    if (e.target.closest("[data-claim-copy]")) {
      toast((await copyText(c.code)) ? "shop.mine.copied" : "shop.mine.copy_failed");
    } else if (e.target.closest("[data-claim-checkout]")) {
      intents.checkoutOpened(c.product_id, c.discount_id);
    } else if (e.target.closest("[data-claim-release]")) {
      // Two taps: a unit given back in a rush is gone for good.
      const button = e.target.closest("[data-claim-release]");
      if (!button.dataset.confirm) {
        button.dataset.confirm = "1";
        setText(button, "shop.mine.release_confirm");
        setTimeout(() => {
          delete button.dataset.confirm;
          setText(button, "shop.mine.release");
        }, RELEASE_CONFIRM_MS);
        return;
      }
      try {
        applyClaim(await client.request("discount.release", { id: c.id }));
      } catch (err) {
        toast(errorKey(err));
      }
      paint();
    }
  }
  claimsList.addEventListener("click", onClaimClick);
  couponsList.addEventListener("click", onClaimClick);

  // Tests and a curious developer: the countdown as computed right now.
  window.lwDeal = {
    remainingMs: () => (shown ? countdownTarget(shown, client.serverNow()) - client.serverNow() : null),
  };

  return {
    /** Every welcome (resumed or not) carries the viewer's follow state, join time and claims. */
    loadPersonal(personal) {
      if (!personal) return;
      following = Boolean(personal.following);
      joinedMs = personal.joined_ms ?? null;
      claims.clear();
      for (const c of personal.my_claims || []) claims.set(c.id, { ...c });
      paintFollow();
      paint();
    },
    applyClaim,
    render(next) {
      state = next;
      paint();
    },
    tick: paint,
  };
}
