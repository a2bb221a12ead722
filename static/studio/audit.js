// The audit log page: times shown in the reader's local time, and the reader's time zone sent with
// the filters (so "from" and "to" mean the reader's days).
import { currentLang, initLangSwitch, onLangChange } from "/static/js/i18n.js";

initLangSwitch();
const tz = document.querySelector("[data-audit-tz]");
// getTimezoneOffset is minutes *behind* UTC; the server wants minutes east of it.
if (tz && !tz.value) tz.value = String(-new Date().getTimezoneOffset());
document.querySelector('[data-nav="audit"]')?.setAttribute("aria-current", "page");

function paintTimes() {
  const format = new Intl.DateTimeFormat(currentLang(), { dateStyle: "short", timeStyle: "medium" });
  for (const el of document.querySelectorAll("time[data-ms]")) el.textContent = format.format(new Date(Number(el.dataset.ms)));
}
paintTimes();
onLangChange(paintTimes);
