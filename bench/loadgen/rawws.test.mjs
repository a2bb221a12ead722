// Tests of the viewers' WebSocket client against a hand-made server that writes exact bytes
// (frames split across reads, every length encoding, fragments, ping, close). Run: npm test
// (node --test) in bench/loadgen.

import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { createHash } from "node:crypto";
import { RawWS, utf8 } from "./rawws.mjs";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// An unmasked server frame.
function frame(op, payload, fin = true) {
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const n = p.length;
  const h = n < 126 ? Buffer.from([0, n]) : n < 65536 ? Buffer.from([0, 126, n >> 8, n & 255]) : Buffer.alloc(10);
  if (n >= 65536) { h[1] = 127; h.writeUInt32BE(Math.floor(n / 2 ** 32), 2); h.writeUInt32BE(n >>> 0, 6); }
  h[0] = (fin ? 0x80 : 0) | op;
  return Buffer.concat([h, p]);
}

// The client's frames as the server reads them (unmasked), checking the mask bit is set.
function clientFrames(buf) {
  const out = [];
  let p = 0;
  while (p + 2 <= buf.length) {
    let n = buf[p + 1] & 0x7f, h = 2;
    if (n === 126) { n = buf.readUInt16BE(p + 2); h = 4; } else if (n === 127) { n = Number(buf.readBigUInt64BE(p + 2)); h = 10; }
    assert.ok(buf[p + 1] & 0x80, "client frames are masked");
    if (p + h + 4 + n > buf.length) break;
    const mask = buf.subarray(p + h, p + h + 4);
    const data = Buffer.from(buf.subarray(p + h + 4, p + h + 4 + n));
    for (let i = 0; i < n; i++) data[i] ^= mask[i & 3];
    out.push({ op: buf[p] & 0x0f, data });
    p += h + 4 + n;
  }
  return out;
}

