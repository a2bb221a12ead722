// The push service worker, served at /sw.js (server/pages.py) so that its scope covers the room
// pages under /r/. It only shows follow-up notifications: it caches nothing and handles no fetches.
// The payload is server/followup/channels/push.py's {"title", "body", "url", "tag"}; the tag makes a
// repeated send replace the first notification instead of stacking a second one.

// Shown only if a payload comes without a title (the product name needs no translation).
const FALLBACK_TITLE = "Livewall";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

function payload(event) {
  if (!event.data) return {};
  try {
    const data = event.data.json();
    return data && typeof data === "object" ? data : {};
  } catch {
    return { body: event.data.text() };
  }
}

/** An http(s) address to open, resolved against this site; anything else (javascript:, data:) is dropped. */
function safeUrl(raw) {
  if (typeof raw !== "string" || !raw) return null;
  try {
    const url = new URL(raw, self.location.origin);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

self.addEventListener("push", (event) => {
  const data = payload(event);
  const title = typeof data.title === "string" && data.title.trim() ? data.title : FALLBACK_TITLE;
  const options = {
    body: typeof data.body === "string" ? data.body : "",
    data: { url: safeUrl(data.url) },
  };
  if (typeof data.tag === "string" && data.tag) options.tag = data.tag;
  event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || new URL("/", self.location.origin).href;
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      for (const client of windows) {
        if (client.url === url && "focus" in client) return client.focus();
      }
      return self.clients.openWindow(url);
    })(),
  );
});
