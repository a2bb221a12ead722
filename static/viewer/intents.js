// Purchase-intent signals (a pinned card seen, details opened, back from the shop). Each carries a
// client id, so a signal sent again after a dropped connection is counted once by the server.

function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(8)); // works on plain http, unlike randomUUID
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export class Intents {
  constructor(client) {
    this.client = client;
    this.queue = new Map(); // id -> data, until the server acknowledges it
    this.sent = new Set(); // ids acknowledged (a pinned card is counted once per pin)
    this.busy = false;
    this.away = null; // the product whose shop page was opened last
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState !== "visible" || !this.away) return;
      const { productId, discountId } = this.away;
      this.away = null;
      this.send("checkout.leave", productId, discountId ? { discount_id: discountId } : {});
    });
  }

  /** A buy or checkout link opened the shop in a new tab: seeing this page again means they came back. */
  checkoutOpened(productId, discountId = null) {
    this.away = { productId, discountId };
  }

  /** Send a signal; `id` makes it idempotent (default: a fresh one). */
  send(kind, productId, extra = {}, id = `${kind.split(".")[1].slice(0, 2)}-${randomId()}`) {
    if (this.sent.has(id) || this.queue.has(id)) return;
    this.queue.set(id, { kind, product_id: productId, id, ...extra });
    this.flush();
  }

  /** Send what is queued, one at a time; called again when the connection is back. */
  async flush() {
    if (this.busy || this.client.status !== "live") return;
    this.busy = true;
    try {
      for (const [id, data] of [...this.queue]) {
        try {
          await this.client.request("intent", data);
        } catch (err) {
          if (err && (err.code === "offline" || err.code === "timeout" || err.code === "rate_limited")) break;
          // Refused for good (the product was removed): drop it.
        }
        this.queue.delete(id);
        this.sent.add(id);
      }
    } finally {
      this.busy = false;
    }
  }
}