// A server that answers the handshake with `respond(key)` (default: a proper 101) followed by
// `after`, then hands the socket to `onConn(sock, received)`; received() is what the client sent.
async function server({ respond, after = Buffer.alloc(0), onConn = () => {} } = {}) {
  const socks = new Set();
  const srv = net.createServer((sock) => {
    socks.add(sock);
    let head = Buffer.alloc(0), upgraded = false, rest = Buffer.alloc(0);
    sock.on("data", (d) => {
      if (upgraded) { rest = Buffer.concat([rest, d]); return; }
      head = Buffer.concat([head, d]);
      const i = head.indexOf("\r\n\r\n");
      if (i < 0) return;
      upgraded = true;
      const req = head.toString("latin1", 0, i);
      const key = /sec-websocket-key: *(\S+)/i.exec(req)[1];
      const accept = createHash("sha1").update(key + GUID).digest("base64");
      const res = respond ? respond(key, req) : `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`;
      sock.write(Buffer.concat([Buffer.from(res, "latin1"), after]));
      onConn(sock, () => clientFrames(rest), req);
    });
    sock.on("error", () => {});
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  // close() also drops the open connections, so that the test process can exit.
  return { url: `ws://127.0.0.1:${srv.address().port}/ws/viewer/r?x=1`, close: () => { srv.close(); for (const c of socks) c.destroy(); } };
}

// A client that records everything it sees.
function client(url, opts) {
  const ws = new RawWS(url, opts);
  const seen = { open: 0, messages: [], errors: [], closes: [] };
  ws.onopen = () => { seen.open++; };
  ws.onmessage = (buf, start, end) => { seen.messages.push(utf8(buf, start, end)); };
  ws.onerror = (e) => { seen.errors.push(e.message); };
  ws.onclose = (code) => { seen.closes.push(code); };
  return { ws, seen };
}

async function until(f, ms = 3000) {
  const end = Date.now() + ms;
  while (!f()) { if (Date.now() > end) throw new Error("timed out"); await sleep(5); }
}

test("frames in the handshake's read, every length encoding, UTF-8", async () => {
  const big = "x".repeat(70000), mid = "é".repeat(200);
  const s = await server({ after: Buffer.concat([frame(1, "first"), frame(1, mid), frame(2, big), frame(1, "漢字")]) });
  const { seen } = client(s.url, { localAddress: "127.0.0.2" });
  await until(() => seen.messages.length === 4);
  assert.deepEqual(seen.messages, ["first", mid, big, "漢字"]);
  assert.equal(seen.open, 1);
  s.close();
});

test("handshake and frames split into single bytes", async () => {
  const frames = Buffer.concat([frame(1, "a".repeat(300)), frame(1, "b"), frame(1, "c".repeat(70000))]);
  const s = await server({
    respond: () => "",
    onConn: async (sock, _r, req) => {
      const key = /sec-websocket-key: *(\S+)/i.exec(req)[1];
      const accept = createHash("sha1").update(key + GUID).digest("base64");
      const all = Buffer.concat([Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nsec-websocket-accept:${accept}\r\n\r\n`), frames]);
      for (let i = 0; i < all.length;) {
        const n = i < 400 ? 1 : 7000; // byte by byte through the first frames, then in pieces
        sock.write(all.subarray(i, i + n)); i += n;
        await sleep(1);
      }
    },
  });
  const { seen } = client(s.url);
  await until(() => seen.messages.length === 3, 20000);
  assert.deepEqual(seen.messages, ["a".repeat(300), "b", "c".repeat(70000)]);
  s.close();
});

test("fragmented message with a ping in between; pong echoes the payload", async () => {
  let received;
  const s = await server({
    after: Buffer.concat([frame(1, "he", false), frame(9, "pp"), frame(0, "ll", false), frame(0, "o"), frame(10, "x"), frame(1, "next")]),
    onConn: (_sock, r) => { received = r; },
  });
  const { seen } = client(s.url);
  await until(() => seen.messages.length === 2);
  assert.deepEqual(seen.messages, ["hello", "next"]);
  await until(() => received().length === 1);
  assert.deepEqual(received().map((f) => [f.op, f.data.toString()]), [[10, "pp"]]);
  s.close();
});

test("send masks text frames of every length", async () => {
  let received;
  const s = await server({ onConn: (_sock, r) => { received = r; } });
  const { ws, seen } = client(s.url);
  ws.onopen = () => { seen.open++; for (const m of ["hi", "ü".repeat(100), "z".repeat(70000)]) ws.send(m); };
  await until(() => received && received().length === 3);
  assert.deepEqual(received().map((f) => [f.op, f.data.toString()]), [[1, "hi"], [1, "ü".repeat(100)], [1, "z".repeat(70000)]]);
  s.close();
});

test("close frame: echoed, close fires once with its code", async () => {
  let received;
  const s = await server({
    after: Buffer.concat([frame(1, "bye"), frame(8, Buffer.from([0x0f, 0xa1, 0x61])), frame(1, "never")]),
    onConn: (sock, r) => { received = r; sock.on("end", () => sock.end()); },
  });
  const { seen } = client(s.url);
  await until(() => seen.closes.length === 1);
  await sleep(50);
  assert.deepEqual(seen.messages, ["bye"]);
  assert.deepEqual(seen.closes, [4001]);
  assert.deepEqual(received().map((f) => [f.op, [...f.data]]), [[8, [0x0f, 0xa1]]]);
  assert.deepEqual(seen.errors, []);
  s.close();
});

test("socket ended without a close frame, terminate, refused: 1006", async () => {
  const s = await server({ after: frame(1, "m"), onConn: (sock) => setTimeout(() => sock.end(), 20) });
  const a = client(s.url);
  await until(() => a.seen.closes.length === 1);
  assert.deepEqual(a.seen.closes, [1006]);
  assert.deepEqual(a.seen.messages, ["m"]);

  const s2 = await server();
  const b = client(s2.url);
  await until(() => b.seen.open === 1);
  b.ws.terminate(); b.ws.terminate();
  await until(() => b.seen.closes.length === 1);
  await sleep(20);
  assert.deepEqual(b.seen.closes, [1006]);
  assert.deepEqual(b.seen.errors, []);

  const port = s2.url.split(":")[2].split("/")[0];
  s.close(); s2.close();
  await sleep(20);
  const c = client(`ws://127.0.0.1:${port}/`);
  await until(() => c.seen.closes.length === 1);
  assert.equal(c.seen.errors.length, 1);
  assert.deepEqual(c.seen.closes, [1006]);
});

test("handshake refused, bad accept, timeout: error then close 1006", async () => {
  for (const respond of [() => "HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n",
                         () => "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: nope\r\n\r\n",
                         () => ""]) {
    const s = await server({ respond });
    const { seen } = client(s.url, { handshakeTimeout: 200 });
    await until(() => seen.closes.length === 1);
    assert.equal(seen.open, 0);
    assert.equal(seen.errors.length, 1, seen.errors.join());
    assert.deepEqual(seen.closes, [1006]);
    s.close();
  }
});

test("protocol errors: masked server frame, unknown opcode", async () => {
  for (const bad of [Buffer.from([0x81, 0x81, 0, 0, 0, 0, 0x41]), frame(3, "?")]) {
    const s = await server({ after: Buffer.concat([frame(1, "ok"), bad, frame(1, "after")]) });
    const { seen } = client(s.url);
    await until(() => seen.closes.length === 1);
    assert.deepEqual(seen.messages, ["ok"]);
    assert.equal(seen.errors.length, 1);
    assert.deepEqual(seen.closes, [1006]);
    s.close();
  }
});
