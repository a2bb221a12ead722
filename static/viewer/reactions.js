// Quick reactions: taps are gathered and sent as one `reaction` message a second at most, so a
// thousand thumbs hammering "heart" cost the server a thousand small messages a second, not a flood.

// The protocol's cadence and its per-message ceiling (server/questions/rules.py).
const SEND_INTERVAL_MS = 1000;
const MAX_PER_KIND = 50;
// Local feedback floaters on the phone: enough to feel alive, few enough for a cheap phone.
const MAX_LOCAL_FLOATERS = 12;

export class ReactionSender {
  constructor(send) {
    this.send = send;
    this.pending = {};
    this.lastSentMs = -Infinity;
    this.timer = null;
    this.messages = 0; // messages sent, for the browser tests
    this.taps = 0;
  }

  tap(kind) {
    this.taps += 1;
    this.pending[kind] = (this.pending[kind] || 0) + 1;
    this._schedule();
  }

  _schedule() {
    if (this.timer !== null) return;
    const wait = Math.max(0, this.lastSentMs + SEND_INTERVAL_MS - performance.now());
    this.timer = setTimeout(() => this._flush(), wait);
  }

  _flush() {
    this.timer = null;
    const counts = {};
    for (const [kind, n] of Object.entries(this.pending)) {
      const take = Math.min(n, MAX_PER_KIND);
      counts[kind] = take;
      if (n > take) this.pending[kind] = n - take;
      else delete this.pending[kind];
    }
    if (Object.keys(counts).length === 0) return;
    this.lastSentMs = performance.now();
    this.messages += 1;
    this.send(counts);
    if (Object.keys(this.pending).length) this._schedule(); // over the ceiling: the rest next second
  }
}

export function initReactions(client) {
  const bar = document.querySelector("[data-reactions]");
  const reduced = window.matchMedia("(prefers-reduced-motion: reduce)");
  const sender = new ReactionSender((counts) => client.request("reaction", { counts }).catch(() => {}));
  let floaters = 0;

  bar.addEventListener("click", (e) => {
    const button = e.target.closest("[data-react]");
    if (!button) return;
    sender.tap(button.dataset.react);
    if (reduced.matches || floaters >= MAX_LOCAL_FLOATERS) return;
    const el = document.createElement("span");
    el.className = "v-float";
    el.textContent = button.textContent.trim();
    const box = button.getBoundingClientRect();
    el.style.left = `${box.left + box.width / 2}px`;
    el.style.top = `${box.top}px`;
    document.body.append(el);
    floaters += 1;
    const dx = (Math.random() - 0.5) * 60;
    const anim = el.animate(
      [
        { transform: "translate(-50%, 0) scale(0.8)", opacity: 1 },
        { transform: `translate(calc(-50% + ${dx}px), -180px) scale(1.3)`, opacity: 0 },
      ],
      { duration: 1100, easing: "cubic-bezier(.2,.7,.4,1)" },
    );
    anim.onfinish = () => {
      el.remove();
      floaters -= 1;
    };
  });
  return sender;
}
