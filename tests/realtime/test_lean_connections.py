"""An open connection keeps only what it needs: not the handshake's request and headers (in uvicorn's
protocol, in the websockets parser, in the scope), nor the hello and welcome it was opened with."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from websockets.protocol import Protocol

from server.realtime.uvicorn_ws import DIRECT_EXTENSION
from tests.conftest import make_settings
from tests.helpers import Client, create_room, join, serve


def _frames(coro: Any) -> Iterator[FrameType]:
    """The frames of a task's chain of awaited coroutines, outermost first."""
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            yield frame
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)


async def test_an_open_connection_drops_the_handshake_and_the_welcome(tmp_path: Path) -> None:
    async with serve(make_settings(tmp_path)) as running:
        services = running.app.state.services
        room = await create_room(running)
        viewer = await join(running.base, room["id"], "lean")
        client = await Client.connect(running.ws, "viewer", room["id"], {"token": viewer["token"]})
        (conn,) = services.hub.connections(room["id"], "viewer")
        scope = conn.websocket.scope
        proto = scope["extensions"][DIRECT_EXTENSION]

        assert proto.request is None and proto.response is None
        parser = proto.conn.parser
        assert parser.gi_code is Protocol.parse.__code__  # the bare frame parser, not the handshake's
        assert "request" not in parser.gi_frame.f_locals
        assert scope["headers"] == []
        assert not {"_headers", "_cookies"} & set(vars(conn.websocket))

        held: set[str] = set()
        for task in asyncio.all_tasks():
            for frame in _frames(task.get_coro()):
                held |= {"hello", "welcome", "greeted"} & set(frame.f_locals)
                if frame.f_locals.get("resume") is not None:
                    held.add("resume")
        assert not held, f"a connection's task still holds {held}"

        # ...and it still reads and answers frames.
        await client.ws.send('{"type": "ping", "data": {"t": 1}}')
        assert (await client.recv_type("pong"))["data"]["t"] == 1
        assert (await client.request("item.submit", {"text": "still here"}))["type"] == "ack"
        await client.close()


def test_the_parser_is_swapped_only_between_frames() -> None:
    """A client that (against RFC 6455) sent part of a frame before the 101: the handshake parser is
    inside that frame with nothing buffered, and must be kept."""
    from websockets.server import ServerProtocol

    from server.realtime.uvicorn_ws import _between_frames

    proto = ServerProtocol()
    proto.receive_data(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert _between_frames(proto)
    proto.receive_data(b"\x81\x85")  # a masked text frame's first two bytes: taken, the mask awaited
    assert not proto.reader.buffer and not _between_frames(proto)
