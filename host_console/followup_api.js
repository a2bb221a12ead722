// What the Follow-up tab's parts share: the follow-up API (server/followup/console.py) on the console's
// host session, its errors in our words, and the labels of events, channels and statuses.
import { api } from "/static/js/http.js";
import { currentLang, setText, t } from "/static/js/i18n.js";
import { FormError, el, showError } from "/console-assets/forms.js";

// Codes the follow-up API answers with that have a precise wording of their own (fu.err.<code>).
const FU_ERRORS = new Set([
  "invalid", "bad_template", "unknown_template", "bad_email", "bad_phone", "not_found", "conflict",
  "unauthorized", "offline", "bad_json", "too_large", "rate_limited",
]);
// The server's limits (server/followup/rules.py and console.py).
export const SLUG = /^[a-z0-9][a-z0-9_-]{0,39}$/;
export const NAME_MAX_CHARS = 120;
export const MAX_STEPS = 20;
export const MAX_WAIT_MINUTES = 90 * 24 * 60;
export const MAX_STALE_MINUTES = 30 * 24 * 60;
export const COUPON_MAX_CHARS = 40;
export const CHANNELS = ["email", "sms", "push", "webhook", "inapp"];
// Message statuses that are still on their way (a campaign's progress counts the others as done).
export const PENDING = new Set(["scheduled", "claimed", "sending", "uncertain"]);

/** The follow-up API of one room; its calls resolve with the JSON answer or reject with an ApiError. */
export class FollowupApi {
  constructor(roomId) {
    this.base = `/api/rooms/${encodeURIComponent(roomId)}/followup`;
  }

  call(method, path = "", body = undefined) {
    return api(method, this.base + path, body);
  }

  get(path = "") {
    return this.call("GET", path);
  }

  post(path, body = {}) {
    return this.call("POST", path, body);
  }
}

/** Show an error (a FormError or an ApiError) in ``target``: our words, then what the server said. */
export function showFuError(target, err) {
  showError(target, err);
  const code = err && err.code;
  if (err instanceof FormError || !FU_ERRORS.has(code) || !target.firstChild) return;
  setText(target.firstChild, `fu.err.${code}`);
}

/**
 * A row's action (cancel a campaign, retry a message, pause a journey) of a Follow-up ``part``: at
 * most one per ``id`` at a time (``part.busy`` holds the ids, so a list redrawn meanwhile keeps the
 * row's button off). ``send`` does it and says so, then the tab reloads; a refusal is shown in
 * ``errorEl``. Either way the row's button as the list has it now (``button()``) is on again.
 */
export async function rowAction(part, { id, button, errorEl }, send) {
  if (part.busy.has(id)) return;
  part.busy.add(id);
  button().disabled = true;
  try {
    await send();
    part.busy.delete(id); // the redraw after the reload shows the button ready again
    await part.ctx.reload();
  } catch (err) {
    showFuError(errorEl, err);
  } finally {
    part.busy.delete(id);
    const current = button();
    if (current) current.disabled = false;
  }
}

/** An event kind in words; a kind the catalog does not know yet shows as it is. */
export function eventLabel(kind) {
  if (!kind) return t("fu.none");
  const key = `fu.event.${kind}`;
  return t(key) === key ? kind : t(key);
}

/** An option for an event kind (labelled from the catalog, or the kind itself when it is new). */
export function eventOption(kind) {
  const node = el("option", "", eventLabel(kind));
  node.value = kind;
  return node;
}

export function channelLabel(channel) {
  return t(`fu.channel.${channel === "*" ? "any" : channel}`);
}

export function segmentLabel(segment) {
  return t(`fu.segment.${segment}`);
}

export function localeLabel(locale) {
  return t(`fu.locale.${locale === "zh-CN" ? "zh" : "en"}`);
}

/** A message status as a small badge. */
export function statusBadge(status) {
  const badge = el("span", "s-status f-status");
  badge.dataset.status = status;
  setText(badge, `fu.msg.${status}`);
  return badge;
}

export function numberText(n) {
  return Number(n || 0).toLocaleString(currentLang());
}

export function whenText(ms) {
  return new Date(ms).toLocaleString(currentLang(), {
    month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });
}

/** Text the server wrote for developers (reasons, paused reasons): marked English. */
export function serverText(text, className = "f-reason") {
  const node = el("span", className, text || "");
  node.lang = "en";
  return node;
}

// A message's reason that names a channel off on the server (server/followup/delivery.py), in our words.
const CHANNEL_OFF = /^(\w+) is not configured on this server$/;

/** A message's reason: the parts we have words for translated, the others as the server wrote them. */
export function reasonText(text) {
  const node = el("span", "f-reason");
  (text || "").split("; ").forEach((part, i) => {
    if (i) node.append("; ");
    const off = CHANNEL_OFF.exec(part);
    if (off && CHANNELS.includes(off[1])) {
      const span = el("span");
      setText(span, "fu.reason.channel_off", { channel: channelLabel(off[1]) });
      node.append(span);
    } else node.append(serverText(part, ""));
  });
  return node;
}

/** Set ``node`` to the setup warning of a channel that is off on this server (empty: hidden). */
export function channelOffWarning(node, channel, configured) {
  const off = Boolean(channel) && channel !== "auto" && !configured.has(channel);
  node.hidden = !off;
  if (!off) node.textContent = "";
  else if (channel === "email" || channel === "sms") setText(node, `fu.setup.${channel}`);
  else setText(node, "fu.setup.other", { channel: channelLabel(channel) });
  return off;
}

/** An option of a select, labelled from the catalog (it follows language switches). */
export function option(value, key, vars) {
  const node = el("option");
  node.value = value;
  setText(node, key, vars);
  return node;
}

/** A select's options replaced, keeping the chosen value when it is still there. */
export function fillSelect(select, options, fallback) {
  const chosen = select.value;
  select.replaceChildren(...options);
  const values = options.map((o) => o.value);
  select.value = values.includes(chosen) ? chosen : fallback !== undefined ? fallback : values[0] || "";
}

/** A small "label value" chip for counts. */
export function countChip(key, n, className = "") {
  const chip = el("span", `f-count ${className}`.trim());
  const label = el("span", "muted");
  setText(label, key);
  chip.append(label, " ", el("b", "", numberText(n)));
  return chip;
}
