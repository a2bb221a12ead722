// The host login page: the language switch, and links printed by `livewall demo` / `rooms create`,
// which carry the key in the fragment (a fragment never reaches a server log): fill it in, forget it
// from the address bar, and log in.
import { initLangSwitch } from "/static/js/i18n.js";

initLangSwitch();
const match = location.hash.match(/^#key=(.+)$/);
const input = document.getElementById("key"); // absent when the room's host key is turned off
if (match && input) {
  input.value = decodeURIComponent(match[1]);
  history.replaceState(null, "", location.pathname);
  document.getElementById("login-form").submit();
}
