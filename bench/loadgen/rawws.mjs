// A minimal WebSocket client (RFC 6455) over node:net, for the load generator's viewers.
//
// Why not `ws`: each received message went through the socket's Readable stream, the receiver's
// Writable stream, an EventEmitter and a Buffer per read, 10-11 us of CPU per message (6 us of it in
// user space), taken from the two cores the server under test runs on. Here every socket reads into
// one shared buffer (net's `onread`: no stream, no Buffer per read), frames are parsed in place and
// the callback gets the payload's bounds in that buffer: about 7 us a message, 3 us in user space
// (see bench/README.md, "Load generator").
//
// Only what the viewers need: ws:// URLs, no extensions (no permessage-deflate), text frames out
// (masked, as a client must), text/binary/continuation/close/ping/pong in. Plain callback properties
// instead of events: onopen(), onmessage(buf, start, end), onerror(err), onclose(code). onmessage gets
// the payload as buf[start, end), valid only during the call (the buffer is reused): decode it with
// utf8() below, or read the bytes.

import net from "node:net";
import { createHash, randomBytes } from "node:crypto";

export const CONNECTING = 0, OPEN = 1, CLOSING = 2, CLOSED = 3;

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_PAYLOAD = 64 * 1024 * 1024; // far above anything the servers send; a bigger length is an error
const CLOSE_TIMEOUT_MS = 30000; // as ws: after our close frame, wait this long for the server to hang up
const ignore = () => {};

// The one read buffer of every socket: net hands each read to its callback before the next read,
// so only bytes kept across reads (a frame split over two reads) need memory of their own.
const READ_BUF = Buffer.allocUnsafe(64 * 1024);

// A string straight from a payload's bytes (no Buffer in between): utf8Slice and latin1Slice are
// what buf.toString(encoding, start, end) ends in, without its argument checks.
export const utf8 = typeof READ_BUF.utf8Slice === "function"
  ? (buf, start, end) => buf.utf8Slice(start, end)
  : (buf, start, end) => buf.toString("utf8", start, end);
export const latin1 = typeof READ_BUF.latin1Slice === "function"
  ? (buf, start, end) => buf.latin1Slice(start, end)
  : (buf, start, end) => buf.toString("latin1", start, end);

export class RawWS {
  // url: ws://host[:port]/path?query; opts: { localAddress, handshakeTimeout (ms, default 20000) }.
  constructor(url, { localAddress, handshakeTimeout = 20000 } = {}) {
    this.readyState = CONNECTING;
    this.onopen = null; this.onmessage = ignore; this.onerror = null; this.onclose = null;
    this._code = 1006; // reported on close unless the server's close frame says otherwise
    this._held = null; this._heldLen = 0; this._need = 0; // bytes kept across reads, see _keep
    this._frags = null; this._fragsLen = 0; // a fragmented message's payloads so far (copies)
    this._closeTimer = null;

    const u = new URL(url);
    if (u.protocol !== "ws:") throw new Error(`RawWS: only ws:// URLs (${url})`);
    const host = u.hostname.replace(/^\[(.*)\]$/, "$1"); // [::1] -> ::1
    const port = +(u.port || 80);
    const key = randomBytes(16).toString("base64");
    this._accept = createHash("sha1").update(key + GUID).digest("base64");

    const sock = this._sock = net.connect({
      host, port, localAddress,
      onread: { buffer: READ_BUF, callback: (n) => { this._onRead(n); } },
    });
    sock.setNoDelay(true);
    // Written at once: net queues it until the connection is up.
    sock.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\n` +
               `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    this._handshakeTimer = setTimeout(() => {
      if (this.readyState === CONNECTING) this._abort(new Error("Opening handshake has timed out"));
    }, handshakeTimeout);
    // As ws: an error before the handshake is reported; one after it (a reset) only closes (1006).
    sock.on("error", (err) => { if (this.readyState === CONNECTING) this._abort(err); });
    sock.on("close", () => {
      clearTimeout(this._handshakeTimer); clearTimeout(this._closeTimer);
      this.readyState = CLOSED; this._held = null; this._frags = null;
      if (this.onclose !== null) this.onclose(this._code);
    });
  }

