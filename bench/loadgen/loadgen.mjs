// Livewall benchmark load generator: thousands of viewers (and the host) over real WebSockets.
//
// Driven by bench/run.py: one JSON config as argv[2]; commands arrive as JSON lines on stdin and
// every answer is one JSON line on stdout (logs go to stderr). Speaks three dialects so every server
// gets the same client cost: "livewall" and "naive" (Livewall's protocol: HTTP join, hello/welcome,
// sequenced envelopes) and "socketio" (Engine.IO 4 / Socket.IO 5 packets over a bare WebSocket).
//
// Latency is receipt time minus the send time the host put in the announcement text; both use this
// machine's wall clock (performance.timeOrigin + now(), sub-millisecond). Loss is counted on the
// announcement index the host puts in the text; gaps on the server's per-stream sequence numbers.
//
// Claim rush (`claim` command): every connected viewer sends one discount.claim at its own time,
// drawn uniformly from [start_at, start_at + spread_ms), and times it to the ack or error that
// carries the same message id.

import { createInterface } from "node:readline";
import { performance } from "node:perf_hooks";
import WebSocket from "ws"; // the host's connections only; viewers and the screen use RawWS
import { RawWS, OPEN, utf8, latin1 } from "./rawws.mjs";

const cfg = JSON.parse(process.argv[2]);
const KIND = cfg.kind; // livewall | naive | socketio
const SIO = KIND === "socketio";
const N_ADDRS = cfg.bind_addrs ?? 8; // client source IPs 127.0.0.1..N: avoids ephemeral port limits
const now = () => performance.timeOrigin + performance.now();
const log = (...a) => process.stderr.write(`[loadgen ${cfg.name ?? ""}] ${a.join(" ")}\n`);
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// --- histograms: 0.1 ms buckets up to 60 s ------------------------------------------------------
const HMAX = 600000;
class Hist {
  constructor() { this.b = new Uint32Array(HMAX + 1); this.n = 0; this.max = 0; }
  add(ms) {
    if (ms < 0) ms = 0;
    const i = Math.min(HMAX, Math.round(ms * 10));
    this.b[i]++; this.n++; if (ms > this.max) this.max = ms;
  }
  sparse() { const out = []; for (let i = 0; i <= HMAX; i++) if (this.b[i]) out.push([i, this.b[i]]); return out; }
}

// --- state ----------------------------------------------------------------------------------------
const viewers = [];
let host = null;
let runId = 0;
let running = false; // reconnect on close only while true or during a restart
let lat = new Hist();
let rtt = new Hist();
let counters = freshCounters();
let sessionsOpen = 0;
let seqEvents = 0; // sequenced events received by this process's viewers (all types)
let stockEvents = 0; // of which `stock` ticks
let claimRun = null; // the claim rush under way: see cmdClaim

function freshCounters() {
  return { received: 0, gaps: 0, lost: 0, skipped: 0, resumed: 0, resume_failed: 0, reconnects: 0,
           closes: {}, errors: 0, first_recv: 0, last_recv: 0, comments_sent: 0, pongs: 0, replayed: 0,
           questions_sent: 0, submit_acked: 0, submit_errors: {},
           // seen by the host (queue events) and the screen (wall events): see ItemWatch
           host_items: 0, host_questions: 0, host_dupes: 0, screen_frames: 0, screen_items: 0, screen_dropped: 0 };
}

function target(i) { return cfg.targets[i % cfg.targets.length]; }

async function postJson(url, body) {
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
      return await r.json();
    } catch (e) {
      if (attempt >= 5) throw e;
      await sleep(100 * 2 ** attempt);
    }
  }
}

async function pool(items, concurrency, fn) {
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) { const i = next++; await fn(items[i], i); }
  });
  await Promise.all(workers);
}

// The host's announcement text `{"t":..,"r":..,"i":..}` as it appears escaped inside the envelope.
const SIO_SEQ_RE = /"seq": ?(\d+)/;
const TEXT_RE = /\\"t\\":([-\d.e+]+),\\"r\\":(\d+),\\"i\\":(\d+)/;

// The same fast path on the frame's bytes, before any string is made: `{"type":"T","seq":N,...}`
// (also with a space after ':' and ',' as the peers' json.dumps writes it, which the string way
// leaves to JSON.parse; Socket.IO's inside `42["announcement",...]`) and the announcement's
// `\"t\":T,\"r\":R,\"i\":I`. It fills the f* variables below (no object per message); anything
// it does not recognise goes the string way (onMessage), which decides as before.
const bytesOf = (s) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const B_TYPE = bytesOf('{"type":'), B_SEQ = bytesOf('"seq":'), B_SIO = bytesOf('42["announcement",');
const B_ANNOUNCEMENT = bytesOf("announcement"), B_STOCK = bytesOf("stock");
const B_T = bytesOf('\\"t\\":'), B_R = bytesOf(',\\"r\\":'), B_I = bytesOf(',\\"i\\":');
const KIND_OTHER = 0, KIND_ANNOUNCEMENT = 1, KIND_STOCK = 2;
let fKind = KIND_OTHER, fSeq = 0, fT = 0, fR = 0, fI = 0, fPos = 0;

