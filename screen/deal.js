// The big screen's product banner: the pinned product, or the running deal with its price, a large
// countdown on the server's clock, the units left and claimed, and a SOLD OUT stamp while none are
// left. Shows counts only: never a viewer's name or code.
import { setText } from "/static/js/i18n.js";
import { formatMoney } from "/static/js/money.js";
import { countdownTarget, percentOff, phase, put } from "/static/js/deals.js";
import { formatClock } from "/static/js/time.js";

// The last seconds of a deal are shown in the accent colour (a cue for the host and the room).
const URGENT_MS = 10_000;

function say(el, key, vars) {
  const v = vars ? JSON.stringify(vars) : undefined;
  if (el.dataset.i18n !== key || el.dataset.i18nVars !== v) setText(el, key, vars);
}

export function initDeal({ client, tracker, stage }) {
  const box = document.querySelector("[data-deal]");
  const q = (sel) => box.querySelector(sel);
  let state = null;
  let shown = null;

  function paint() {
    if (!state) return;
    const now = client.serverNow();
    const products = state.products || [];
    const d = tracker.current(state.discounts, now);
    const pinnedId = state.pinned ? state.pinned.product_id : null;
    const product = products.find((p) => p.id === (d ? d.product_id : pinnedId)) || null;
    shown = d;
    const visible = Boolean(d || product);
    box.hidden = !visible;
    if (stage.dataset.hasDeal !== String(visible)) stage.dataset.hasDeal = String(visible);
    if (!visible) return;

    const img = q("[data-deal-image]");
    const url = product && /^https?:\/\//i.test(product.image_url || "") ? product.image_url : null;
    img.hidden = !url;
    if (url && img.getAttribute("src") !== url) img.src = url;
    put(q("[data-deal-name]"), product ? product.name : "");
    const p = d ? phase(d, now) : "none";
    box.dataset.phase = p;
    say(q("[data-deal-label]"), d ? "shop.deal.flash" : "shop.pinned");

    const { currency, digits } = d || product;
    put(q("[data-deal-price]"), formatMoney(d ? d.price_minor : product.price_minor, currency, { digits }));
    for (const sel of ["[data-deal-list]", "[data-deal-off]", "[data-deal-timer]", "[data-deal-stock]"]) {
      q(sel).hidden = !d;
    }
    q("[data-deal-stamp]").hidden = p !== "sold_out";
    if (!d) return;
    put(q("[data-deal-list]"), formatMoney(d.list_price_minor, currency, { digits }));
    say(q("[data-deal-off]"), "shop.deal.off", { n: percentOff(d) });

    const clock = q("[data-deal-clock]");
    const remaining = p === "ended" ? 0 : countdownTarget(d, now) - now;
    clock.dataset.remainingMs = String(Math.max(0, Math.round(remaining)));
    const text = formatClock(remaining);
    put(clock, text);
    clock.dataset.long = String(text.length > 5); // hours: a smaller size keeps it on one line
    const timerKey = { scheduled: "shop.deal.starts_in", ended: "shop.deal.ended" }[p] || "shop.deal.ends_in";
    say(q("[data-deal-timer-label]"), timerKey);
    box.dataset.urgent = String(p === "live" && remaining < URGENT_MS);
    put(q("[data-deal-left]"), String(d.remaining));
    put(q("[data-deal-claimed]"), String(d.claimed));
  }

  window.lwDeal = {
    remainingMs: () => (shown ? countdownTarget(shown, client.serverNow()) - client.serverNow() : null),
  };

  return {
    render(next) {
      state = next;
      paint();
    },
    tick: paint,
  };
}
