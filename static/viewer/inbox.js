// The in-app inbox: follow-up messages the shop sent to this viewer, shown as one card, newest first,
// with a count and paging when there are several. Dismissing one (or tapping it, or a link in it)
// tells the server it was opened. The text is shown as text; web addresses in it become links only
// when they parse as http(s) URLs, built as elements, never as HTML.
import { api } from "/static/js/http.js";
import { currentLang, onLangChange, setText } from "/static/js/i18n.js";

// Candidate addresses in a message; trailing punctuation of the sentence is not part of the link.
const URL_IN_TEXT = /\bhttps?:\/\/[^\s<>"'`「」『』【】《》（），。；！？]+/gi;
const TRAILING = /[.,;:!?)\]}'"]+$/;

/** Append `text` to `el` as text nodes, with http(s) addresses as links that open a new tab. */
export function appendLinkified(el, text) {
  let at = 0;
  for (const match of text.matchAll(URL_IN_TEXT)) {
    const raw = match[0].replace(TRAILING, "");
    let url = null;
    try {
      url = new URL(raw);
    } catch {
      url = null;
    }
    if (!url || (url.protocol !== "https:" && url.protocol !== "http:")) continue;
    el.append(document.createTextNode(text.slice(at, match.index)));
    const a = document.createElement("a");
    a.href = url.href;
    a.textContent = raw;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.dataset.inboxLink = "";
    el.append(a);
    at = match.index + raw.length;
  }
  el.append(document.createTextNode(text.slice(at)));
}

export function initInbox() {
  const card = document.querySelector("[data-inbox]");
  const q = (sel) => card.querySelector(sel);
  const count = q("[data-inbox-count]");
  const body = q("[data-inbox-message]");
  const subject = q("[data-inbox-subject]");
  const text = q("[data-inbox-text]");
  const when = q("[data-inbox-time]");
  const newer = q("[data-inbox-newer]");
  const older = q("[data-inbox-older]");
  const dismiss = q("[data-inbox-dismiss]");
  let messages = []; // newest first, as the server lists them
  let index = 0;
  const dismissed = new Set(); // ids put away on this page (the next welcome may still list them)
  const opened = new Set(); // ids the server has been told about
  const unsent = new Set(); // ids whose "opened" did not reach the server yet

  async function markOpened(id) {
    if (opened.has(id)) return;
    opened.add(id);
    try {
      await api("POST", `/api/inbox/${encodeURIComponent(id)}/opened`, {});
      unsent.delete(id);
    } catch (err) {
      // A message that is gone (404) needs no retry; anything else is tried again after a reconnect.
      if (err && err.status === 404) unsent.delete(id);
      else {
        opened.delete(id);
        unsent.add(id);
      }
    }
  }

  function paint() {
    const visible = messages.filter((m) => !dismissed.has(m.id));
    if (visible.length !== messages.length) messages = visible;
    index = Math.min(index, Math.max(0, messages.length - 1));
    card.hidden = messages.length === 0;
    if (!messages.length) return;
    const m = messages[index];
    card.dataset.messageId = String(m.id);
    card.dataset.total = String(messages.length);
    count.hidden = messages.length < 2;
    if (messages.length > 1) setText(count, "followup.inbox.count", { n: index + 1, total: messages.length });
    subject.hidden = !m.subject;
    subject.textContent = m.subject || "";
    text.replaceChildren();
    appendLinkified(text, m.text || "");
    when.hidden = !m.sent_ms;
    if (m.sent_ms) {
      const date = new Date(m.sent_ms);
      when.dateTime = date.toISOString();
      when.textContent = new Intl.DateTimeFormat(currentLang(), { dateStyle: "medium", timeStyle: "short" }).format(date);
    }
    newer.hidden = messages.length < 2;
    older.hidden = messages.length < 2;
    newer.disabled = index === 0;
    older.disabled = index >= messages.length - 1;
  }

  function go(step) {
    index = Math.max(0, Math.min(messages.length - 1, index + step));
    paint();
  }

  function put() {
    const m = messages[index];
    if (!m) return;
    dismissed.add(m.id);
    markOpened(m.id);
    paint();
    // Keep the keyboard where it was: on the next message's button, or back at the page.
    if (!card.hidden) dismiss.focus();
  }

  newer.addEventListener("click", () => go(-1));
  older.addEventListener("click", () => go(1));
  dismiss.addEventListener("click", put);
  body.addEventListener("click", () => {
    const m = messages[index];
    if (m) markOpened(m.id);
  });
  onLangChange(paint);

  return {
    /** Every welcome lists the viewer's unopened in-app messages, newest first. */
    loadPersonal(personal) {
      if (!personal || !Array.isArray(personal.inbox)) return;
      const shown = messages[index];
      messages = personal.inbox.filter((m) => m && Number.isInteger(m.id) && !dismissed.has(m.id));
      const again = shown ? messages.findIndex((m) => m.id === shown.id) : -1;
      index = again >= 0 ? again : 0;
      for (const id of [...unsent]) markOpened(id);
      paint();
    },
    /** A message sent while the room is open (the `inbox` direct frame) goes on top. */
    receive(message) {
      if (!message || !Number.isInteger(message.id) || dismissed.has(message.id)) return;
      if (messages.some((m) => m.id === message.id)) return;
      messages = [message, ...messages];
      index = 0;
      paint();
    },
  };
}