function bytesAt(buf, p, end, pat) {
  if (end - p < pat.length) return false;
  for (let i = 0; i < pat.length; i++) if (buf[p + i] !== pat[i]) return false;
  return true;
}

// Digits at buf[p..] into fI, fPos after them; false if none or too many to be exact.
function digitsAt(buf, p, end) {
  let v = 0, q = p;
  for (; q < end; q++) { const d = buf[q] - 48; if (d < 0 || d > 9) break; v = v * 10 + d; }
  if (q === p || q - p > 15) return false;
  fI = v; fPos = q;
  return true;
}

// A sequenced event at buf[p, end): fKind, fSeq (and fT, fR, fI for an announcement) or false.
function parseSeqEvent(buf, p, end) {
  if (!bytesAt(buf, p, end, B_TYPE)) return false;
  p += B_TYPE.length; if (buf[p] === 32) p++;
  if (buf[p] !== 34) return false;
  const t0 = ++p;
  while (p < end && buf[p] !== 34) p++; // event types have no escapes
  if (p >= end) return false;
  const t1 = p++;
  if (buf[p] !== 44) return false; // ,
  if (buf[++p] === 32) p++;
  if (!bytesAt(buf, p, end, B_SEQ)) return false;
  p += B_SEQ.length; if (buf[p] === 32) p++;
  if (!digitsAt(buf, p, end)) return false;
  fSeq = fI; p = fPos;
  if (t1 - t0 === B_STOCK.length && bytesAt(buf, t0, t1, B_STOCK)) { fKind = KIND_STOCK; return true; }
  if (!(t1 - t0 === B_ANNOUNCEMENT.length && bytesAt(buf, t0, t1, B_ANNOUNCEMENT))) { fKind = KIND_OTHER; return true; }
  // The first \"t\": is where TEXT_RE would match; the send time's characters as it takes them.
  while (p < end && !(buf[p] === 92 && bytesAt(buf, p, end, B_T))) p++;
  if (p === end) return false;
  p += B_T.length;
  const n0 = p;
  for (; p < end; p++) { const c = buf[p]; if (!((c >= 48 && c <= 57) || c === 46 || c === 45 || c === 43 || c === 101)) break; }
  const n1 = p;
  if (n1 === n0 || !bytesAt(buf, p, end, B_R) || !digitsAt(buf, p + B_R.length, end)) return false;
  fR = fI; p = fPos;
  if (!bytesAt(buf, p, end, B_I) || !digitsAt(buf, p + B_I.length, end)) return false;
  fT = +latin1(buf, n0, n1); // a string of the time's few characters: the same number as +m[1]
  fKind = KIND_ANNOUNCEMENT;
  return true;
}

// --- one viewer -----------------------------------------------------------------------------------
class Viewer {
  constructor(idx) {
    this.idx = idx; this.t = target(idx); this.token = null; this.ws = null;
    this.epoch = null; this.seq = 0; this.welcomed = false; this.sessionStart = 0; this.welcomeAt = 0;
    this.run = -1; this.got = 0; this.skippedBase = -1; this.resync = false; this.wantOpen = false; this.attempt = 0;
    this.onWelcome = null; this.claim = null;
    this.seenIdx = null; // with trackIndices: a bitmap of the run's announcement indices received
  }

  open() {
    this.wantOpen = true; this.welcomed = false;
    const addr = `127.0.0.${1 + (this.idx % N_ADDRS)}`;
    const url = SIO ? `${this.t.ws_base}/socket.io/?EIO=4&transport=websocket` : `${this.t.ws_base}/ws/viewer/${cfg.room}`;
    this.sessionStart = now();
    const ws = new RawWS(url, { localAddress: addr, handshakeTimeout: 20000 });
    this.ws = ws;
    ws.onopen = () => {
      sessionsOpen++;
      if (!SIO) ws.send(JSON.stringify({ type: "hello", data: this.helloData() }));
    };
    ws.onmessage = (buf, start, end) => this.onFrame(buf, start, end);
    ws.onerror = () => { counters.errors++; };
    ws.onclose = (code) => {
      if (this.ws !== ws) return;
      this.ws = null; this.welcomed = false;
      counters.closes[code] = (counters.closes[code] ?? 0) + 1;
      if (this.wantOpen) this.scheduleReconnect();
    };
  }

  helloData() {
    const d = { token: this.token };
    if (KIND === "livewall" && this.epoch !== null) d.resume = { epoch: this.epoch, seq: this.seq };
    return d;
  }

  scheduleReconnect() {
    // Exponential backoff with full jitter, as a phone would do (first try within cfg.jitter_ms).
    const base = this.attempt === 0 ? (cfg.jitter_ms ?? 500) : Math.min(4000, 250 * 2 ** this.attempt);
    this.attempt++;
    counters.reconnects++;
    setTimeout(() => { if (this.wantOpen && this.ws === null) this.open(); }, Math.random() * base);
  }

