// The big screen: read-only; opens from its secret link and follows the room.
// Layouts (room.settings.layout, switched live by the host): wall = danmaku + top questions +
// announcement + QR; spotlight = the question being answered, huge; top = the top questions, big;
// clean = title, announcement and QR only. All user text is set with textContent.
import { setText, onLangChange, t } from "/static/js/i18n.js";
import { RoomClient, connectionBadge } from "/static/js/realtime.js";
import { DealTracker, TICK_MS } from "/static/js/deals.js";
import { applyEvent } from "/static/js/state.js";
import { pageData, renderPresence, renderStatus } from "/static/js/ui.js";
import { Danmaku } from "/screen-assets/danmaku.js";
import { initDeal } from "/screen-assets/deal.js";
import { initDraw } from "/screen-assets/draw.js";
import { ReactionFloats } from "/screen-assets/floats.js";

const page = pageData();
const $ = (sel) => document.querySelector(sel);
const stage = $("[data-stage]");
const LAYOUTS = new Set(["wall", "spotlight", "top", "clean"]);
const SEEN_KEPT = 5000;
let state = null;
let lastTop = "";
let lastShape = "";
const seen = new Set(); // items already flown (a vote or an answer must not fly them again)

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function buildComment(item) {
  const node = el("div", "dm");
  node.dataset.kind = item.kind;
  node.dataset.itemId = String(item.id);
  if (item.kind !== "comment") {
    const tag = el("span", "dm-tag");
    setText(tag, `q.kind.${item.kind}`);
    node.append(tag);
  }
  if (item.author) node.append(el("span", "dm-author", item.author));
  node.append(el("span", "dm-text", item.text));
  return node;
}

const danmaku = new Danmaku($("[data-danmaku]"), buildComment);
const floats = new ReactionFloats($("[data-reactions-layer]"));
window.lwScreen = { danmaku, floats }; // for the browser tests and a curious operator's console

function productName(id) {
  const product = id == null ? null : (state.products || []).find((p) => p.id === id);
  return product ? product.name : null;
}

function byline(item) {
  const parts = [item.author || t("q.anonymous")];
  const product = productName(item.product_id);
  if (product) parts.push(`🛍 ${product}`);
  return parts.join("  ·  ");
}

function renderSpotlight() {
  const box = $("[data-spotlight-box]");
  const item = state.spotlight;
  stage.dataset.hasSpotlight = String(Boolean(item));
  $("[data-spotlight-none]").hidden = Boolean(item);
  const text = $("[data-spotlight-text]");
  const meta = $("[data-spotlight-meta]");
  const answer = $("[data-spotlight-answer]");
  if (!item) {
    text.textContent = "";
    meta.textContent = "";
    answer.hidden = true;
    delete box.dataset.itemId;
    return;
  }
  box.dataset.itemId = String(item.id);
  const length = [...item.text].length;
  box.dataset.size = length <= 40 ? "l" : length <= 120 ? "m" : "s";
  text.textContent = item.text;
  meta.textContent = byline(item);
  answer.hidden = !item.answer;
  $("[data-spotlight-answer-text]").textContent = item.answer || "";
}

// Text that does not fit shrinks (the spotlight) or the least-voted rows give way (top list), rather
// than being cut mid-line. A few layout reads per change; nothing per frame.
function fitSpotlight() {
  const box = $("[data-spotlight-box]");
  let fit = 1;
  box.style.setProperty("--fit", "1");
  while (fit > 0.55 && box.scrollHeight > box.clientHeight + 1) {
    fit -= 0.08;
    box.style.setProperty("--fit", String(fit));
  }
}

function fitTop() {
  const list = $("[data-top]");
  const rows = [...list.children];
  for (const row of rows) row.hidden = false;
  const limit = list.getBoundingClientRect().bottom + 1;
  for (const row of rows) row.hidden = row.getBoundingClientRect().bottom > limit;
}

