// The rooms list and the new-room form: times in the reader's time zone, and the start time chosen
// in local time sent as epoch milliseconds.
import { currentLang, initLangSwitch, onLangChange } from "/static/js/i18n.js";

initLangSwitch();
document.querySelector('[data-nav="rooms"]')?.setAttribute("aria-current", "page");

function paintTimes() {
  const format = new Intl.DateTimeFormat(currentLang(), { dateStyle: "medium", timeStyle: "short" });
  for (const el of document.querySelectorAll("time[data-ms]")) el.textContent = format.format(new Date(Number(el.dataset.ms)));
}
paintTimes();
onLangChange(paintTimes);

const form = document.querySelector("[data-room-form]");
if (form) {
  const local = form.querySelector("[data-starts-local]");
  const ms = form.querySelector("[data-starts-ms]");
  if (ms.value) local.value = toLocalInput(Number(ms.value));
  form.addEventListener("submit", () => {
    ms.value = local.value ? String(new Date(local.value).getTime()) : "";
  });
}

/** Epoch ms as the value of a datetime-local input (the reader's local time). */
export function toLocalInput(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
