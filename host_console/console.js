// The host console: run the show (go live, end, announce) and watch the live numbers.
import { initLangSwitch, onLangChange, setText, t } from "/static/js/i18n.js";
import { RoomClient, connectionBadge } from "/static/js/realtime.js";
import { applyEvent } from "/static/js/state.js";
import { errorKey, formatPrice, pageData, renderStatus, toast } from "/static/js/ui.js";

const page = pageData();
const $ = (sel) => document.querySelector(sel);
initLangSwitch();
let state = null;

function render() {
  if (!state) return;
  $("[data-room-title]").textContent = state.room.title;
  renderStatus($("[data-room-status]"), state.room.status);
  $("[data-viewers]").textContent = state.presence.viewers;
  $("[data-peak]").textContent = state.presence.peak;
  $("[data-start]").disabled = state.room.status === "live";
  $("[data-end]").disabled = state.room.status !== "live";
  const list = $("[data-announcements]");
  list.replaceChildren(
    ...(state.announcements || []).map((a) => {
      const li = document.createElement("li");
      const time = document.createElement("time");
      time.dateTime = new Date(a.created_ms).toISOString();
      time.textContent = new Date(a.created_ms).toLocaleTimeString();
      li.append(time, document.createTextNode(a.text));
      return li;
    }),
  );
  $("[data-products]").replaceChildren(
    ...state.products.map((p) => {
      const li = document.createElement("li");
      li.textContent = `${p.name} · ${formatPrice(p.price_minor, p.currency)} · ${t("viewer.stock", { n: p.stock })}`;
      return li;
    }),
  );
}

const client = new RoomClient({
  role: "host",
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
window.lw = client;
onLangChange(render);

async function control(type) {
  const errorEl = $("[data-control-error]");
  errorEl.textContent = "";
  try {
    await client.request(type);
  } catch (err) {
    setText(errorEl, errorKey(err));
  }
}
$("[data-start]").addEventListener("click", () => control("room.start"));
$("[data-end]").addEventListener("click", () => {
  if (confirm(t("host.confirm_end"))) control("room.end");
});

const form = $("[data-announce-form]");
const textarea = form.querySelector("textarea");
const chars = $("[data-chars]");
const updateChars = () => setText(chars, "host.chars", { n: [...textarea.value].length, max: 500 });
textarea.addEventListener("input", updateChars);
updateChars();
form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const errorEl = $("[data-announce-error]");
  errorEl.textContent = "";
  try {
    await client.request("announce", { text: textarea.value });
    textarea.value = "";
    updateChars();
    toast("host.announce.posted");
  } catch (err) {
    setText(errorEl, errorKey(err));
  }
});
textarea.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.metaKey || e.ctrlKey)) form.requestSubmit();
});

for (const button of document.querySelectorAll("[data-copy]")) {
  button.addEventListener("click", async () => {
    const text = $(`[data-link-${button.dataset.copy}]`).textContent;
    try {
      await navigator.clipboard.writeText(text);
      toast("host.copied");
    } catch {
      window.prompt(t("host.copy"), text);
    }
  });
}