  // One text frame. Ignored unless open (the viewers only send once open).
  send(str) {
    if (this.readyState !== OPEN) return;
    const n = Buffer.byteLength(str, "utf8");
    const f = this._frame(0x81, n);
    f.write(str, f.length - n, n, "utf8");
    this._mask(f, n);
    this._sock.write(f);
  }

  // Bytes already framed (and masked) by the caller, as they are: the flooding client writes many
  // frames at once. Returns false when the socket's buffer is full; ondrain(cb) then calls cb once
  // it has room again (the server reads it).
  sendRaw(buf) {
    if (this.readyState !== OPEN) return false;
    return this._sock.write(buf);
  }

  ondrain(cb) { this._sock.once("drain", cb); }

  // Drop the connection at once, without a close frame (as ws.terminate()); close fires with 1006.
  terminate() {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSING;
    this._sock.destroy();
  }

  // --- internals ----------------------------------------------------------------------------------

  _abort(err) {
    // Handshake failure, timeout, connect error or protocol error: report it and drop the socket.
    if (this.readyState >= CLOSING) return; // already going: one error at most
    this.readyState = CLOSING;
    if (this.onerror !== null) this.onerror(err);
    this._sock.destroy();
  }

  // A client frame with a 4-byte mask key and room for an n-byte payload after it.
  _frame(b0, n) {
    const h = n < 126 ? 6 : n < 65536 ? 8 : 14;
    const f = Buffer.allocUnsafe(h + n);
    f[0] = b0;
    if (n < 126) f[1] = 0x80 | n;
    else if (n < 65536) { f[1] = 0x80 | 126; f[2] = n >> 8; f[3] = n & 255; }
    else { f[1] = 0x80 | 127; f.writeUInt32BE(Math.floor(n / 0x100000000), 2); f.writeUInt32BE(n >>> 0, 6); }
    return f;
  }

  // Random mask key (RFC 6455 5.3); the payload is the last n bytes of f. Clients send rarely.
  _mask(f, n) {
    const k = f.length - n - 4;
    f.writeUInt32BE((Math.random() * 0x100000000) >>> 0, k);
    for (let i = 0; i < n; i++) f[k + 4 + i] ^= f[k + (i & 3)];
  }

  _control(b0, buf, start, end) {
    const n = end - start;
    const f = this._frame(b0, n);
    buf.copy(f, f.length - n, start, end);
    this._mask(f, n);
    this._sock.write(f);
  }

