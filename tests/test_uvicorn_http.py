"""HTTP deadlines (server/uvicorn_http.py), over real uvicorn with a raw socket: a client that sends
half a request head, nothing at all, too long a head, or half a body is disconnected in time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.frames import Frame, Opcode

from tests.conftest import make_settings
from tests.helpers import Client, Running, create_room, join, serve

HEAD_SECS = 0.3
BODY_SECS = 0.5
# How late the server may be (two shared cores, other suites running): the deadline itself is checked.
SLACK_SECS = 3.0


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    settings = make_settings(
        tmp_path,
        http_head_timeout_secs=HEAD_SECS,
        http_body_timeout_secs=BODY_SECS,
        http_max_head_bytes=8 * 1024,
        ws_ping_secs=2 * HEAD_SECS,
    )
    async with serve(settings) as r:
        yield r


async def open_raw(running: Running) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    port = int(running.base.rsplit(":", 1)[1])
    return await asyncio.open_connection("127.0.0.1", port)


async def until_closed(reader: asyncio.StreamReader, within: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    data = await asyncio.wait_for(reader.read(), within)  # read() returns at EOF
    return data, loop.time() - start


async def test_a_half_sent_head_is_closed_with_408(running: Running) -> None:
    """The request line and one header, then silence: 408 and the connection closed, in time."""
    reader, writer = await open_raw(running)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    data, took = await until_closed(reader, HEAD_SECS + SLACK_SECS)
    assert data.startswith(b"HTTP/1.1 408 ")
    assert took >= HEAD_SECS * 0.9
    writer.close()


async def test_a_silent_connection_is_closed(running: Running) -> None:
    """A connection that never sends a byte is closed after the head deadline too."""
    reader, writer = await open_raw(running)
    data, took = await until_closed(reader, HEAD_SECS + SLACK_SECS)
    assert data.startswith(b"HTTP/1.1 408 ")
    writer.close()


async def test_a_trickled_head_does_not_reset_the_deadline(running: Running) -> None:
    """Bytes of the same head arriving now and then do not extend its deadline."""
    reader, writer = await open_raw(running)
    writer.write(b"GET /healthz HTTP/1.1\r\n")
    await writer.drain()
    writer.write(b"X-Slow: 1\r\n")
    data, took = await until_closed(reader, HEAD_SECS + SLACK_SECS)
    assert data.startswith(b"HTTP/1.1 408 ")
    writer.close()


async def test_a_head_too_large_is_refused_431(running: Running) -> None:
    """A head still incomplete past the size cap (8 KiB here) gets 431 and the connection closed."""
    reader, writer = await open_raw(running)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    for i in range(200):  # ~10 KiB of headers, never ended
        writer.write(b"X-Pad-%03d: %s\r\n" % (i, b"p" * 40))
    data, _took = await until_closed(reader, SLACK_SECS)
    assert data.startswith(b"HTTP/1.1 431 ")
    writer.close()


async def test_a_half_sent_body_is_closed_with_408(running: Running) -> None:
    """A POST whose body stops halfway: 408 and closed once the body deadline passes."""
    room = await create_room(running)
    reader, writer = await open_raw(running)
    body = json.dumps({"name": "slow"}).encode()
    writer.write(
        b"POST /api/rooms/%s/join HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % (room["id"].encode(), len(body)) + body[:5]
    )
    data, took = await until_closed(reader, BODY_SECS + SLACK_SECS)
    assert data.startswith(b"HTTP/1.1 408 ")
    assert took >= BODY_SECS * 0.9
    writer.close()


async def test_requests_in_time_are_served_and_kept_alive(running: Running) -> None:
    """Two whole requests on one connection are both answered (the deadlines are per request)."""
    reader, writer = await open_raw(running)
    for _ in range(2):
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), SLACK_SECS)
        assert head.startswith(b"HTTP/1.1 200 ")
        length = int(
            next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1]
        )
        await reader.readexactly(length)
    writer.close()


async def test_a_websocket_outlives_the_head_deadline(running: Running) -> None:
    """An upgraded connection is not cut by the HTTP deadlines: the server's own keepalive ping, sent
    twice the head deadline after the handshake, arrives on a connection that still answers."""
    room = await create_room(running)
    viewer = await join(running.base, room["id"], "stays")
    client = await Client.connect(running.ws, "viewer", room["id"], {"token": viewer["token"]})
    pinged = asyncio.Event()
    protocol = client.ws.protocol  # websockets' sans-I/O side handles each received frame here
    recv_frame = protocol.recv_frame

    def spy(frame: Frame) -> None:
        if frame.opcode is Opcode.PING:
            pinged.set()
        recv_frame(frame)

    protocol.recv_frame = spy  # type: ignore[method-assign]
    await asyncio.wait_for(pinged.wait(), 2 * HEAD_SECS + SLACK_SECS)
    await client.ws.send(json.dumps({"type": "ping", "data": {"t": 9}}))
    assert (await client.recv_type("pong", SLACK_SECS))["data"]["t"] == 9
    await client.close()
