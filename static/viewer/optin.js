// The opt-in box: an email address and/or a mobile number, one consent box per channel, and web push.
// It is offered after the viewer claims a deal or opens a buy link (never on load), and at any time
// from the "Get reminders" link; once the person has said yes (or no) to any channel it is not
// offered again by itself. Each consent is sent with the exact sentence shown next to its box, one
// request per channel so the record of each channel holds its own sentence. The server validates;
// its refusals are shown next to the field they concern. Only the channels this server can send on are
// in the form (the page leaves the others out); with none of them, the box offers push alone.
import { isBusy, withBusy } from "/static/js/busy.js";
import { api } from "/static/js/http.js";
import { currentLang, onLangChange, setText, t } from "/static/js/i18n.js";
import { errorKey } from "/static/js/ui.js";
import { initPush } from "/static/viewer/push.js";

const FIELD = { email: "email", sms: "phone" };
const FIELD_ERRORS = { bad_email: "email", bad_phone: "phone" };
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
// "Not now" keeps the box from offering itself again for this long (the link still opens it).
const SNOOZE_MS = 3 * 24 * 3600 * 1000;
const SNOOZE_KEY = "lw.optin.snoozed";

function snoozed() {
  try {
    return Date.now() - Number(localStorage.getItem(SNOOZE_KEY) || 0) < SNOOZE_MS;
  } catch {
    return false; // storage refused (private mode): offer as usual
  }
}

function snooze() {
  try {
    localStorage.setItem(SNOOZE_KEY, String(Date.now()));
  } catch {
    // nothing to remember it in: the box may offer itself again after the next claim
  }
}

function timeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || null;
  } catch {
    return null;
  }
}