  close() { this.wantOpen = false; const ws = this.ws; this.ws = null; this.welcomed = false; if (ws) ws.terminate(); }

  onFrame(buf, start, end) {
    const p = !SIO ? start : bytesAt(buf, start, end, B_SIO) ? start + B_SIO.length : -1;
    if (p >= 0 && parseSeqEvent(buf, p, end) && (!SIO || fKind === KIND_ANNOUNCEMENT)) {
      this.onSeq(fSeq);
      if (fKind === KIND_ANNOUNCEMENT) this.countAnnouncement(fT, fR, fI);
      else if (fKind === KIND_STOCK) stockEvents++;
      return;
    }
    this.onMessage(utf8(buf, start, end));
  }

  onMessage(s) {
    let msg;
    if (SIO) {
      const c = s.charCodeAt(0);
      if (c === 50 /* "2" ping */) { this.ws.send("3"); return; }
      if (c === 48 /* "0" open */) { this.ws.send("40" + JSON.stringify({ token: this.token })); return; }
      if (s.startsWith('42["announcement"')) {
        const m = SIO_SEQ_RE.exec(s);
        if (m !== null) return this.onAnnouncementFast(+m[1], s);
      }
      if (s.startsWith("42")) {
        const arr = JSON.parse(s.slice(2));
        msg = arr[1]; if (msg && !msg.type) msg.type = arr[0];
      } else return;
    } else {
      // Fast path (for what onFrame's byte path left): sequenced events are `{"type":"T","seq":N,...}`:
      // read the type and seq by position, and an announcement's send time with one regex, no JSON.parse.
      if (s.startsWith('{"type":"')) {
        const end = s.indexOf('"', 9);
        if (s.startsWith(',"seq":', end + 1)) {
          const seq = parseInt(s.slice(end + 8, end + 28), 10);
          if (s.startsWith("announcement", 9) && end === 21) return this.onAnnouncementFast(seq, s);
          if (end === 14 && s.startsWith("stock", 9)) stockEvents++;
          return this.onSeq(seq);
        }
      }
      msg = JSON.parse(s);
    }
    const type = msg.type;
    if (type === "announcement") return this.onAnnouncement(msg);
    if (msg.seq !== undefined) return this.onSeq(msg.seq);
    if (type === "welcome") return this.welcome(msg.data);
    if (this.claim !== null && (type === "ack" || type === "error") && msg.data && msg.data.id === this.claim.id) return this.onClaimAnswer(msg);
    if (type === "ack") {
      counters.submit_acked++;
      // The submit's round trip: read, checked, stored (committed), answered.
      const sentAt = this.submits && msg.data && this.submits.get(msg.data.id);
      if (sentAt !== undefined && sentAt !== null) { rtt.add(now() - sentAt); this.submits.delete(msg.data.id); }
      return;
    }
    if (type === "error") { const c = msg.data && msg.data.code; counters.submit_errors[c] = (counters.submit_errors[c] ?? 0) + 1; return; }
    if (type === "pong") { counters.pongs++; const t = msg.data && msg.data.t; if (typeof t === "number") rtt.add(now() - t); }
  }

  welcome(d) {
    this.welcomed = true; this.attempt = 0; this.welcomeAt = now();
    if (KIND === "livewall") {
      if (this.epoch !== null) { if (d.resumed) counters.resumed++; else { counters.resume_failed++; this.resync = true; } }
      this.epoch = d.epoch;
    } else if (this.epoch !== null) {
      this.resync = true; // the peers have no resume: events missed while away are not counted as loss
    }
    if (!d.resumed) { this.seq = d.seq; this.epoch = d.epoch ?? "x"; }
    if (this.onWelcome) { const f = this.onWelcome; this.onWelcome = null; f(); }
  }

  onSeq(seq) {
    seqEvents++;
    if (seq !== this.seq + 1) { if (seq > this.seq + 1) counters.gaps += seq - this.seq - 1; else counters.gaps++; }
    this.seq = seq;
  }

  onAnnouncementFast(seq, s) {
    this.onSeq(seq);
    const m = TEXT_RE.exec(s);
    if (m === null) return this.onAnnouncement(JSON.parse(s), true);
    this.countAnnouncement(+m[1], +m[2], +m[3]);
  }

  onAnnouncement(msg, seqDone = false) {
    if (!seqDone) this.onSeq(msg.seq);
    const p = JSON.parse(msg.data.text);
    this.countAnnouncement(p.t, p.r, p.i);
  }

