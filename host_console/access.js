// Keys and links (the console's side of server/rooms/http.py): replace the host key (shown once) or
// the big-screen link, and leave for the login page when this console's own session is revoked.
import { api } from "/static/js/http.js";
import { setText, t } from "/static/js/i18n.js";
import { errorKey, toast } from "/static/js/ui.js";

const $ = (sel) => document.querySelector(sel);

/** POST to one of the room's credential endpoints on the console's session: the JSON answer. */
function post(roomId, path) {
  return api("POST", `/api/rooms/${encodeURIComponent(roomId)}/${path}`);
}

/** Wire the Keys and links card. ``client``: the console's RoomClient. */
export function initAccess({ client, roomId, base }) {
  const errorEl = $("[data-access-error]");
  let rotating = false;

  // Another console replaced the key or logged every session out: this one can no longer act.
  const onError = client.opts.onError;
  client.opts.onError = (err) => {
    if (err && err.code === "revoked" && !rotating) {
      location.assign(`/host/${encodeURIComponent(roomId)}/login`);
      return;
    }
    if (onError) onError(err);
  };

  $("[data-rotate-key]").addEventListener("click", async () => {
    if (!confirm(t("console.access.confirm_key"))) return;
    errorEl.textContent = "";
    // The old key's sessions are closed, this console's too: step out of the room while the key
    // changes, and come back (resuming where it was) on the new session cookie the answer sets.
    rotating = true;
    client.pause();
    try {
      const { key } = await post(roomId, "host-key/rotate");
      $("[data-link-key]").textContent = key;
      $("[data-new-key]").hidden = false;
    } catch (err) {
      setText(errorEl, errorKey(err));
    } finally {
      rotating = false;
      client.resume();
    }
  });

  $("[data-rotate-screen]").addEventListener("click", async () => {
    if (!confirm(t("console.access.confirm_screen"))) return;
    errorEl.textContent = "";
    try {
      const { link } = await post(roomId, "screen-link/rotate");
      const code = $("[data-link-screen]");
      code.textContent = `${base}${link}`;
      const open = code.parentElement.querySelector("a.c-open");
      if (open) open.href = link;
      toast("console.access.screen_done");
    } catch (err) {
      setText(errorEl, errorKey(err));
    }
  });
}
