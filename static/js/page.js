// The plain pages (errors, draw verification): their language switch. A module file, not an inline
// script: the Content-Security-Policy runs no inline script (server/headers.py).
import { initLangSwitch } from "/static/js/i18n.js";

initLangSwitch();