  // The host's announcement text: send time, run id and index.
  countAnnouncement(sentAt, run, index) {
    const t = now();
    if (run !== runId) return;
    counters.received++;
    if (counters.first_recv === 0) counters.first_recv = t;
    counters.last_recv = t;
    if (sentAt >= this.sessionStart) lat.add(t - sentAt); else counters.replayed++;
    if (this.run !== run) { this.run = run; this.got = 0; this.seenIdx = null; }
    this.got++;
    if (trackIndices) {
      const need = (index >> 3) + 1;
      if (this.seenIdx === null || this.seenIdx.length < need) {
        const grown = new Uint8Array(Math.max(need, 64, (this.seenIdx?.length ?? 0) * 2));
        if (this.seenIdx !== null) grown.set(this.seenIdx);
        this.seenIdx = grown;
      }
      this.seenIdx[index >> 3] |= 1 << (index & 7);
    }
    // A peer viewer back from a reconnect (no resume) missed what was sent while it was away.
    if (this.resync) { this.resync = false; this.skippedBase = index; }
  }

  comment() {
    const ws = this.ws; if (!ws || !this.welcomed) return;
    counters.comments_sent++;
    if (KIND === "livewall" && cfg.submit) {
      // A real item: every 5th a question. The text carries a unique tag and the send time, which the
      // host's queue events echo back: `b<viewer>.<n> <ms>`.
      this.nSent = (this.nSent ?? 0) + 1;
      const kind = this.nSent % 5 === 0 ? "question" : "comment";
      if (kind === "question") counters.questions_sent++;
      const sentAt = now();
      const text = `b${this.idx}.${this.nSent} ${sentAt.toFixed(1)}`;
      (this.submits ??= new Map()).set(this.nSent, sentAt);
      ws.send(JSON.stringify({ type: "item.submit", id: this.nSent, data: { kind, text } }));
    } else if (SIO) ws.send("42" + JSON.stringify(["ping", { t: now() }]));
    else ws.send(JSON.stringify({ type: "ping", data: { t: now() } }));
  }

  sendClaim(discountId, msgId) {
    const ws = this.ws;
    if (!ws || !this.welcomed) { claimRun.not_sent++; return; }
    this.claim = { id: msgId, t: now() };
    claimRun.sent++;
    tick(claimRun.sends_per_100ms, this.claim.t - claimRun.start_at);
    ws.send(JSON.stringify({ type: "discount.claim", id: msgId, data: { id: discountId } }));
  }

  onClaimAnswer(msg) {
    const t = now();
    const r = claimRun;
    r.hist.add(t - this.claim.t); r.answered++; r.last_answer = Math.max(r.last_answer, t);
    tick(r.answers_per_100ms, t - r.start_at);
    this.claim = null;
    const outcome = msg.type === "ack" ? "ok" : (msg.data.code ?? "unknown");
    r.outcomes[outcome] = (r.outcomes[outcome] ?? 0) + 1;
    if (outcome === "ok") {
      r.codes.push(msg.data.result && msg.data.result.code);
      r.first_ok = r.first_ok ? Math.min(r.first_ok, t) : t; r.last_ok = Math.max(r.last_ok, t);
      r.ok_hist.add(t - r.start_at);
    }
  }

  connectAndWelcome() {
    return new Promise((resolve) => { this.onWelcome = resolve; this.open(); });
  }
}

// --- the host ---------------------------------------------------------------------------------------
class HostConn {
  constructor(i, token) {
    this.i = i; this.token = token; this.ws = null; this.ready = false; this.waiters = new Map(); this.nextId = 1; this.wantOpen = true;
  }

  open() {
    return new Promise((resolve, reject) => {
      const t = cfg.targets[0];
      const url = SIO ? `${t.ws_base}/socket.io/?EIO=4&transport=websocket` : `${t.ws_base}/ws/host/${cfg.room}`;
      const ws = new WebSocket(url, { perMessageDeflate: false });
      this.ws = ws; this.ready = false;
      ws.on("open", () => { if (!SIO) ws.send(JSON.stringify({ type: "hello", data: { token: this.token } })); });
      ws.on("message", (data) => {
        const s = data.toString();
        if (SIO) {
          if (s === "2") return ws.send("3");
          if (s[0] === "0") return ws.send("40" + JSON.stringify({ host: this.token }));
          if (s.startsWith("43")) { const m = /^43(\d+)/.exec(s); this.settle(Number(m[1]), true); return; }
          if (s.startsWith("42") && s.includes('"welcome"')) { this.ready = true; resolve(); }
          return;
        }
        const msg = JSON.parse(s);
        if (msg.type === "queue") { itemWatch.queue(msg.data); return; }
        if (msg.type === "welcome") { this.ready = true; resolve(); }
        else if (msg.type === "ack") this.settle(msg.data.id, true, msg);
        else if (msg.type === "error") { if (msg.data.id !== undefined) this.settle(msg.data.id, false, msg); else log("host error", s); }
      });
      ws.on("error", (e) => { if (!this.ready) reject(e); });
      ws.on("close", () => {
        this.ready = false;
        for (const f of this.waiters.values()) f(false);
        this.waiters.clear();
        if (this.wantOpen) setTimeout(() => this.open().catch(() => {}), 200 + Math.random() * 300);
      });
    });
  }

  settle(id, ok, msg) { const f = this.waiters.get(id); if (f) { this.waiters.delete(id); f(ok, msg); } }

