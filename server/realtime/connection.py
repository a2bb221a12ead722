"""One client connection as the hub sees it: who it is, where it stands in the stream, how to write."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from typing import Any

from starlette.websockets import WebSocket, WebSocketState

from server.auth import Principal
from server.realtime.protocol import Close

log = logging.getLogger("livewall.realtime")


def frame(envelope: bytes) -> bytes:
    """One unmasked WebSocket text frame holding ``envelope`` (valid for any recipient).

    The header is built here rather than by ``websockets.frames.Frame.serialize`` (~1 us a frame,
    7x this: checks and objects): a resume storm frames ~100 missed events for each of thousands
    of phones. RFC 6455 5.2: FIN + text opcode, then the length in 7 bits, or 126 + 16 bits, or
    127 + 64 bits."""
    n = len(envelope)
    if n < 126:
        return bytes((0x81, n)) + envelope
    if n < 65536:
        return _HEADER16.pack(0x81, 126, n) + envelope
    return _HEADER64.pack(0x81, 127, n) + envelope


_HEADER16 = struct.Struct("!BBH")
_HEADER64 = struct.Struct("!BBQ")


class Connection:
    """A client connection. ``write_frames`` never awaits: the hub calls it for every recipient."""

    __slots__ = (
        "_close_task",
        "_fallback_queue",
        "_fallback_task",
        "_proto",
        "audience",
        "buffer_limit",
        "close_code",
        "closed",
        "last_seq",
        "on_slow",
        "pending",
        "principal",
        "room_id",
        "websocket",
    )

    def __init__(self, websocket: WebSocket, principal: Principal, *, buffer_limit: int) -> None:
        self.websocket = websocket
        self.principal = principal
        self.room_id = principal.room_id
        self.audience = principal.role.value
        self.buffer_limit = buffer_limit
        self.last_seq = 0
        # While the welcome is being prepared, live events wait here: list of (seq, envelope).
        self.pending: list[tuple[int, bytes]] | None = []
        self.closed = False
        self.close_code: int | None = None
        self.on_slow: Any = None
        self._proto: Any = websocket.scope.get("extensions", {}).get("livewall.direct")
        self._close_task: asyncio.Task[None] | None = None
        self._fallback_queue: asyncio.Queue[bytes] | None = None
        self._fallback_task: asyncio.Task[None] | None = None
        if self._proto is None:
            self._fallback_queue = asyncio.Queue(maxsize=max(16, buffer_limit // 256))
            self._fallback_task = asyncio.create_task(self._fallback_writer())

    @property
    def direct(self) -> bool:
        return self._proto is not None

    @property
    def metered(self) -> bool:
        """Inbound limits are enforced on this connection's raw frames, before they are parsed."""
        return self._proto is not None and bool(self._proto.lw_metered)

    def write_frames(self, framed: bytes, envelopes: list[bytes]) -> None:
        """Send events: ``framed`` is every envelope already framed, for the direct path."""
        if self.closed:
            return
        proto = self._proto
        if proto is not None:
            unsent = proto.lw_write(framed)
            if unsent > self.buffer_limit:
                self.close(Close.SLOW_CONSUMER, "slow consumer")
                if self.on_slow is not None:
                    self.on_slow()
            return
        queue = self._fallback_queue
        assert queue is not None
        for envelope in envelopes:
            try:
                queue.put_nowait(envelope)
            except asyncio.QueueFull:
                self.close(Close.SLOW_CONSUMER, "slow consumer")
                if self.on_slow is not None:
                    self.on_slow()
                return

    def send(self, envelope: bytes) -> None:
        """Send one frame outside the event stream (welcome, ack, error, pong)."""
        self.write_frames(frame(envelope) if self._proto is not None else b"", [envelope])

    def close(self, code: int, reason: str) -> None:
        """Close from synchronous code; the endpoint's receive loop then ends and unregisters."""
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        if self._proto is not None:
            self._proto.lw_close(code, reason)
        else:
            self._close_task = asyncio.ensure_future(self._fallback_close(code, reason))

    async def _fallback_close(self, code: int, reason: str) -> None:
        if self._fallback_task is not None:
            self._fallback_task.cancel()
        with contextlib.suppress(Exception):
            if self.websocket.application_state == WebSocketState.CONNECTED:
                await self.websocket.close(code, reason)

    async def _fallback_writer(self) -> None:
        assert self._fallback_queue is not None
        try:
            while True:
                envelope = await self._fallback_queue.get()
                await self.websocket.send_text(envelope.decode())
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # the peer went away; the receive loop will see it
            log.debug("fallback writer stopped: %s", exc)

    def stop(self) -> None:
        self.closed = True
        if self._fallback_task is not None:
            self._fallback_task.cancel()
