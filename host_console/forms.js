// Small DOM helpers of the Selling tab: elements, number fields, and error lines that show the
// translated error code and, beside it, what the server said ("product 3: price ...").
import { isBusy, withBusy } from "/static/js/busy.js";
import { setText, t } from "/static/js/i18n.js";
import { errorKey } from "/static/js/ui.js";

// Error codes the selling actions answer with that the shared errorKey does not translate.
const SELL_ERRORS = new Set([
  "invalid", "empty", "too_long", "bad_state", "conflict", "not_found", "bad_json", "too_large",
  "unauthorized", "forbidden", "bad_origin", "rate_limited",
]);
// The server's English message adds nothing to these (the client made them up).
const NO_DETAIL = new Set(["offline", "timeout"]);

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A button labelled from the catalog; ``data`` becomes data-* attributes. */
export function button(key, data = {}, className = "", vars) {
  const b = el("button", className);
  b.type = "button";
  Object.assign(b.dataset, data);
  setText(b, key, vars);
  return b;
}

/** Whether a link is one a browser may follow from our pages (http or https). */
export function httpUrl(value) {
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

/** A form field as a whole number in [low, high], or null (empty, decimals, out of range). */
export function wholeNumber(value, low, high) {
  const text = String(value).normalize("NFKC").trim();
  if (!/^-?\d+$/.test(text)) return null;
  const n = Number(text);
  return n >= low && n <= high ? n : null;
}

/** A local validation error, shaped like the server's. */
export class FormError extends Error {
  constructor(key, vars, field) {
    super(key);
    this.key = key;
    this.vars = vars;
    this.field = field;
  }
}

export function clearError(target) {
  target.replaceChildren();
  // A line that showed a catalog text (setText) must not be re-translated over what comes next.
  delete target.dataset.i18n;
  delete target.dataset.i18nVars;
  delete target.dataset.code;
}

/** Show an error (a FormError, or an ``{code, message}`` from the server) in ``target``. */
export function showError(target, err) {
  clearError(target);
  const text = el("span");
  if (err instanceof FormError) {
    setText(text, err.key, err.vars);
    target.dataset.code = "form";
    target.replaceChildren(text);
    if (err.field) {
      err.field.setAttribute("aria-invalid", "true");
      err.field.addEventListener("input", () => err.field.removeAttribute("aria-invalid"), { once: true });
      err.field.focus();
    }
    return;
  }
  const code = (err && err.code) || "generic";
  setText(text, SELL_ERRORS.has(code) ? `sell.err.${code}` : errorKey(err));
  target.dataset.code = code;
  target.replaceChildren(text);
  if (err && err.message && !NO_DETAIL.has(code)) {
    const detail = el("span", "s-detail", err.message);
    detail.lang = "en"; // the server's messages are for developers, in English
    target.append(detail);
  }
}

/**
 * A form's send: ``errorEl`` cleared, then ``fn`` (read the form, send, report) run with ``button``
 * busy; what it throws (a FormError, the server's refusal) is shown in ``errorEl`` by ``show``. While
 * the button is busy, another send does nothing.
 */
export async function sendForm(button, errorEl, fn, show = showError) {
  if (isBusy(button)) return;
  clearError(errorEl);
  try {
    await withBusy(button, fn);
  } catch (err) {
    show(errorEl, err);
  }
}

/** Copy text, or show it in a prompt where the clipboard is not allowed (plain http). */
export async function copyText(text, done) {
  try {
    await navigator.clipboard.writeText(text);
    done();
  } catch {
    window.prompt(t("host.copy"), text);
  }
}