  request(type, data) {
    // Any host action (Livewall protocol): resolves with its ack or error frame; never rejects.
    return new Promise((resolve) => {
      if (!this.ready) return resolve({ type: "error", data: { code: "not_connected" } });
      const id = this.nextId++;
      this.waiters.set(id, (_ok, msg) => resolve(msg ?? { type: "error", data: { code: "closed" } }));
      this.ws.send(JSON.stringify({ type, id, data }));
    });
  }

  announce(text) {
    // Resolves true on ack, false on error or close; never rejects.
    return new Promise((resolve) => {
      if (!this.ready) return resolve(false);
      const id = this.nextId++;
      this.waiters.set(id, resolve);
      if (SIO) this.ws.send(`42${id}` + JSON.stringify(["announce", { text }]));
      else this.ws.send(JSON.stringify({ type: "announce", id, data: { text } }));
    });
  }
}

// What the host's queue and the screen's wall show of the viewers' submitted items.
const TAG_RE = /^b(\d+\.\d+) ([\d.]+)$/;
const itemWatch = {
  seen: new Set(), hist: new Hist(), lastItem: 0, start: 0, perSecond: [],
  reset() { this.seen = new Set(); this.hist = new Hist(); this.start = now(); this.perSecond = []; },
  queue(data) {
    const t = now();
    for (const item of data.items ?? []) {
      const m = TAG_RE.exec(item.text ?? "");
      if (m === null) continue;
      if (this.seen.has(m[1])) { counters.host_dupes++; continue; } // a changed item is sent again
      this.seen.add(m[1]); this.lastItem = t;
      counters.host_items++; if (item.kind === "question") counters.host_questions++;
      this.hist.add(t - Number(m[2]));
      // The worst receipt latency of each second of the run, to see whether a delay builds up.
      const second = Math.floor((t - this.start) / 1000);
      this.perSecond[second] = Math.max(this.perSecond[second] ?? 0, Math.round(t - Number(m[2])));
    }
  },
  wall(s) {
    counters.screen_frames++;
    if (s.includes('"items"')) {
      const msg = JSON.parse(s);
      counters.screen_items += (msg.data.items ?? []).length;
      counters.screen_dropped += msg.data.dropped ?? 0;
    }
  },
};

function openScreen() {
  const t = cfg.targets[0];
  const ws = new RawWS(`${t.ws_base}/ws/screen/${cfg.room}`);
  ws.onopen = () => ws.send(JSON.stringify({ type: "hello", data: { key: cfg.screen_key } }));
  ws.onmessage = (buf, start, end) => { const s = utf8(buf, start, end); if (s.startsWith('{"type":"wall"')) itemWatch.wall(s); };
  ws.onerror = (e) => log("screen error", e.message);
  return ws;
}

async function hostToken() {
  const t = cfg.targets[0];
  const r = await postJson(`${t.api_base}/rooms/${cfg.room}/host-token`, { key: cfg.host_key });
  return r.token;
}

// --- the flooding client (the flood scenario, bench/flood.py) ----------------------------------------
// One viewer that, once told to, sends `ping` frames as fast as its socket takes them: it writes a
// chunk of frames whenever the socket has room (waiting for 'drain' when the server reads slowly or
// not at all), and after a close opens again at once (with the same token) and goes on. It counts
// the frames it got out, the pongs that came back and the close codes it was given.
const flood = {
  on: false, ws: null, token: null, sent: 0, pongs: 0, opens: 0, closes: {}, chunk: null, perChunk: 0,

  frames(n) {
    // n masked text frames `{"type":"ping"}` (a fixed mask key: the server unmasks whatever it is).
    const text = Buffer.from('{"type":"ping"}');
    const one = Buffer.alloc(6 + text.length);
    one[0] = 0x81; one[1] = 0x80 | text.length; one.writeUInt32BE(0x5a17c0de, 2);
    for (let i = 0; i < text.length; i++) one[6 + i] = text[i] ^ one[2 + (i & 3)];
    return Buffer.concat(Array.from({ length: n }, () => one));
  },

  open() {
    if (!this.on) return;
    const ws = this.ws = new RawWS(`${cfg.targets[0].ws_base}/ws/viewer/${cfg.room}`, { localAddress: "127.0.0.9" });
    this.opens++;
    ws.onopen = () => { ws.send(JSON.stringify({ type: "hello", data: { token: this.token } })); this.pump(ws); };
    ws.onmessage = (buf, start, end) => { if (utf8(buf, start, Math.min(end, start + 16)).startsWith('{"type":"pong"')) this.pongs++; };
    ws.onerror = () => {};
    ws.onclose = (code) => {
      this.closes[code] = (this.closes[code] ?? 0) + 1;
      if (this.ws === ws) { this.ws = null; setTimeout(() => this.open(), 50); }
    };
  },

  pump(ws) {
    // As fast as the socket takes it; the event loop still runs between chunks (reads, timers).
    while (this.on && ws.readyState === OPEN) {
      const more = ws.sendRaw(this.chunk);
      this.sent += this.perChunk;
      if (!more) { ws.ondrain(() => this.pump(ws)); return; }
      if (this.sent % (this.perChunk * 64) === 0) { setImmediate(() => this.pump(ws)); return; }
    }
  },
};

