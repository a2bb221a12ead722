"""The WebSocket endpoint, one per role: ``/ws/viewer/{room}``, ``/ws/host/{room}``, ``/ws/screen/{room}``.

Handshake: the client sends ``hello`` first (credentials, optional resume point); the server answers
``welcome`` with a snapshot, or with the resume result followed by exactly the missed events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from starlette.websockets import WebSocket, WebSocketDisconnect

from server.auth import Principal, Role, require
from server.config import HELLO_TIMEOUT_SECS, INBOUND_STRIKES_BEFORE_CLOSE, Settings
from server.errors import BadMessage, LivewallError, RateLimited, UnknownType
from server.httputil import error_response, same_origin
from server.metrics import Metrics
from server.realtime.caps import identity
from server.realtime.connection import Connection
from server.realtime.dispatch import ActionContext, Handler
from server.realtime.hub import Hub, Resume
from server.realtime.protocol import ClientMessage, Close, direct_frame, error_frame, parse_client_frame
from server.realtime.ratelimit import TokenBucket

log = logging.getLogger("livewall.ws")


class EndpointServices(Protocol):
    """What the endpoint itself uses of the app's services (the app's ``Services`` has more, which
    its callbacks and the domains' handlers see typed: the endpoint only passes it through)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def hub(self) -> Hub: ...

    @property
    def metrics(self) -> Metrics: ...


S = TypeVar("S", bound=EndpointServices)

Authenticate = Callable[[S, WebSocket, Role, str, dict[str, Any]], Awaitable[Principal]]
Snapshot = Callable[[S, Principal], Awaitable[dict[str, Any]]]
Welcome = Callable[[S, Principal], Awaitable[dict[str, Any]]]
# Called (not awaited) after an action succeeded: (services, principal, handler, data, result).
AfterAction = Callable[[S, Principal, Handler, dict[str, Any], Any], None]


def _resume_point(data: dict[str, Any]) -> Resume | None:
    resume = data.get("resume")
    if resume is None:
        return None
    if not isinstance(resume, dict):
        raise BadMessage('"resume" must be an object {"epoch": str, "seq": int}')
    epoch, seq = resume.get("epoch"), resume.get("seq")
    if not isinstance(epoch, str) or len(epoch) > 64 or not isinstance(seq, int) or isinstance(seq, bool):
        raise BadMessage('"resume" must be an object {"epoch": str, "seq": int}')
    if seq < 0:
        raise BadMessage('"resume.seq" must not be negative')
    return Resume(epoch, seq)


def _forget_headers(websocket: WebSocket) -> None:
    """Authenticated: nothing reads the handshake's headers or cookies again, and 10,000 open
    connections need not keep them (~0.7 KiB each in the scope, more once Starlette parsed them)."""
    websocket.scope["headers"] = []
    for parsed in ("_headers", "_cookies"):
        websocket.__dict__.pop(parsed, None)


