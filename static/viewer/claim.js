// A winner's claim form: a name, a phone number or an email, and consent to follow-up messages.
// The phone checks the obvious (empty, not a number, not an address) so a typo is caught at once;
// the server checks properly (phonenumbers, email-validator) and its refusals are translated.
import { isBusy, withBusy } from "/static/js/busy.js";
import { currentLang, setText } from "/static/js/i18n.js";
import { errorKey } from "/static/js/ui.js";

const CLAIM_ERRORS = new Set(["bad_phone", "bad_email", "claim_closed", "not_a_winner", "invalid", "draw_closed"]);
const PHONE_CHARS = /^[+\d\s().-]+$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
// Phone numbers have 5 to 15 digits (E.164); fewer is surely a typo.
const PHONE_MIN_DIGITS = 5;
const PHONE_MAX_DIGITS = 15;

/** The claim data from the form's fields, or {error: key}. */
export function readClaim(form) {
  const data = new FormData(form);
  const name = String(data.get("name") || "").trim();
  const contact = String(data.get("contact") || "").trim();
  if (!name) return { error: "lucky.err.name" };
  if (!contact) return { error: "lucky.err.contact" };
  // The server keeps the consent with the wording this page showed (its language).
  const out = { name, consent: data.get("consent") === "on", lang: currentLang() };
  if (contact.includes("@")) {
    if (!EMAIL.test(contact)) return { error: "lucky.err.bad_email" };
    out.email = contact;
  } else {
    const digits = contact.replace(/\D/g, "").length;
    if (!PHONE_CHARS.test(contact) || digits < PHONE_MIN_DIGITS || digits > PHONE_MAX_DIGITS) {
      return { error: "lucky.err.bad_phone" };
    }
    out.phone = contact;
  }
  return { data: out };
}

export function claimErrorKey(err) {
  const code = err && err.code;
  return CLAIM_ERRORS.has(code) ? `lucky.err.${code}` : errorKey(err);
}

/** Wire the form; `submit(data)` sends it and resolves when the prize is claimed. */
export function initClaimForm(form, submit) {
  const errorEl = form.querySelector("[data-lucky-claim-error]");
  const button = form.querySelector("[data-lucky-claim-submit]");

  function showError(key) {
    errorEl.hidden = !key;
    if (key) setText(errorEl, key);
    else errorEl.textContent = "";
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (isBusy(button)) return;
    const { data, error } = readClaim(form);
    if (error) return showError(error);
    showError(null);
    try {
      await withBusy(button, () => submit(data), { busyKey: "lucky.claim.busy", idleKey: "lucky.claim.submit" });
    } catch (err) {
      showError(claimErrorKey(err));
    }
  });
  form.addEventListener("input", () => {
    if (!errorEl.hidden) showError(null);
  });
  return { reset: () => showError(null) };
}