async function cmdFlood(c) {
  if (flood.token === null) {
    const r = await postJson(`${cfg.targets[0].api_base}/rooms/${cfg.room}/join`, { name: "flooder" });
    flood.token = r.token;
    flood.perChunk = 256; flood.chunk = flood.frames(flood.perChunk);
  }
  if (c.on && !flood.on) {
    Object.assign(flood, { on: true, sent: 0, pongs: 0, opens: 0, closes: {} });
    flood.open();
  } else if (!c.on && flood.on) {
    flood.on = false;
    const ws = flood.ws; flood.ws = null;
    if (ws) ws.terminate();
  }
  emit({ ev: "flood", on: flood.on, frames_sent: flood.sent, pongs: flood.pongs, opens: flood.opens, closes: flood.closes });
}

// --- commands ---------------------------------------------------------------------------------------
let goResolve = null;

async function cmdConnect() {
  const t0 = now();
  const n = cfg.viewers;
  const joinHist = new Hist();
  const connHist = new Hist();
  for (let i = 0; i < n; i++) viewers.push(new Viewer((cfg.offset ?? 0) + i));
  await pool(viewers, cfg.join_concurrency ?? 32, async (v) => {
    const s = now();
    const r = await postJson(`${v.t.api_base}/rooms/${cfg.room}/join`, { name: `bench-${v.idx}` });
    v.token = r.token; joinHist.add(now() - s);
  });
  const t1 = now();
  emit({ ev: "joined", viewers: n, join_s: (t1 - t0) / 1000, join_ms: pct(joinHist) });
  await new Promise((resolve) => { goResolve = resolve; });
  let failed = 0;
  await pool(viewers, cfg.connect_concurrency ?? 200, async (v) => {
    const s = now();
    const ok = await Promise.race([v.connectAndWelcome().then(() => true), sleep(30000).then(() => false)]);
    if (ok) connHist.add(now() - s); else failed++;
  });
  const t2 = now();
  if (cfg.host) {
    const token = await hostToken();
    host = [];
    for (let i = 0; i < (cfg.host_conns ?? 1); i++) { const h = new HostConn(i, token); await h.open(); host.push(h); }
    if (cfg.screen_key) openScreen();
  }
  emit({ ev: "connected", viewers: n, failed, join_s: (t1 - t0) / 1000, connect_s: (t2 - t1) / 1000,
         join_ms: pct(joinHist), connect_ms: pct(connHist) });
}

function pct(h) {
  const q = (p) => { if (!h.n) return null; let need = Math.ceil(h.n * p), acc = 0; for (let i = 0; i <= HMAX; i++) { acc += h.b[i]; if (acc >= need) return i / 10; } return h.max; };
  return { n: h.n, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: h.n ? Math.round(h.max * 10) / 10 : null };
}

function startChurn(perSec) {
  if (!perSec) return null;
  // Every 100 ms a random handful of viewers drop and come back (resuming where the protocol can).
  const perTick = viewers.length * perSec / 10;
  let carry = 0;
  return setInterval(() => {
    carry += perTick;
    while (carry >= 1) {
      carry--;
      const v = viewers[Math.floor(Math.random() * viewers.length)];
      if (!v.welcomed) continue;
      v.close();
      v.wantOpen = true;
      setTimeout(() => { if (v.wantOpen && v.ws === null) v.open(); }, Math.random() * 500);
    }
  }, 100);
}

function startComments(perSec, senders) {
  if (!perSec || !viewers.length) return null;
  // Round-robin over `senders` viewers, so each sends perSec/senders messages a second, evenly.
  const n = Math.max(1, Math.min(viewers.length, senders || viewers.length));
  const perTick = perSec / 20;
  let carry = 0, next = 0;
  return setInterval(() => {
    carry += perTick;
    while (carry >= 1) { carry--; viewers[next].comment(); next = (next + 1) % n; }
  }, 50);
}

let sentThisRun = 0;
// Set by a run's `track_indices`: viewers record which announcements they received, so that loss can
// be counted against exactly the ones the server acknowledged (a restart refuses some in flight).
let trackIndices = false;
let ackedIdx = [];