class RealtimeEndpoint(Generic[S]):
    """ASGI-facing logic of one connection's life: authenticate, attach, read, dispatch, detach.

    ``S`` is the app's services (``websocket.app.state.services``), handed to the callbacks and, in
    each ``ActionContext``, to the handlers."""

    def __init__(
        self,
        authenticate: Authenticate[S],
        snapshot: Snapshot[S],
        welcome: Welcome[S],
        private: Snapshot[S] | None = None,
        handlers: Mapping[str, Handler] | None = None,
        after_action: AfterAction[S] | None = None,
    ) -> None:
        self.authenticate = authenticate
        self.handlers: Mapping[str, Handler] = handlers or {}  # client actions by type (the domains')
        self.snapshot = snapshot  # the part every connection of the audience shares (cached by the hub)
        self.private = private  # the part that belongs to this principal alone
        self.welcome = welcome
        self.after_action = after_action  # told of each action that succeeded (the audit log)

    async def __call__(self, websocket: WebSocket) -> None:
        services: S = websocket.app.state.services
        role = Role(websocket.path_params["role"])
        room_id: str = websocket.path_params["room_id"]
        if not same_origin(websocket, services.settings.allowed_origins, services.settings.public_url):
            await websocket.close(Close.FORBIDDEN, "origin not allowed")  # before accept: HTTP 403
            return
        # The client's address as uvicorn's proxy-headers support (FORWARDED_ALLOW_IPS) resolved it.
        address = websocket.client.host if websocket.client is not None else ""
        caps = services.hub.caps
        if not caps.enter_address(address, services.settings.max_conns_per_address):
            services.metrics.error_sent("too_many_connections")
            refusal = RateLimited("too many connections from this address", code="too_many_connections")
            await websocket.send_denial_response(error_response(refusal))  # HTTP 429, before accept
            return
        try:
            await websocket.accept()
            try:
                greeted = await self._greet(websocket, services, role, room_id)
            except LivewallError as exc:
                await self._refuse(websocket, services, exc)
                return
            except WebSocketDisconnect:
                return
            if greeted is None:
                return
            principal, resume = greeted
            del greeted

            conn = Connection(websocket, principal, buffer_limit=services.settings.send_buffer_limit_bytes)
            key = identity(principal)
            for stale in caps.enter_identity(key, conn, services.settings.max_conns_per_identity):
                services.metrics.error_sent("replaced")
                stale.close(Close.REPLACED, "replaced: a newer connection of the same identity")
            try:
                try:
                    await self._attach(services, conn, resume)
                    resume = None
                except LivewallError as exc:  # e.g. the viewer behind a token no longer exists
                    conn.stop()
                    await self._refuse(websocket, services, exc)
                    return
                except (OSError, TimeoutError, ConnectionError, RedisError, SQLAlchemyError):
                    # A backend is unreachable (Redis down, database gone): say so, and let the client
                    # retry with backoff, instead of failing the handler with a bare 1011.
                    log.warning("connect failed: a backend did not answer", exc_info=True)
                    conn.stop()
                    await self._close_with(
                        websocket,
                        services,
                        "unavailable",
                        "the server cannot reach its storage; retry",
                        Close.TRY_AGAIN_LATER,
                    )
                    return
                await self._read_loop(websocket, services, conn)
            except WebSocketDisconnect:
                pass
            finally:
                caps.leave_identity(key, conn)
                services.hub.detach(conn)
        finally:
            caps.leave_address(address)

    # The handshake's steps run in frames of their own, so that what they read (the hello, the
    # welcome with its snapshot) is freed once the connection is open, not kept by the read loop's.

    async def _greet(
        self, websocket: WebSocket, services: S, role: Role, room_id: str
    ) -> tuple[Principal, Resume | None] | None:
        hello = await self._hello(websocket, services)
        if hello is None:
            return None
        principal = await self.authenticate(services, websocket, role, room_id, hello.data)
        resume = _resume_point(hello.data)
        _forget_headers(websocket)
        return principal, resume

    async def _attach(self, services: S, conn: Connection, resume: Resume | None) -> None:
        welcome = await self.welcome(services, conn.principal)
        welcome["heartbeat_secs"] = services.settings.heartbeat_secs
        private = self.private
        await services.hub.attach(
            conn,
            resume,
            lambda c: self.snapshot(services, c.principal),
            welcome=welcome,
            private=(lambda c: private(services, c.principal)) if private is not None else None,
        )

    async def _hello(self, websocket: WebSocket, services: S) -> ClientMessage | None:
        try:
            message = await asyncio.wait_for(websocket.receive(), HELLO_TIMEOUT_SECS)
        except TimeoutError:
            await self._close_with(websocket, services, "hello_timeout", "no hello", Close.HELLO_TIMEOUT)
            return None
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        text = message.get("text")
        if text is None:
            raise BadMessage("binary frames are not accepted; send JSON text")
        hello = parse_client_frame(text, services.settings.max_frame_bytes)
        if hello.type != "hello":
            await self._close_with(
                websocket, services, "protocol", "the first message must be hello", Close.PROTOCOL
            )
            return None
        return hello

    async def _refuse(self, websocket: WebSocket, services: S, exc: LivewallError) -> None:
        code = {401: Close.UNAUTHORIZED, 403: Close.FORBIDDEN, 404: Close.NOT_FOUND}.get(
            exc.http_status, Close.PROTOCOL
        )
        await self._close_with(websocket, services, exc.code, exc.message, code)

    async def _close_with(
        self, websocket: WebSocket, services: S, code: str, message: str, close: int
    ) -> None:
        services.metrics.error_sent(code)
        try:
            await websocket.send_text(error_frame(code, message).decode())
            await websocket.close(close, message[:120])
        except (WebSocketDisconnect, RuntimeError):
            pass

    async def _read_loop(self, websocket: WebSocket, services: S, conn: Connection) -> None:
        settings = services.settings
        # Livewall's uvicorn protocol counts frames before they are parsed, and holds a client over
        # its limits back instead of refusing it; only under another server are messages counted here.
        bucket = (
            None
            if conn.metered
            else TokenBucket(settings.inbound_burst, settings.inbound_rate_per_sec, time.monotonic())
        )
        strikes = 0
        ctx = ActionContext(conn.principal, services, conn)
        metrics = services.metrics
        handlers = self.handlers
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect" or conn.closed:
                return
            if bucket is not None and not bucket.take(time.monotonic()):
                strikes += 1
                metrics.error_sent("rate_limited")
                if strikes >= INBOUND_STRIKES_BEFORE_CLOSE:
                    conn.close(Close.FLOOD, "flooding")
                    return
                conn.send(error_frame("rate_limited", "too many messages; slow down"))
                continue
            strikes = 0
            msg_id: str | int | None = None
            try:
                text = message.get("text")
                if text is None:
                    raise BadMessage("binary frames are not accepted; send JSON text")
                msg = parse_client_frame(text, settings.max_frame_bytes)
                msg_id = msg.id
                metrics.received(msg.type if msg.type in handlers else "_other")
                if msg.type == "ping":
                    t = msg.data.get("t")
                    conn.send(
                        direct_frame(
                            "pong",
                            {
                                "t": t if isinstance(t, int | float) else None,
                                "server_ms": time.time_ns() // 10**6,
                            },
                        )
                    )
                    continue
                if msg.type == "hello":
                    raise BadMessage("hello was already received", code="protocol")
                handler = handlers.get(msg.type)
                if handler is None:
                    raise UnknownType(f"unknown message type {msg.type!r}")
                require(conn.principal, handler.scope)
                result = await handler.fn(ctx, msg.data)
                if self.after_action is not None:
                    self.after_action(services, conn.principal, handler, msg.data, result)
                conn.send(direct_frame("ack", {"id": msg_id, "type": msg.type, "result": result}))
            except LivewallError as exc:
                metrics.error_sent(exc.code)
                conn.send(error_frame(exc.code, exc.message, msg_id))
            except Exception:
                log.exception("handler failed")
                metrics.error_sent("internal")
                conn.send(error_frame("internal", "internal error", msg_id))
