// The home page: the language switch, and the room-code form that opens /r/{code}.
import { initLangSwitch } from "/static/js/i18n.js";

initLangSwitch();
document.getElementById("go").addEventListener("submit", (e) => {
  e.preventDefault();
  const code = new FormData(e.target).get("code").trim();
  if (code) location.href = `/r/${encodeURIComponent(code)}`;
});
