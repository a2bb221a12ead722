// The host console: run the show (go live, end, announce), work the question queue, moderate,
// steer the big screen, watch the live numbers, sell (the Selling tab: selling.js), run lucky
// draws (the Draws tab: draws.js) and follow up with the audience (the Follow-up tab: followup.js).
import { initLangSwitch, onLangChange, setText, t } from "/static/js/i18n.js";
import { RoomClient, connectionBadge } from "/static/js/realtime.js";
import { applyEvent } from "/static/js/state.js";
import { errorKey, pageData, renderStatus, toast } from "/static/js/ui.js";
import { SidePanels } from "/console-assets/moderation.js";
import { QueueView } from "/console-assets/queue.js";
import { DrawsView } from "/console-assets/draws.js";
import { FollowupView } from "/console-assets/followup.js";
import { SellingView } from "/console-assets/selling.js";
import { Tabs } from "/console-assets/tabs.js";
import { initAccess } from "/console-assets/access.js";
import { applyScopes, welcomeScopes } from "/console-assets/roles.js";

const page = pageData();
const $ = (sel) => document.querySelector(sel);
const NAME_KEY = "lw.console.name";
// Error codes of the queue's actions that the shared errorKey does not know.
const CONSOLE_ERRORS = new Set(["taken", "not_found", "conflict"]);
initLangSwitch();
let state = null;

function myName() {
  return (localStorage.getItem(NAME_KEY) || "").trim() || t("console.me.default");
}

/** The name the server knows us by (it cleans what we send), for "is this claim mine?". */
function me() {
  return (client && client.lastWelcome && client.lastWelcome.name) || myName();
}

function consoleErrorKey(err) {
  return err && CONSOLE_ERRORS.has(err.code) ? `console.err.${err.code}` : errorKey(err);
}

function fail(err, el) {
  if (el) setText(el, consoleErrorKey(err));
  else toast(consoleErrorKey(err));
}

/** Redraw from the state; ``type`` is the event that changed it (null: a snapshot, a language switch). */
function render(type = null) {
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
  queue.update(state);
  panels.update(state);
  selling.update(state, type);
  draws.update(state, type);
  followup.update(state, type);
  applyScopes();
}

// --- queue actions ----------------------------------------------------------------------------------

const ACTIONS = {
  spotlight: (item) => ["item.spotlight", { id: item.id }],
  approve: (item) => ["item.approve", { id: item.id }],
  hide: (item) => ["item.hide", { id: item.id }],
  restore: (item) => ["item.restore", { id: item.id }],
  answered: (item) => ["item.answered", { id: item.id }],
  reopen: (item) => ["item.reopen", { id: item.id }],
  claim: (item) => ["item.claim", { id: item.id }],
  release: (item) => ["item.release", { id: item.id }],
  answer: (item, extra) => ["item.answer", { id: item.id, text: extra.text }, "console.done.answer"],
  reply: (item, extra) => ["item.reply", { id: item.id, text: extra.text }, "console.done.reply"],
  mute: (item, extra) => [
    "viewer.sanction",
    { viewer_id: item.viewer_id, mode: "mute", minutes: extra.minutes },
    "console.done.mute",
  ],
  ban: (item) => ["viewer.sanction", { viewer_id: item.viewer_id, mode: "ban" }, "console.done.ban"],
};

/** Run one queue action; resolves true when the server accepted it. */
async function act(name, item, extra = {}) {
  const make = ACTIONS[name];
  if (!make) return false;
  if (name === "ban" && !confirm(t("console.confirm_ban"))) return false;
  const [type, data, doneKey] = make(item, extra);
  try {
    await client.request(type, data);
    if (doneKey) toast(doneKey, { n: extra.minutes });
    return true;
  } catch (err) {
    fail(err);
    return false;
  }
}

const queue = new QueueView({ root: $("[data-queue]"), act, me });
const panels = new SidePanels({
  request: (type, data) => client.request(type, data),
  fail,
  done: (key, vars) => toast(key, vars),
  next: (exceptId) => queue.nextCandidate(exceptId),
});
const tabOptions = {
  request: (type, data) => client.request(type, data),
  roomId: page.room_id,
  base: page.base || location.origin,
  serverNow: () => client.serverNow(),
  done: (key, vars) => toast(key, vars),
};
const selling = new SellingView(tabOptions);
const draws = new DrawsView(tabOptions);
const followup = new FollowupView(tabOptions);
const tabs = new Tabs();
const showConn = connectionBadge(setText);

// --- connection -------------------------------------------------------------------------------------

const client = new RoomClient({
  role: "host",
  roomId: page.room_id,
  credentials: { name: myName() },
  onSnapshot: (snap) => {
    state = snap;
    render();
  },
  onEvent: (type, data) => {
    state = applyEvent(state, type, data);
    if (type === "queue") panels.addReactions(data.reactions);
    render(type);
  },
  onStatus: (status, code) => {
    showConn(status, code);
    // Every welcome says what this console may do (a member's role can change between connections).
    if (status === "live" && client && client.lastWelcome) {
      welcomeScopes(client.lastWelcome);
      tabs.show(tabs.current, { remember: false });
    }
  },
  onNotice: (key) => toast(key),
}).start();
window.lw = client;
onLangChange(() => render());
initAccess({ client, roomId: page.room_id, base: page.base || location.origin });

// --- who am I (co-hosts see this name on the items I take) -------------------------------------------

const meForm = $("[data-me-form]");
const meInput = $("[data-me-name]");
meInput.value = myName();
meForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const name = meInput.value.trim();
  if (!name || name === myName()) return;
  localStorage.setItem(NAME_KEY, name);
  client.opts.credentials = { name };
  client.lastWelcome = null;
  meInput.blur();
  client.dropConnection(); // the name travels in hello: reconnect (and resume) under it
  toast("console.me.saved", { name });
});

// --- room controls ----------------------------------------------------------------------------------

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

// --- keyboard: the streamer's hands stay on the keys --------------------------------------------------

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
  const target = e.target;
  if (target instanceof HTMLElement && (target.isContentEditable || target.matches("input, textarea, select"))) {
    if (e.key === "Escape") target.blur();
    return;
  }
  if (tabs.current !== "questions") return; // the queue's keys act on a queue that is not on screen
  const key = e.key.toLowerCase();
  let used = true;
  if (key === "n") panels.next();
  else if (key === "x") panels.clear();
  else used = queue.onKey(e);
  if (used) e.preventDefault();
});
