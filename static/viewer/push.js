// Web push on the phone: the "Remind me on this phone" button of the opt-in box. Permission is asked
// only from that button's tap (never on load); then the service worker (/sw.js) is registered, the
// browser subscribes with the server's VAPID key, and the subscription goes to the server with the
// sentence the viewer agreed to. Browsers without push (or a page not served over https) hide it.
import { isBusy, withBusy } from "/static/js/busy.js";
import { api } from "/static/js/http.js";
import { currentLang, setText } from "/static/js/i18n.js";

const SW_URL = "/sw.js";
const SW_SCOPE = "/";

export function pushSupported() {
  return (
    window.isSecureContext &&
    "serviceWorker" in navigator &&
    "PushManager" in window &&
    "Notification" in window &&
    typeof Notification.requestPermission === "function"
  );
}

function keyBytes(b64url) {
  const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (b64url.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function sameKey(buffer, bytes) {
  if (!buffer) return false;
  const a = new Uint8Array(buffer);
  return a.length === bytes.length && a.every((v, i) => v === bytes[i]);
}

/** The browser's current subscription to this site's push, if any (no prompt, no registration). */
async function currentSubscription() {
  const reg = await navigator.serviceWorker.getRegistration(SW_SCOPE);
  return reg ? reg.pushManager.getSubscription() : null;
}

/**
 * Wire the push part of the opt-in box. `box` holds [data-push-enable], [data-push-wording] and
 * [data-push-status]; `onContact(contact)` gets the server's updated contact after a subscription is saved.
 */
export function initPush({ box, roomId, onContact }) {
  const button = box.querySelector("[data-push-enable]");
  const wording = box.querySelector("[data-push-wording]");
  const status = box.querySelector("[data-push-status]");
  let serverHas = false; // the server holds a subscription of this person (contact.push)

  function show(key) {
    status.hidden = !key;
    status.dataset.state = key ? key.split(".").pop() : "";
    if (key) setText(status, key);
    else status.textContent = "";
  }

  function offer(on) {
    button.hidden = !on;
    wording.hidden = !on;
  }

  /** Push is offered: this browser can, and the server sends it (no data-push-off from the page). */
  function available() {
    return pushSupported() && !("pushOff" in box.dataset);
  }

  async function refresh() {
    if (!available()) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    if (isBusy(button)) return;
    if (Notification.permission === "denied") {
      offer(false);
      show("followup.push.denied");
      return;
    }
    let subscribed = false;
    if (Notification.permission === "granted" && serverHas) {
      try {
        subscribed = Boolean(await currentSubscription());
      } catch {
        subscribed = false;
      }
    }
    offer(!subscribed);
    if (subscribed) show("followup.push.on");
    else if (status.dataset.state === "on") show(null);
  }

  /** Ask, subscribe and tell the server; what came of it (a catalog key). */
  async function subscribe() {
    // First, while the tap still counts as a user gesture: browsers refuse prompts without one.
    const permission =
      Notification.permission === "default" ? await Notification.requestPermission() : Notification.permission;
    if (permission === "denied") return "followup.push.denied";
    if (permission !== "granted") return "followup.push.not_now";
    const reg = await navigator.serviceWorker.register(SW_URL, { scope: SW_SCOPE });
    await navigator.serviceWorker.ready;
    const { key } = await api("GET", "/api/push/key");
    const applicationServerKey = keyBytes(key);
    let sub = await reg.pushManager.getSubscription();
    if (sub && !sameKey(sub.options && sub.options.applicationServerKey, applicationServerKey)) {
      await sub.unsubscribe(); // made with an older server key: it would never receive anything
      sub = null;
    }
    if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey });
    const reply = await api("POST", `/api/rooms/${encodeURIComponent(roomId)}/push`, {
      subscription: sub.toJSON(),
      wording: wording.textContent.trim(),
      lang: currentLang(),
    });
    serverHas = true;
    if (reply.contact) onContact(reply.contact);
    return "followup.push.on";
  }

  async function enable() {
    if (isBusy(button)) return;
    show(null);
    let outcome = "followup.push.failed";
    try {
      outcome = await withBusy(button, subscribe, { busyKey: "followup.push.busy", idleKey: "followup.push.button" });
    } catch (err) {
      console.warn("push subscription failed", err);
    }
    offer(outcome !== "followup.push.on" && outcome !== "followup.push.denied");
    show(outcome);
  }

  button.addEventListener("click", enable);
  return {
    /** The contact as the server knows it (welcome or a save): whether it holds a subscription. */
    setContact(contact) {
      serverHas = Boolean(contact && contact.push);
      refresh();
    },
    refresh,
    available,
  };
}
