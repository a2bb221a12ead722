// The realtime client every surface uses: hello/resume handshake, gap detection, heartbeat,
// reconnect with exponential backoff and full jitter, request/ack, and a server clock estimate.

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 15000;
const PONG_TIMEOUT_MS = 10000;
const REQUEST_TIMEOUT_MS = 10000;
// Close codes after which retrying cannot help (bad credentials, wrong room, forbidden origin), or
// would take the room from a newer tab of the same viewer (4009: too many connections, the oldest goes).
const FATAL_CLOSE = new Set([4001, 4003, 4004, 4009]);

export class RoomClient {
  /**
   * @param {{role: string, roomId: string, credentials?: object,
   *          onSnapshot: Function, onEvent: Function, onStatus?: Function, onNotice?: Function}} opts
   */
  constructor(opts) {
    this.opts = opts;
    this.epoch = null;
    this.seq = 0;
    this.attempt = 0;
    this.status = "connecting";
    this.pending = new Map();
    this.nextId = 0;
    this.clockOffsetMs = 0; // server time ~= Date.now() + clockOffsetMs
    this.bestRttMs = Infinity;
    this.lastWelcome = null;
    this.welcomes = 0;
    this.stopped = false;
    this.seqLog = []; // the last applied seqs, for the debug panel and the browser tests
  }

  start() {
    this._open();
    window.addEventListener("online", () => this._reconnectNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && this.status !== "live") this._reconnectNow();
    });
    return this;
  }

  serverNow() {
    return Date.now() + this.clockOffsetMs;
  }

  /** Send an action; resolves with its result, rejects with {code, message}. */
  request(type, data = {}) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || this.status !== "live") {
      return Promise.reject({ code: "offline", message: "not connected" });
    }
    const id = `c${++this.nextId}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject({ code: "timeout", message: "no answer" });
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ type, id, data }));
    });
  }

  /** Drop the connection as a network failure would (used by tests and the debug panel). */
  dropConnection() {
    if (this.ws) this.ws.close(4000, "client drop");
  }

  _open() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws/${this.opts.role}/${encodeURIComponent(this.opts.roomId)}`);
    this.ws = ws;
    this._setStatus(this.attempt === 0 && this.welcomes === 0 ? "connecting" : "reconnecting");
    ws.onopen = () => {
      const hello = { ...(this.opts.credentials || {}) };
      if (this.epoch !== null) hello.resume = { epoch: this.epoch, seq: this.seq };
      ws.send(JSON.stringify({ type: "hello", data: hello }));
    };
    ws.onmessage = (e) => {
      if (ws !== this.ws) return;
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      this._onMessage(msg);
    };
    ws.onclose = (e) => {
      if (ws === this.ws) this._onClose(e);
    };
  }

  _onMessage(msg) {
    if (msg.seq !== undefined) {
      if (msg.seq <= this.seq) return; // already applied
      if (msg.seq !== this.seq + 1) {
        // Never apply past a gap: reconnect and resume from the last event we have.
        this.dropConnection();
        return;
      }
      this.seq = msg.seq;
      this.seqLog.push(msg.seq);
      if (this.seqLog.length > 1000) this.seqLog.shift();
      this.opts.onEvent(msg.type, msg.data, msg);
      return;
    }
    const data = msg.data || {};
    switch (msg.type) {
      case "welcome": {
        const hadState = this.epoch !== null;
        this.epoch = data.epoch;
        this.seq = data.seq;
        this.attempt = 0;
        this.welcomes += 1;
        this.lastWelcome = data;
        if (!data.resumed) this.opts.onSnapshot(data.snapshot, data);
        if (hadState && !data.resumed && this.opts.onNotice) this.opts.onNotice("conn.resynced");
        this._setStatus("live");
        this._startHeartbeat(data.heartbeat_secs || 25);
        break;
      }
      case "pong": {
        clearTimeout(this.pongTimer);
        if (typeof data.t === "number") {
          const now = Date.now();
          const rtt = now - data.t;
          if (rtt <= this.bestRttMs * 1.5 || rtt < 50) {
            this.bestRttMs = Math.min(this.bestRttMs, rtt);
            this.clockOffsetMs = data.server_ms + rtt / 2 - now;
          }
        }
        break;
      }
      case "ack":
      case "error": {
        const waiter = data.id !== undefined ? this.pending.get(data.id) : undefined;
        if (waiter) {
          this.pending.delete(data.id);
          clearTimeout(waiter.timer);
          if (msg.type === "ack") waiter.resolve(data.result);
          else waiter.reject(data);
        } else if (msg.type === "error" && this.opts.onError) {
          this.opts.onError(data);
        }
        break;
      }
      default:
        if (this.opts.onDirect) this.opts.onDirect(msg.type, data);
    }
  }

  _onClose(e) {
    this._stopHeartbeat();
    for (const [, waiter] of this.pending) {
      clearTimeout(waiter.timer);
      waiter.reject({ code: "offline", message: "connection lost" });
    }
    this.pending.clear();
    if (this.stopped) {
      this._setStatus("offline");
      return;
    }
    if (FATAL_CLOSE.has(e.code)) {
      this._setStatus("failed", e.code);
      return;
    }
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    const delay = this.attempt === 0 ? 50 + Math.random() * 250 : Math.random() * ceiling;
    this.attempt += 1;
    this._setStatus(navigator.onLine === false ? "offline" : "reconnecting");
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this._open(), delay);
  }

  /** Stop reconnecting (and close); ``resume()`` starts again from the last event seen. */
  pause() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.ws) this.ws.close(4000, "paused");
  }

  resume() {
    this.stopped = false;
    this._reconnectNow();
  }

  _reconnectNow() {
    if (this.stopped || this.status === "failed") return;
    if (this.ws && (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)) return;
    clearTimeout(this.retryTimer);
    this._open();
  }

  _startHeartbeat(secs) {
    this._stopHeartbeat();
    const beat = () => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
      this.ws.send(JSON.stringify({ type: "ping", data: { t: Date.now() } }));
      clearTimeout(this.pongTimer);
      this.pongTimer = setTimeout(() => this.dropConnection(), PONG_TIMEOUT_MS);
    };
    beat(); // first ping right away: it also measures the clock offset
    this.heartbeatTimer = setInterval(beat, secs * 1000);
  }

  _stopHeartbeat() {
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.pongTimer);
  }

  _setStatus(status, code) {
    this.status = status;
    document.documentElement.dataset.conn = status;
    if (this.opts.onStatus) this.opts.onStatus(status, code);
  }
}

/** Show the connection state in an element with [data-conn-badge]. */
export function connectionBadge(setText) {
  const el = document.querySelector("[data-conn-badge]");
  return (status) => {
    if (!el) return;
    el.dataset.state = status;
    setText(el, `conn.${status === "live" ? "live" : status}`);
  };
}
