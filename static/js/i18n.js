// One translation layer for the browser: the same JSON catalogs the server renders with.
// Elements carry data-i18n="key" (and data-i18n-vars='{"n":3}'); switching language re-renders them.

const catalogs = JSON.parse(document.getElementById("lw-i18n").textContent);
const LOCALES = Object.keys(catalogs);
let lang = document.documentElement.lang in catalogs ? document.documentElement.lang : "en";
const listeners = new Set();

export function currentLang() {
  return lang;
}

export function t(key, vars) {
  let text = catalogs[lang][key] ?? catalogs.en[key] ?? key;
  if (vars) {
    for (const [name, value] of Object.entries(vars)) text = text.replaceAll(`{${name}}`, String(value));
  }
  return text;
}

/** Set an element's text from a catalog key; it follows later language switches. */
export function setText(el, key, vars) {
  el.dataset.i18n = key;
  if (vars) el.dataset.i18nVars = JSON.stringify(vars);
  else delete el.dataset.i18nVars;
  el.textContent = t(key, vars);
}

export function translateAll(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n, el.dataset.i18nVars ? JSON.parse(el.dataset.i18nVars) : undefined);
  }
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-aria-label]")) el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
}

export function setLang(next) {
  if (!(next in catalogs)) return;
  lang = next;
  document.documentElement.lang = next;
  document.cookie = `lw_lang=${encodeURIComponent(next)}; path=/; max-age=31536000; samesite=lax`;
  translateAll();
  for (const fn of listeners) fn(next);
}

export function onLangChange(fn) {
  listeners.add(fn);
}

/** Buttons with data-lang-switch toggle between the supported languages. */
export function initLangSwitch() {
  for (const button of document.querySelectorAll("[data-lang-switch]")) {
    button.addEventListener("click", () => setLang(LOCALES[(LOCALES.indexOf(lang) + 1) % LOCALES.length]));
  }
}

/** The user-facing text for an error frame's code. */
export function errorText(code) {
  const key = `err.${code}`;
  return catalogs.en[key] ? t(key) : t("err.generic");
}