async function cmdRun(c) {
  runId = c.run_id; lat = new Hist(); rtt = new Hist(); counters = freshCounters(); sentThisRun = 0;
  trackIndices = !!c.track_indices; ackedIdx = [];
  running = true;
  emit({ ev: "running", run_id: runId }); // the orchestrator starts the host only after every viewer process
  const churn = startChurn(c.churn_per_sec ?? 0);
  const comments = startComments(c.comments_per_sec ?? 0, c.senders ?? 0);
  itemWatch.reset();
  const durMs = c.duration * 1000;
  const t0 = now();
  let acked = 0, refused = 0;
  if (cfg.host) {
    const pad = "x".repeat(Math.max(0, c.pad ?? 0));
    const text = (i) => JSON.stringify({ t: now(), r: runId, i, p: pad });
    if (c.blast) {
      // As fast as the server acknowledges: each host connection keeps `window` announces in flight.
      let i = 0;
      const loops = host.map(async (h) => {
        const inflight = new Set();
        while (now() - t0 < durMs) {
          while (inflight.size < (c.window ?? 8) && now() - t0 < durMs) {
            const p = h.announce(text(i++)).then((ok) => { ok ? acked++ : refused++; inflight.delete(p); });
            inflight.add(p);
          }
          await Promise.race(inflight);
        }
        await Promise.all(inflight);
      });
      await Promise.all(loops);
      sentThisRun = i;
    } else {
      const period = 1000 / c.rate;
      let skippedTicks = 0;
      const pending = [];
      for (let i = 0; now() - t0 < durMs; i++) {
        const due = t0 + i * period;
        const wait = due - now();
        if (wait > 0) await sleep(wait);
        const h = host[i % host.length];
        if (!h.ready) { skippedTicks++; continue; }
        const idx = sentThisRun++;
        pending.push(h.announce(text(idx)).then((ok) => {
          if (ok) { acked++; if (trackIndices) ackedIdx.push(idx); } else refused++;
        }));
      }
      await Promise.race([Promise.all(pending), sleep(30000)]);
      if (skippedTicks) log(`host not connected for ${skippedTicks} ticks`);
    }
  } else {
    await sleep(durMs);
  }
  if (churn) clearInterval(churn);
  if (comments) clearInterval(comments);
  running = false;
  emit({ ev: "published", sent: sentThisRun, acked, refused, publish_s: (now() - t0) / 1000, t0,
         ...(trackIndices ? { acked_idx: ackedIdx } : {}) });
}

async function cmdDrain(c) {
  // Wait until every viewer has the last announcement (or the timeout), then report.
  const expect = c.sent;
  const deadline = now() + (c.timeout ?? 15) * 1000;
  if (!cfg.host && counters.comments_sent) {
    // Every submitted item answered (ack or error), or the deadline: a saturated server answers late.
    const answered = () => counters.submit_acked + Object.values(counters.submit_errors).reduce((a, b) => a + b, 0);
    while (now() < deadline && answered() < counters.comments_sent) await sleep(100);
  }
  if (cfg.host && c.await_items) {
    // The queue ticks every 200 ms: wait until every acknowledged item was seen or nothing new came for 2 s.
    while (now() < deadline && itemWatch.seen.size < c.await_items && now() - itemWatch.lastItem < 2000) await sleep(100);
  }
  // With `acked_idx` (the indices the server acknowledged), a viewer's loss is exactly those it did not
  // receive; otherwise the count sent minus the count received.
  const acked = c.acked_idx ?? null;
  const missingOf = (v) => {
    if (v.run !== runId) return acked ? acked.length : expect;
    if (!acked) return Math.max(0, expect - v.got);
    let n = 0;
    for (const i of acked) if (v.seenIdx === null || !((v.seenIdx[i >> 3] ?? 0) & (1 << (i & 7)))) n++;
    return n;
  };
  for (;;) {
    let behind = 0;
    for (const v of viewers) if (!v.resync && v.skippedBase < 0 && missingOf(v) > 0) behind++;
    if (behind === 0 || now() > deadline) break;
    await sleep(50);
  }
  let tailLoss = 0, notOpen = 0;
  for (const v of viewers) {
    if (!v.welcomed) notOpen++;
    const missing = missingOf(v);
    // Peers have no resume: a viewer that reconnected during the run missed what was sent meanwhile.
    if (v.resync || v.skippedBase >= 0) counters.skipped += missing; else tailLoss += missing;
    v.skippedBase = -1;
  }
  emit({ ev: "drained", sent: expect, viewers: viewers.length, not_open: notOpen,
         loss: counters.lost + tailLoss, ...counters, lat: { n: lat.n, max: lat.max, sparse: lat.sparse() },
         rtt: { n: rtt.n, max: rtt.max, sparse: rtt.sparse() }, lat_pct: pct(lat), rtt_pct: pct(rtt),
         item: { n: itemWatch.hist.n, max: itemWatch.hist.max, sparse: itemWatch.hist.sparse() },
         item_max_per_s: Array.from(itemWatch.perSecond, (v) => v ?? 0) });
}

// Counts per 100 ms since the start of the rush: how fast claims went out and answers came back.
function tick(arr, ms) { const i = Math.max(0, Math.floor(ms / 100)); while (arr.length <= i) arr.push(0); arr[i]++; }

