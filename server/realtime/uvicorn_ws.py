"""A uvicorn WebSocket protocol that lets the hub write pre-encoded frames straight to the socket.

uvicorn's ASGI ``send`` costs an await, a dict and a frame encoding per message and per recipient.
Server-to-client WebSocket frames are unmasked, so one encoded frame is valid for every recipient:
the hub encodes each event once and writes the same bytes to every transport, synchronously. This
class only adds that write path (scope extension ``livewall.direct``); handshake, reading, pings and
closing stay uvicorn's. Under any other server the hub falls back to ASGI sends.

It also keeps an idle connection small (10,000 of them sit in one process): the handshake's request
and response are dropped once accepted (also from the parser: ``websockets``' handshake parser is a
generator that goes on parsing frames with the request still among its locals, so it is swapped for
the bare frame parser), and the receive queue and write gate are slot objects instead of asyncio's
Queue and Event (four deques of ~600 bytes each, almost always empty).
``websocket_fast_path`` serves WebSocket routes without Starlette's middleware and router layers,
whose coroutine frames would otherwise live as long as each connection.

Inbound limits (``server/realtime/inbound.py``) act here, on the bytes as they come off the socket:
frames are counted from their headers before websockets' parser sees them, and a client over its
budget is not read (its transport paused) until the budget refills, so a flood costs the server the
frames it allows, not the frames it was sent. ``with_inbound_limits`` makes the class uvicorn runs.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, cast

from server.compat import require_supported

# Before the internals below are imported: a version they do not fit fails with one clear sentence.
require_supported()

from starlette.routing import WebSocketRoute  # noqa: E402
from starlette.websockets import WebSocket  # noqa: E402
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol  # noqa: E402
from websockets.http11 import Request  # noqa: E402
from websockets.protocol import Protocol  # noqa: E402
from websockets.streams import StreamReader  # noqa: E402

from server.realtime.inbound import InboundLimits, InboundMeter  # noqa: E402
from server.realtime.protocol import Close  # noqa: E402

DIRECT_EXTENSION = "livewall.direct"
# After a flood close the client's close reply is not waited for (it is behind everything it sent):
# the socket is not read again, and is closed this long after the close frame went out (time for the
# client to read it; what it sent and the server never read then makes the kernel reset the socket).
FLOOD_LINGER_SECS = 1.0

log = logging.getLogger("livewall.ws")

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


class _Inbox:
    """The part of asyncio.Queue uvicorn uses, for one consumer (the connection's ASGI task)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        while not self._items:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


class _Gate:
    """The part of asyncio.Event uvicorn uses for write flow control (set while writable)."""

    __slots__ = ("_open", "_waiters")

    def __init__(self) -> None:
        self._open = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._open

    def set(self) -> None:
        self._open = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._open = False

    async def wait(self) -> bool:
        if self._open:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        await waiter
        return True


def _between_frames(conn: Any) -> bool:
    """``conn``'s parser waits for the first byte of a frame, with nothing buffered: the handshake
    parser (``ServerProtocol.parse``) delegating to the frame parser (``Protocol.parse``), which
    delegates to ``StreamReader.at_eof``. Anywhere else (inside a frame's header, after EOF) it
    holds state a fresh parser would not have."""
    reader = conn.reader
    if reader.buffer or reader.eof:
        return False
    frames = getattr(conn.parser, "gi_yieldfrom", None)
    waiting = getattr(frames, "gi_yieldfrom", None)
    return (
        getattr(frames, "gi_code", None) is Protocol.parse.__code__
        and getattr(waiting, "gi_code", None) is StreamReader.at_eof.__code__
    )


class DirectWriteProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O websockets protocol plus a synchronous pre-framed write path, and inbound
    limits on raw frames when the class has ``limits`` (see ``with_inbound_limits``)."""

    limits: ClassVar[InboundLimits | None] = None
    # Class-level defaults: an instance holds these only once they differ (10,000 idle connections).
    lw_meter: InboundMeter | None = None  # made with the first frame bytes
    lw_backlog = b""  # received, not yet admitted (starts at a frame boundary)
    lw_hold: asyncio.TimerHandle | None = None  # set while reading waits for the budget
    lw_dropping = False  # closed for flooding: nothing more is read

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Gate()  # type: ignore[assignment]

    @property
    def lw_metered(self) -> bool:
        """Inbound limits are enforced here, before parsing (the endpoint need not count again)."""
        return self.limits is not None

    def data_received(self, data: bytes) -> None:
        if self.lw_dropping:
            return
        if self.limits is None or not self.handshake_initiated:
            super().data_received(data)  # the handshake request (its own size limits apply)
            return
        if self.lw_backlog:
            data, self.lw_backlog = self.lw_backlog + data, b""
        self._lw_take(data)

    def _lw_take(self, data: bytes) -> None:
        """Pass on what the budget allows; hold the rest and stop reading until it may go on."""
        meter = self.lw_meter
        now = self.loop.time()
        if meter is None:
            assert self.limits is not None
            meter = self.lw_meter = InboundMeter(self.limits, now)
        end, wait = meter.admit(data, now)
        if end:
            super().data_received(data if end == len(data) else data[:end])
        if end == len(data) or self.disconnected or self.transport.is_closing():
            return
        self.lw_backlog = data[end:]
        if wait == 0.0:
            return  # part of a frame header: the rest is on its way
        if meter.flooding(now):
            self._lw_flood()
            return
        # Paused every time: a close resumes reading behind this (uvicorn's close paths do).
        self.transport.pause_reading()
        if self.lw_hold is not None:
            self.lw_hold.cancel()
        self.lw_hold = self.loop.call_later(wait, self._lw_release)

    def _lw_release(self) -> None:
        self.lw_hold = None
        if self.disconnected or self.lw_dropping:
            return
        data, self.lw_backlog = self.lw_backlog, b""
        if data:
            self._lw_take(data)
        if self.lw_hold is None and not self.read_paused and not self.lw_dropping:
            self.transport.resume_reading()

    def _lw_flood(self) -> None:
        """Close 4029 without parsing what is still queued: the client is told why, and everything
        it sends after that stays unread until the socket closes."""
        if self.lw_hold is not None:
            self.lw_hold.cancel()
            self.lw_hold = None
        self.lw_backlog = b""
        self.lw_dropping = True
        client = self.client[0] if self.client else "?"
        log.warning("closing a flooding WebSocket connection from %s (4029)", client)
        if self.handshake_complete and not self.close_sent:
            self.queue.put_nowait({"type": "websocket.disconnect", "code": Close.FLOOD, "reason": "flooding"})
            self.conn.send_close(Close.FLOOD, "flooding")
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
        if self.close_timer is not None:
            self.close_timer.cancel()
        self.close_timer = self.loop.call_later(FLOOD_LINGER_SECS, self.transport.close)
        self.read_paused = False  # so that no close path of uvicorn's resumes reading
        self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.lw_hold is not None:
            self.lw_hold.cancel()
            self.lw_hold = None
        self.lw_backlog = b""
        super().connection_lost(exc)

    async def receive(self) -> Any:
        message = await self.queue.get()
        if self.read_paused and self.queue.empty():
            self.read_paused = False
            if self.lw_hold is None and not self.lw_dropping:  # reading also waits for the budget
                self.transport.resume_reading()
        return message

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        conn = self.conn
        if _between_frames(conn) and self.response.status_code == 101 and conn.close_rcvd is None:
            # The handshake parser went on to wait for the first frame with nothing read yet (a
            # client sends no frame before the 101 response), so the frame parser can start afresh:
            # the handshake parser's frame, holding the request and its headers (~1.5 KiB), is
            # freed instead of living as long as the connection. A refusal (no 101) keeps the
            # parser websockets put in place for it.
            parser = Protocol.parse(conn)
            next(parser)
            conn.parser = parser
        scope: Any = getattr(self, "scope", None)
        if scope is not None:
            # The ASGI task is created but has not run yet, so it sees this extension.
            scope["extensions"][DIRECT_EXTENSION] = self

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete and self.response is not None:
            # Only the handshake reads them; an open connection need not keep ~3 KiB of headers.
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]

    def lw_is_open(self) -> bool:
        return self.handshake_complete and not (self.close_sent or self.disconnected)

    def lw_write(self, data: bytes) -> int:
        """Write already-framed bytes; returns the transport's unsent byte count (-1 if closed)."""
        if self.close_sent or self.disconnected:
            return -1
        transport = self.transport
        transport.write(data)
        return transport.get_write_buffer_size()

    def lw_close(self, code: int, reason: str) -> None:
        """Start the closing handshake from synchronous code (the same steps as an ASGI close)."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)


def with_inbound_limits(limits: InboundLimits) -> type[DirectWriteProtocol]:
    """The protocol class for uvicorn's ``ws=``, enforcing ``limits`` on every connection."""
    return type("LimitedDirectWriteProtocol", (DirectWriteProtocol,), {"limits": limits})


def websocket_fast_path(app: Any) -> ASGIApp:
    """``app`` with its function WebSocket routes served directly, past Starlette's middleware stack
    and router: the same endpoint, path parameters, ``websocket.app`` and lifespan state. Everything
    else (HTTP, lifespan, other paths, a ``root_path``) goes to ``app`` unchanged."""
    routes = [
        r
        for r in getattr(app, "routes", ())
        if isinstance(r, WebSocketRoute) and (inspect.isfunction(r.endpoint) or inspect.ismethod(r.endpoint))
    ]
    # Middleware the app asked for must keep seeing WebSocket connections, unless it declares that it
    # passes them on untouched (``http_only = True``, as server/headers.py does).
    middleware = getattr(app, "user_middleware", None) or ()
    if not routes or any(not getattr(m.cls, "http_only", False) for m in middleware):
        return cast(ASGIApp, app)

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and not scope.get("root_path"):
            path = scope["path"]
            for route in routes:
                match = route.path_regex.match(path)
                if match is not None:
                    params = {k: route.param_convertors[k].convert(v) for k, v in match.groupdict().items()}
                    scope["app"] = app
                    scope["router"] = app.router
                    scope["endpoint"] = route.endpoint
                    scope["path_params"] = params
                    await route.endpoint(WebSocket(scope, receive=receive, send=send))
                    return
        await app(scope, receive, send)

    return asgi