function renderTop() {
  const top = state.top || [];
  const key = JSON.stringify([top, document.documentElement.lang, (state.products || []).length]);
  if (key === lastTop) return;
  lastTop = key;
  $("[data-top-none]").hidden = top.length > 0;
  $("[data-top]").replaceChildren(
    ...top.map((item, i) => {
      const li = el("li", "s-top-item");
      li.dataset.itemId = String(item.id);
      li.dataset.status = item.status;
      const body = el("div", "s-top-body");
      body.append(el("p", "s-top-text", item.text), el("div", "s-top-meta", byline(item)));
      const votes = el("div", "s-top-votes");
      votes.append(el("span", "s-top-arrow", "▲"), el("span", "s-top-count", String(item.votes)));
      votes.dataset.votes = String(item.votes);
      votes.setAttribute("aria-label", t("q.votes", { n: item.votes }));
      li.append(el("span", "s-rank", String(i + 1)), body, votes);
      return li;
    }),
  );
}

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
  stage.dataset.hasAnnouncement = String(Boolean(state.announcement));
  if (flash) {
    const box = $("[data-announcement-box]");
    box.classList.remove("flash");
    void box.offsetWidth; // restart the animation
    box.classList.add("flash");
  }
  const layout = state.settings && LAYOUTS.has(state.settings.layout) ? state.settings.layout : "wall";
  stage.dataset.layout = layout;
  lucky.render(state); // a draw on the stage covers the wall (data-has-draw)
  danmaku.setEnabled(layout === "wall" && stage.dataset.hasDraw !== "true");
  floats.enabled = layout !== "clean";
  renderSpotlight();
  deal.render(state);
  renderTop();
  const shape = JSON.stringify([
    layout, state.spotlight, state.top, stage.clientWidth, state.announcement, stage.dataset.hasDeal,
    stage.dataset.hasDraw,
  ]);
  if (shape !== lastShape) {
    lastShape = shape;
    fitSpotlight();
    fitTop();
  }
}

function remember(id) {
  seen.add(id);
  if (seen.size > SEEN_KEPT) seen.delete(seen.values().next().value);
}

function flyNew(items) {
  for (const item of items || []) {
    if (seen.has(item.id) || (item.status !== "visible" && item.status !== "answered")) continue;
    remember(item.id);
    danmaku.push(item);
  }
}

const tracker = new DealTracker();
let deal = null;
let lucky = null;

const client = new RoomClient({
  role: "screen",
  roomId: page.room_id,
  credentials: { key: page.key },
  onSnapshot: (snap) => {
    const first = state === null;
    state = snap;
    tracker.observe(snap.discounts, null);
    render();
    const wall = snap.wall || [];
    for (const item of wall.slice(0, -5)) remember(item.id);
    if (first) flyNew(wall.slice(-5)); // a little life on a fresh screen
    else for (const item of wall) remember(item.id);
  },
  onEvent: (type, data, msg) => {
    const layoutBefore = state.settings ? state.settings.layout : null;
    state = applyEvent(state, type, data);
    if (type === "discount" || type === "stock") tracker.observe(state.discounts, msg.ts);
    if (type === "draw") lucky.observe(data);
    // The host moved on (another layout, a question in the spotlight): the winners make way.
    if (type === "room.settings" && state.settings.layout !== layoutBefore) lucky.dismiss();
    if (type === "spotlight" && data.item) lucky.dismiss();
    render(type === "announcement");
    if (type === "wall") {
      flyNew(data.items);
      floats.add(data.reactions);
    }
  },
  onStatus: connectionBadge(setText),
});
deal = initDeal({ client, tracker, stage });
lucky = initDraw({ client, stage });
client.start();
window.lw = client;
// The countdowns run on the server's clock, repainted ten times a second (text only).
setInterval(() => {
  const before = [stage.dataset.hasDeal, stage.dataset.hasDraw].join();
  deal.tick();
  lucky.tick();
  // The banner or the draw came or went: the layout changes.
  if ([stage.dataset.hasDeal, stage.dataset.hasDraw].join() !== before) render();
}, TICK_MS);
onLangChange(() => {
  lastTop = "";
  lastShape = "";
  render();
});
window.addEventListener("resize", () => render());