async function cmdClaim(c) {
  // Every connected viewer claims once at a uniformly drawn time in [start_at, start_at + spread_ms)
  // (wall clock, ms); then wait until every claim is answered (or `timeout` s after the last send).
  const msgId = `c${c.run_id}`;
  const r = claimRun = {
    start_at: c.start_at, hist: new Hist(), ok_hist: new Hist(), lag: new Hist(), outcomes: {}, codes: [],
    sent: 0, not_sent: 0, answered: 0, first_ok: 0, last_ok: 0, last_answer: 0, first_send: 0, last_send: 0,
    sends_per_100ms: [], answers_per_100ms: [],
  };
  const events0 = seqEvents, stock0 = stockEvents;
  let fired = 0;
  for (const v of viewers) {
    const at = c.start_at + Math.random() * c.spread_ms;
    setTimeout(() => {
      const t = now();
      r.lag.add(t - at); // how late this process's timer fired (a busy client delays its sends)
      if (!r.first_send) r.first_send = t;
      r.last_send = t;
      fired++;
      v.sendClaim(c.discount_id, msgId);
    }, Math.max(0, at - now()));
  }
  while (fired < viewers.length) await sleep(20);
  const deadline = now() + (c.timeout ?? 60) * 1000;
  while (r.answered < r.sent && now() < deadline) await sleep(10);
  for (const v of viewers) v.claim = null; // answers arriving after the report are not counted
  emit({ ev: "claimed", viewers: viewers.length, sent: r.sent, not_sent: r.not_sent, answered: r.answered,
         unanswered: r.sent - r.answered, outcomes: r.outcomes, codes: r.codes,
         lat: { n: r.hist.n, max: r.hist.max, sparse: r.hist.sparse() }, lat_pct: pct(r.hist),
         ok_at: { n: r.ok_hist.n, max: r.ok_hist.max, sparse: r.ok_hist.sparse() },
         send_lag_ms: pct(r.lag), first_send: r.first_send, last_send: r.last_send, first_ok: r.first_ok,
         last_ok: r.last_ok, last_answer: r.last_answer, events: seqEvents - events0, stock_events: stockEvents - stock0,
         sends_per_100ms: r.sends_per_100ms, answers_per_100ms: r.answers_per_100ms });
  claimRun = null;
}

async function cmdHost(c) {
  if (!host || !host.length) { emit({ ev: "host_reply", type: "error", data: { code: "no_host" } }); return; }
  const msg = await host[0].request(c.type, c.data ?? {});
  emit({ ev: "host_reply", type: msg.type, data: msg.data });
}

async function cmdAwaitResumed(c) {
  // After a server restart: how long until every viewer is welcomed again, and how (resumed or not).
  const since = c.since;
  const deadline = now() + (c.timeout ?? 30) * 1000;
  for (;;) {
    let pending = 0;
    for (const v of viewers) if (!v.welcomed || v.welcomeAt < since) pending++;
    if (pending === 0 || now() > deadline) break;
    await sleep(50);
  }
  const h = new Hist();
  const perHalfSec = []; // welcomes in each 500 ms since the kill
  let notBack = 0;
  for (const v of viewers) {
    if (v.welcomed && v.welcomeAt >= since) { h.add(v.welcomeAt - since); tick(perHalfSec, (v.welcomeAt - since) / 5); }
    else notBack++;
  }
  emit({ ev: "resumed", viewers: viewers.length, back: h.n, not_back: notBack, all_back_ms: h.n ? h.max : null,
         back_per_half_s: perHalfSec,
         back_ms: pct(h), resumed: counters.resumed, resume_failed: counters.resume_failed, gaps: counters.gaps,
         closes: counters.closes });
}

const rl = createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on("line", (line) => {
  if (!line.trim()) return;
  const c = JSON.parse(line);
  if (c.cmd === "await_resumed") { cmdAwaitResumed(c); return; } // runs beside a running "run"
  if (c.cmd === "open") { if (goResolve) { const f = goResolve; goResolve = null; f(); } return; }
  chain = chain.then(async () => {
    try {
      if (c.cmd === "connect") await cmdConnect();
      else if (c.cmd === "run") await cmdRun(c);
      else if (c.cmd === "drain") await cmdDrain(c);
      else if (c.cmd === "claim") await cmdClaim(c);
      else if (c.cmd === "flood") await cmdFlood(c);
      else if (c.cmd === "host") await cmdHost(c);
      else if (c.cmd === "reset") { counters = freshCounters(); emit({ ev: "ok" }); }
      else if (c.cmd === "await_resumed") await cmdAwaitResumed(c);
      else if (c.cmd === "now") emit({ ev: "now", t: now() });
      else if (c.cmd === "quit") {
        for (const v of viewers) v.close();
        if (host) for (const h of host) { h.wantOpen = false; h.ws && h.ws.terminate(); }
        emit({ ev: "bye" });
        setTimeout(() => process.exit(0), 100);
      } else emit({ ev: "error", error: `unknown command ${c.cmd}` });
    } catch (e) {
      emit({ ev: "error", error: String(e && e.stack || e) });
    }
  });
});
rl.on("close", () => process.exit(0));
process.on("uncaughtException", (e) => { log("uncaught", e && e.stack || e); });
