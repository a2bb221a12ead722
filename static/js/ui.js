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