export function initOptin({ roomId }) {
  const box = document.querySelector("[data-optin]");
  const form = box.querySelector("[data-optin-form]");
  const title = box.querySelector("[data-optin-title]");
  const stateList = box.querySelector("[data-optin-state]");
  const done = box.querySelector("[data-optin-done]");
  const save = box.querySelector("[data-optin-save]");
  const close = box.querySelector("[data-optin-close]");
  const links = document.querySelectorAll("[data-optin-open]");
  let contact = null;
  let offered = false; // offered by itself once this visit: a second claim does not re-open it
  let saved = null; // the channels of the last save, for its message

  const push = initPush({
    box: box.querySelector("[data-push]"),
    roomId,
    onContact: (c) => setContact(c),
  });
  /** The channels the form offers (those configured on this server). */
  const formChannels = ["email", "sms"].filter((c) => form.querySelector(`[data-optin-consent="${c}"]`));
  // Nothing to offer at all (no email, no SMS, no push here): no box, and no link to it.
  for (const link of links) link.hidden = formChannels.length === 0 && !push.available();

  const consentOf = (channel) => (contact && contact.consent && contact.consent[channel]) || null;
  /** They said yes or no to a channel already: the box does not push itself on them again. */
  const decided = () => ["email", "sms", "push"].some((c) => consentOf(c));

  function showError(where, key) {
    const el = box.querySelector(`[data-optin-error="${where}"]`);
    if (!el) return; // a channel this server does not offer has no field
    const input = where === "form" ? null : form.elements[where];
    el.hidden = !key;
    if (key) setText(el, key);
    else el.textContent = "";
    if (input) input.setAttribute("aria-invalid", String(Boolean(key)));
  }

  function clearErrors() {
    for (const where of ["email", "phone", "form"]) showError(where, null);
  }

  function paintState() {
    stateList.replaceChildren();
    for (const channel of ["email", "sms"]) {
      const status = consentOf(channel);
      if (!status) continue;
      const li = document.createElement("li");
      li.dataset.channel = channel;
      li.dataset.status = status;
      setText(li, "followup.box.line", {
        channel: t(`followup.channel.${channel}`),
        address: (channel === "email" ? contact.email : contact.phone) || "",
        state: t(`followup.state.${status}`),
      });
      stateList.append(li);
    }
    stateList.hidden = stateList.childElementCount === 0;
    for (const link of links) setText(link, decided() ? "followup.link.manage" : "followup.link");
  }

  function paintDone() {
    if (!saved) return;
    done.dataset.pending = String(saved.pending);
    if (saved.pending) setText(done, "followup.box.pending");
    else if (saved.channels.length) {
      const names = saved.channels.map((c) => t(`followup.channel.${c}`)).join(" + ");
      setText(done, "followup.box.saved", { channels: names });
    } else setText(done, "followup.box.not_sent");
  }

  function setContact(next) {
    contact = next || null;
    paintState();
    push.setContact(contact);
  }

  function open({ focus }) {
    const wasHidden = box.hidden;
    box.hidden = false;
    for (const link of links) link.setAttribute("aria-expanded", "true");
    if (wasHidden) {
      form.hidden = formChannels.length === 0;
      done.hidden = true;
      setText(close, "followup.box.not_now");
      clearErrors();
    }
    push.refresh();
    if (focus) {
      box.scrollIntoView({ block: "start", behavior: "smooth" });
      title.focus({ preventScroll: true });
    }
  }

  function hide() {
    box.hidden = true;
    for (const link of links) link.setAttribute("aria-expanded", "false");
  }

  /** The sensible moments (a claim, a buy link): offer the box once, unless they decided already. */
  function offer() {
    if (offered || decided() || snoozed() || !box.hidden) return;
    offered = true;
    open({ focus: false });
  }

  /** What the form asks for, checked for the obvious; or null after showing what is missing. */
  function read() {
    const data = new FormData(form);
    const values = { email: String(data.get("email") || "").trim(), phone: String(data.get("phone") || "").trim() };
    const ticked = { email: data.get("consent_email") === "on", sms: data.get("consent_sms") === "on" };
    let ok = true;
    for (const channel of formChannels) {
      const field = FIELD[channel];
      if (ticked[channel] && !values[field]) {
        showError(field, channel === "email" ? "followup.err.need_email" : "followup.err.need_phone");
        ok = false;
      } else if (!ticked[channel] && values[field]) {
        showError(field, "followup.err.tick");
        ok = false;
      }
    }
    if (values.email && ticked.email && !EMAIL.test(values.email)) {
      showError("email", "followup.err.bad_email");
      ok = false;
    }
    if (ok && !ticked.email && !ticked.sms) {
      showError("form", "followup.err.no_contact");
      ok = false;
    }
    return ok ? { values, ticked } : null;
  }

  function wordingOf(channel) {
    return box.querySelector(`[data-optin-wording="${channel}"]`).textContent.trim();
  }

  async function submit(e) {
    e.preventDefault();
    if (isBusy(save)) return;
    clearErrors();
    const input = read();
    if (!input) {
      const bad = form.querySelector('[aria-invalid="true"]');
      if (bad) bad.focus();
      return;
    }
    const pending = new Set();
    const base = { tz: timeZone(), lang: currentLang() };
    // Both addresses go with the first request, so the server checks both before recording anything.
    const channels = ["email", "sms"].filter((c) => input.ticked[c]);
    const send = async () => {
      for (const [i, channel] of channels.entries()) {
        const details = i === 0 ? input.values : { [FIELD[channel]]: input.values[FIELD[channel]] };
        const body = { ...base, consent: { [channel]: true }, wording: wordingOf(channel) };
        for (const [k, v] of Object.entries(details)) if (v) body[k] = v;
        const reply = await api("POST", `/api/rooms/${encodeURIComponent(roomId)}/contact`, body);
        for (const c of reply.pending || []) pending.add(c);
        setContact(reply.contact);
      }
      form.reset();
      form.hidden = true;
      done.hidden = false;
      // What the server now says, not what was asked: an earlier save may have sent the confirmation
      // email already, and an address on the do-not-contact list stays off.
      saved = {
        channels: channels.filter((c) => consentOf(c) === "granted"),
        pending: pending.has("email") || (input.ticked.email && consentOf("email") === "pending"),
      };
      paintDone();
      setText(close, "followup.box.close");
      done.focus();
    };
    try {
      await withBusy(save, send, { busyKey: "followup.box.saving", idleKey: "followup.box.save" });
    } catch (err) {
      const field = FIELD_ERRORS[err.code];
      if (field) showError(field, `followup.err.${err.code}`);
      else if (err.code === "no_contact" || err.code === "channel_not_configured") {
        showError("form", `followup.err.${err.code}`);
      }
      else showError("form", errorKey(err));
      const bad = form.querySelector('[aria-invalid="true"]');
      if (bad) bad.focus();
    }
  }

  form.addEventListener("submit", submit);
  form.addEventListener("input", (e) => {
    const field = e.target.name === "consent_email" ? "email" : e.target.name === "consent_sms" ? "phone" : e.target.name;
    if (field === "email" || field === "phone") showError(field, null);
    showError("form", null);
  });
  close.addEventListener("click", () => {
    if (!form.hidden && !decided()) snooze();
    hide();
    const link = links[0];
    if (link) link.focus({ preventScroll: true });
  });
  for (const link of links) link.addEventListener("click", () => open({ focus: true }));
  // A claim (deal.js) or a buy link opened: the moments someone wants to hear about this shop again.
  document.addEventListener("lw:claimed", offer);
  document.addEventListener("click", (e) => {
    if (e.target.closest("[data-buy], [data-claim-checkout]")) offer();
  });
  onLangChange(() => {
    paintState();
    paintDone();
  });

  return {
    /** Every welcome carries the viewer's contact (null until they leave one). */
    loadPersonal(personal) {
      if (personal && "contact" in personal) setContact(personal.contact);
    },
    open,
    offer,
  };
}
