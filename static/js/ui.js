// Small rendering helpers shared by the surfaces.
import { setText, t } from "/static/js/i18n.js";

export function pageData() {
  return JSON.parse(document.getElementById("lw-page").textContent);
}

export function renderStatus(el, status) {
  if (!el) return;
  el.dataset.status = status;
  setText(el, `status.${status}`);
}

export function renderPresence(el, presence) {
  if (!el || !presence) return;
  setText(el, "presence.viewers", { n: presence.viewers });
}

const intlDigits = new Map();

/** Integer minor units as money in the page's language. `digits` is the currency's fraction digits as
 * the server counts them (products, deals and claims carry it); without it, as Intl knows them. */
export function formatPrice(minor, currency, digits) {
  let n = Number.isInteger(digits) ? digits : 2;
  try {
    if (!Number.isInteger(digits)) {
      if (!intlDigits.has(currency)) {
        const options = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions();
        intlDigits.set(currency, options.maximumFractionDigits);
      }
      n = intlDigits.get(currency);
    }
    const options = { style: "currency", currency, minimumFractionDigits: n, maximumFractionDigits: n };
    return new Intl.NumberFormat(document.documentElement.lang, options).format(minor / 10 ** n);
  } catch {
    return `${(minor / 10 ** n).toFixed(n)} ${currency}`;
  }
}

let toastTimer;
export function toast(key, vars) {
  let el = document.querySelector(".toast");
  if (!el) {
    el = document.createElement("div");
    el.className = "toast";
    el.setAttribute("role", "status");
    document.body.append(el);
  }
  setText(el, key, vars);
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.hidden = true), 2500);
}

export function errorKey(err) {
  const code = err && err.code;
  const known = [
    "empty", "too_long", "invalid", "rate_limited", "forbidden", "bad_state", "timeout", "offline",
    "slow_mode", "muted", "banned", "taken",
  ];
  return known.includes(code) ? `err.${code}` : "err.generic";
}

export { t };
