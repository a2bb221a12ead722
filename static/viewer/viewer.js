// The viewer's phone page: join (name or anonymous), then follow the room live.
import { api } from "/static/js/http.js";
import { currentLang, errorText, initLangSwitch, onLangChange, setText } from "/static/js/i18n.js";
import { RoomClient, connectionBadge } from "/static/js/realtime.js";
import { applyEvent } from "/static/js/state.js";
import { DealTracker, TICK_MS } from "/static/js/deals.js";
import { errorKey, pageData, renderPresence, renderStatus, toast } from "/static/js/ui.js";
import { Audience } from "/static/viewer/audience.js";
import { initComposer } from "/static/viewer/composer.js";
import { initDeal } from "/static/viewer/deal.js";
import { initLucky } from "/static/viewer/draw.js";
import { initInbox } from "/static/viewer/inbox.js";
import { Intents } from "/static/viewer/intents.js";
import { renderComments, renderQuestions, renderSpotlight } from "/static/viewer/lists.js";
import { initOptin } from "/static/viewer/optin.js";
import { initReactions } from "/static/viewer/reactions.js";
import { initReminder } from "/static/viewer/reminder.js";
import { initShelf } from "/static/viewer/shelf.js";

const page = pageData();
initLangSwitch();
const $ = (sel) => document.querySelector(sel);

/** Join (or stay): the name, if given, and the language this phone shows (follow-up writes in it). */
function postJoin(body) {
  // The entry link's source code (a poster's QR, a WeChat group): kept on the attendance (docs/revenue.md).
  const src = new URLSearchParams(location.search).get("src");
  return api("POST", `/api/rooms/${encodeURIComponent(page.room_id)}/join`, { ...body, lang: currentLang(), src });
}

async function join(name) {
  const errorEl = $("[data-join-error]");
  errorEl.textContent = "";
  try {
    await postJoin({ name });
  } catch (err) {
    errorEl.textContent = errorText(err.code);
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
  initReminder({ roomId: page.room_id, optin: null, serverNow: () => Date.now() });
} else {
  let state = null;
  const audience = new Audience();
  let order = "popular";
  let composer = null;
  let frame = 0;
  let shelf = null;
  let deal = null;
  let lucky = null;
  const tracker = new DealTracker();

  // Wall ticks arrive five times a second; paint at most once per animation frame.
  function scheduleRender() {
    if (!frame) frame = requestAnimationFrame(render);
  }

  function renderAudience() {
    const products = new Map(state.products.map((p) => [p.id, p]));
    const ctx = { products, myVotes: audience.myVotes, showStatus: false };
    const questions = audience.sortedQuestions(order);
    renderQuestions($("[data-questions]"), questions, ctx);
    $("[data-questions-empty]").hidden = questions.length > 0;
    const mine = audience.myQuestions();
    renderQuestions($("[data-mine]"), mine, { ...ctx, showStatus: true });
    $("[data-mine-section]").hidden = mine.length === 0;
    renderComments($("[data-comments]"), audience.comments.slice(-8));
    $("[data-comments-empty]").hidden = audience.comments.length > 0;
    renderSpotlight($("[data-spotlight]"), state.spotlight, products);
    composer.setProducts(state.products);
    composer.setSlowMode(state.settings ? state.settings.slow_mode_secs : 0);
  }

  function render() {
    frame = 0;
    if (!state) return;
    renderAudience();
    const title = $("[data-room-title]");
    title.textContent = state.room.title;
    renderStatus($("[data-room-status]"), state.room.status);
    reminder.render(state.room.status);
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
    shelf.render(state);
    deal.render(state);
    lucky.render(state);
  }

  const client = new RoomClient({
    role: "viewer",
    roomId: page.room_id,
    onSnapshot: (snap) => {
      state = snap;
      tracker.observe(snap.discounts, null);
      audience.loadSnapshot(snap);
      scheduleRender();
    },
    onEvent: (type, data, msg) => {
      state = applyEvent(state, type, data);
      if (type === "wall") audience.applyWall(data);
      if (type === "discount" || type === "stock") tracker.observe(state.discounts, msg.ts);
      if (type === "draw") lucky.observe(data);
      scheduleRender();
    },
    onDirect: (type, data) => {
      if (type === "mine") audience.applyMine(data);
      else if (type === "claim") deal.applyClaim(data);
      else if (type === "draw.entry" && lucky) lucky.learnEntry(data);
      else if (type === "inbox") inbox.receive(data);
      else return;
      scheduleRender();
    },
    onStatus: (status, code) => {
      showConn(status, code);
      // Every welcome (resumed or not) carries the viewer's own items, votes, follow and claims.
      if (status === "live" && client.lastWelcome) {
        audience.loadPersonal(client.lastWelcome.personal);
        deal.loadPersonal(client.lastWelcome.personal);
        lucky.loadPersonal(client.lastWelcome.personal, state);
        optin.loadPersonal(client.lastWelcome.personal);
        inbox.loadPersonal(client.lastWelcome.personal);
        intents.flush();
        scheduleRender();
      }
    },
    onNotice: (key) => toast(key),
  });
  const showConn = connectionBadge(setText);
  // Follow-up: the opt-in box (offered after a claim or a buy link) and the in-app messages.
  const optin = initOptin({ roomId: page.room_id });
  const inbox = initInbox();
  const reminder = initReminder({ roomId: page.room_id, optin, serverNow: () => client.serverNow() });
  composer = initComposer({
    client,
    onSent: (item) => {
      audience.applyMine(item);
      lucky.sent(item);
      scheduleRender();
    },
  });
  const intents = new Intents(client);
  shelf = initShelf({ roomId: page.room_id, intents, serverNow: () => client.serverNow() });
  deal = initDeal({
    client,
    tracker,
    intents,
    askedAbout: (productId) => [...audience.mine.values()].some((i) => i.product_id === productId),
    onAsk: (productId) => composer.askAbout(productId),
  });
  lucky = initLucky({
    client,
    composer,
    // Whether this phone may be among a draw's entrants by what it did (then it asks the server).
  });
  // Countdowns run on the server's clock; a repaint of the deal and draw cards, ten times a second.
  setInterval(() => {
    if (!state) return;
    deal.tick();
    lucky.tick();
  }, TICK_MS);
  window.lwReactions = initReactions(client);
  client.start();
  window.lw = client; // for debugging and the browser tests
  onLangChange(() => render());
  // The server keeps the viewer's language: in-app and other messages to them are written in it.
  onLangChange(() => postJoin({}).catch(() => {}));

  for (const button of document.querySelectorAll("[data-sort]")) {
    button.addEventListener("click", () => {
      order = button.dataset.sort;
      for (const b of document.querySelectorAll("[data-sort]")) b.setAttribute("aria-pressed", String(b === button));
      scheduleRender();
    });
  }

  const voting = new Set();
  async function vote(e) {
    const button = e.target.closest("[data-vote]");
    if (!button) return;
    const id = Number(button.closest("[data-item-id]").dataset.itemId);
    if (voting.has(id)) return;
    voting.add(id);
    try {
      const result = await client.request("item.vote", { id, up: !audience.myVotes.has(id) });
      audience.setVote(result.id, result.votes, result.voted);
      scheduleRender();
    } catch (err) {
      toast(errorKey(err));
    } finally {
      voting.delete(id);
    }
  }
  $("[data-questions]").addEventListener("click", vote);
  $("[data-mine]").addEventListener("click", vote);

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
