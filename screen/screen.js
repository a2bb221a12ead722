// The big screen: read-only; opens from its secret link and follows the room.
import { setText, onLangChange } from "/static/js/i18n.js";
import { RoomClient, connectionBadge } from "/static/js/realtime.js";
import { applyEvent } from "/static/js/state.js";
import { pageData, renderPresence, renderStatus } from "/static/js/ui.js";

const page = pageData();
const $ = (sel) => document.querySelector(sel);
let state = null;

function render(flash = false) {
  if (!state) return;
  $("[data-room-title]").textContent = state.room.title;
  renderStatus($("[data-room-status]"), state.room.status);
  renderPresence($("[data-presence]"), state.presence);
  const text = $("[data-announcement]");
  if (state.announcement) {
    delete text.dataset.i18n;
    text.textContent = state.announcement.text;
  } else setText(text, state.room.status === "ended" ? "screen.ended" : "screen.waiting");
  if (flash) {
    const box = $("[data-announcement-box]");
    box.classList.remove("flash");
    void box.offsetWidth; // restart the animation
    box.classList.add("flash");
  }
}

const client = new RoomClient({
  role: "screen",
  roomId: page.room_id,
  credentials: { key: page.key },
  onSnapshot: (snap) => {
    state = snap;
    render();
  },
  onEvent: (type, data) => {
    state = applyEvent(state, type, data);
    render(type === "announcement");
  },
  onStatus: connectionBadge(setText),
}).start();
window.lw = client;
onLangChange(() => render());