  _onRead(n) {
    if (this._held === null) { this._parse(READ_BUF, 0, n); return; }
    // A frame (or the handshake) straddles reads: gather until it is complete.
    if (this._heldLen + n > this._held.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this._held.length, this._heldLen + n));
      this._held.copy(grown, 0, 0, this._heldLen);
      this._held = grown;
    }
    READ_BUF.copy(this._held, this._heldLen, 0, n);
    this._heldLen += n;
    if (this._heldLen < this._need) return;
    const buf = this._held, len = this._heldLen;
    this._held = null; this._heldLen = 0; this._need = 0;
    this._parse(buf, 0, len);
  }

  // Keep buf[start, end) for the next read (copied: READ_BUF is reused). need: the length at which
  // parsing can go on (the whole frame once its header is in; 0 when not known yet).
  _keep(buf, start, end, need) {
    const have = end - start;
    this._held = Buffer.allocUnsafe(Math.max(need, 2 * have, 1024));
    buf.copy(this._held, 0, start, end);
    this._heldLen = have; this._need = need;
  }

  _parse(buf, p, end) {
    if (this.readyState === CONNECTING) {
      p = this._handshake(buf, p, end);
      if (p < 0) return;
    }
    while (p < end && this.readyState === OPEN) {
      const avail = end - p;
      if (avail < 2) break;
      const b0 = buf[p], b1 = buf[p + 1];
      let len = b1 & 0x7f, h = 2;
      if (len === 126) {
        if (avail < 4) break;
        len = (buf[p + 2] << 8) | buf[p + 3]; h = 4;
      } else if (len === 127) {
        if (avail < 10) break;
        len = buf.readUInt32BE(p + 2) * 0x100000000 + buf.readUInt32BE(p + 6); h = 10;
      }
      if ((b1 & 0x80) || (b0 & 0x70)) return this._fail("masked server frame or RSV bit set");
      if (len > MAX_PAYLOAD) return this._fail(`frame of ${len} bytes`);
      if (avail < h + len) { this._keep(buf, p, end, h + len); return; }
      p += h;
      this._onFrame(b0, buf, p, p + len);
      p += len;
    }
    if (p < end && this.readyState === OPEN) this._keep(buf, p, end, 0);
  }

  // The server's 101 answer; returns where frames start, or -1 (incomplete, kept; or failed).
  _handshake(buf, p, end) {
    const at = buf.subarray(p, end).indexOf("\r\n\r\n");
    if (at < 0) {
      if (end - p > 16384) this._abort(new Error("handshake response too long"));
      else this._keep(buf, p, end, 0);
      return -1;
    }
    const head = buf.toString("latin1", p, p + at);
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
    if (status === null || status[1] !== "101") {
      this._abort(new Error(`Unexpected server response: ${status ? status[1] : head.slice(0, 40)}`));
      return -1;
    }
    const accept = /\r\nsec-websocket-accept:[ \t]*([^\r]*)/i.exec(head);
    if (accept === null || accept[1].trim() !== this._accept) {
      this._abort(new Error("Invalid Sec-WebSocket-Accept header"));
      return -1;
    }
    clearTimeout(this._handshakeTimer);
    this.readyState = OPEN;
    if (this.onopen !== null) this.onopen();
    return p + at + 4; // bytes after the header block are already frames
  }

  _onFrame(b0, buf, start, end) {
    const op = b0 & 0x0f, fin = b0 & 0x80;
    if (op === 1 || op === 2) {
      if (this._frags !== null) return this._fail("new message inside a fragmented one");
      if (fin) { this.onmessage(buf, start, end); return; }
      this._frags = [Buffer.from(buf.subarray(start, end))]; this._fragsLen = end - start;
    } else if (op === 0) {
      if (this._frags === null) return this._fail("continuation frame without a message");
      this._frags.push(Buffer.from(buf.subarray(start, end))); this._fragsLen += end - start;
      if (this._fragsLen > MAX_PAYLOAD) return this._fail("fragmented message too big");
      if (fin) {
        const m = Buffer.concat(this._frags, this._fragsLen);
        this._frags = null;
        this.onmessage(m, 0, m.length);
      }
    } else if (op >= 8 && (!fin || end - start > 125)) {
      this._fail("fragmented or long control frame");
    } else if (op === 8) {
      // Echo the code (none if the server sent none), end our side; close fires once the socket is.
      this._code = end - start >= 2 ? (buf[start] << 8) | buf[start + 1] : 1005;
      this.readyState = CLOSING;
      this._control(0x88, buf, start, Math.min(end, start + 2));
      this._sock.end();
      this._closeTimer = setTimeout(() => this._sock.destroy(), CLOSE_TIMEOUT_MS);
    } else if (op === 9) {
      this._control(0x8a, buf, start, end); // pong with the ping's payload
    } else if (op !== 10) {
      this._fail(`unknown opcode ${op}`);
    }
  }

  // A protocol error (as ws: error, then close with 1006).
  _fail(why) { this._abort(new Error(`RawWS: ${why}`)); }
}
