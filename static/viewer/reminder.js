// Go-live reminders (预约直播): on a scheduled room the phone shows the announced start (in local time,
// with a countdown in the last 24 hours), the description and cover, and a "Remind me" button. The
// server keeps the reminder and sends one message when the room goes live: on a channel the viewer
// consented to, else in the app. Without any consent yet, tapping opens the opt-in box and says an
// in-app message will wait for them otherwise. Tapping again cancels.
import { isBusy, withBusy } from "/static/js/busy.js";
import { api } from "/static/js/http.js";
import { currentLang, onLangChange, setText } from "/static/js/i18n.js";
import { formatClock } from "/static/js/time.js";
import { errorKey } from "/static/js/ui.js";

const DAY_MS = 24 * 3600 * 1000;

export function initReminder({ roomId, optin, serverNow }) {
  const card = document.querySelector("[data-remind]");
  if (!card) return { render() {} };
  const button = card.querySelector("[data-remind-toggle]");
  const when = card.querySelector("[data-remind-when]");
  const countdown = card.querySelector("[data-remind-countdown]");
  const inapp = card.querySelector("[data-remind-inapp]");
  const error = card.querySelector("[data-remind-error]");
  const url = `/api/rooms/${encodeURIComponent(roomId)}/reminder`;
  const startMs = Number(card.dataset.scheduledMs) || null;
  const joined = Boolean(button); // before joining the card only shows the start
  let isSet = false;
  let status = "scheduled";

  function paint() {
    card.hidden = status !== "scheduled";
    if (joined) {
      button.setAttribute("aria-pressed", String(isSet));
      setText(button, isSet ? "remind.done" : "remind.set");
      if (!isSet) inapp.hidden = true;
    }
    if (startMs) {
      const format = new Intl.DateTimeFormat(currentLang(), { dateStyle: "medium", timeStyle: "short" });
      setText(when, "remind.when", { when: format.format(new Date(startMs)) });
    }
    tick();
  }

  function tick() {
    const left = startMs ? startMs - serverNow() : 0;
    countdown.hidden = !(left > 0 && left < DAY_MS) || status !== "scheduled";
    if (!countdown.hidden) setText(countdown, "remind.countdown", { clock: formatClock(left) });
  }

  function showError(key) {
    error.hidden = !key;
    if (key) setText(error, key);
  }

  async function toggle() {
    if (isBusy(button)) return;
    showError(null);
    try {
      await withBusy(button, async () => {
        if (isSet) {
          await api("DELETE", url);
          isSet = false;
        } else {
          const reply = await api("POST", url);
          isSet = true;
          // Not reachable outside the app yet: offer the opt-in box, and say the app will hold it.
          const reachable = reply && reply.consented && reply.consented.length > 0;
          inapp.hidden = reachable;
          if (!reachable && optin) optin.open({ focus: true });
        }
      });
    } catch (err) {
      if (err.code === "not_scheduled") status = "live";
      else showError(errorKey(err));
    }
    paint();
  }

  onLangChange(paint);
  setInterval(tick, 1000);
  if (!joined) {
    paint();
    return { render() {} };
  }
  button.addEventListener("click", toggle);
  api("GET", url)
    .then((reply) => {
      isSet = Boolean(reply && reply.set);
      if (reply && reply.status) status = reply.status;
      paint();
    })
    .catch(() => paint());
  paint();

  return {
    /** The room's status from the snapshot and its events: the card is for a scheduled room only. */
    render(roomStatus) {
      if (roomStatus && roomStatus !== status) {
        status = roomStatus;
        paint();
      }
    },
  };
}
