// The viewer's phone page: join (name or anonymous), then follow the room live.
import { errorText, initLangSwitch, onLangChange, setText } from "/static/js/i18n.js";
import { RoomClient, connectionBadge } from "/static/js/realtime.js";
import { applyEvent } from "/static/js/state.js";
import { errorKey, formatPrice, pageData, renderPresence, renderStatus, toast } from "/static/js/ui.js";

const page = pageData();
initLangSwitch();
const $ = (sel) => document.querySelector(sel);

async function join(name) {
  const errorEl = $("[data-join-error]");
  errorEl.textContent = "";
  const response = await fetch(`/api/rooms/${encodeURIComponent(page.room_id)}/join`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name }),
    credentials: "same-origin",
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    errorEl.textContent = errorText(body.error ? body.error.code : "generic");
    return;
  }
  location.reload(); // the signed cookie now identifies this phone
}

if (!page.joined) {
  const form = $("#join-form");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    join(new FormData(form).get("name"));
  });
  $("[data-join-anonymous]").addEventListener("click", () => join(null));
} else {
  let state = null;

  function render() {
    if (!state) return;
    const title = $("[data-room-title]");
    title.textContent = state.room.title;
    renderStatus($("[data-room-status]"), state.room.status);
    renderPresence($("[data-presence]"), state.presence);
    const ann = $("[data-announcement]");
    if (state.announcement) {
      delete ann.dataset.i18n;
      ann.textContent = state.announcement.text;
    } else setText(ann, "announcement.none");
    const me = $("[data-me-name]");
    if (state.me && state.me.name) {
      delete me.dataset.i18n;
      me.textContent = state.me.name;
    } else setText(me, "viewer.anonymous");
    $("[data-products-section]").hidden = state.products.length === 0;
    const shelf = $("[data-products]");
    shelf.replaceChildren(
      ...state.products.map((p) => {
        const li = document.createElement("li");
        const name = document.createElement("span");
        name.className = "name";
        name.textContent = p.name;
        const price = document.createElement("span");
        price.className = "price";
        price.textContent = formatPrice(p.price_minor, p.currency);
        li.append(name, price);
        return li;
      }),
    );
  }

  const client = new RoomClient({
    role: "viewer",
    roomId: page.room_id,
    onSnapshot: (snap) => {
      state = snap;
      render();
    },
    onEvent: (type, data) => {
      state = applyEvent(state, type, data);
      render();
    },
    onStatus: connectionBadge(setText),
    onNotice: (key) => toast(key),
  }).start();
  window.lw = client; // for debugging and the browser tests
  onLangChange(render);

  const renameForm = $("[data-rename-form]");
  $("[data-rename]").addEventListener("click", () => {
    renameForm.hidden = false;
    renameForm.querySelector("input").focus();
  });
  $("[data-rename-cancel]").addEventListener("click", () => (renameForm.hidden = true));
  renameForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const errorEl = $("[data-rename-error]");
    errorEl.textContent = "";
    try {
      const result = await client.request("viewer.rename", { name: new FormData(renameForm).get("name") });
      state = { ...state, me: { ...state.me, name: result.name } };
      renameForm.hidden = true;
      render();
    } catch (err) {
      setText(errorEl, errorKey(err));
    }
  });
}
