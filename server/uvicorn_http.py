"""uvicorn's HTTP protocol with the deadlines uvicorn lacks.

uvicorn closes a keep-alive connection idle between requests (``timeout_keep_alive``), but a client
that opens a connection and sends nothing, or half a request head, or a body a byte at a time, holds
its socket (and, for a body, a running request) for as long as it likes. Here a request head must
arrive within ``head_timeout_secs`` of the connection opening or of the request's first byte, and a
head still incomplete after ``max_head_bytes`` is refused (431); a body must arrive within
``body_timeout_secs`` of its head (the clock is started again while uvicorn itself is not reading,
waiting for the app). A late client gets 408 if no response has begun, and the connection is closed.

Only uvicorn's httptools protocol (``uvicorn[standard]``) is extended; without httptools, uvicorn's
h11 protocol runs with h11's own head size limit and no deadlines (``http_protocol``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

from server.config import Settings

log = logging.getLogger("livewall.http")

_HEAD, _BODY, _OTHER = 0, 1, 2


def _refusal(status: bytes, text: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
        b"content-length: " + str(len(text)).encode() + b"\r\n\r\n" + text
    )


REQUEST_TIMEOUT = _refusal(b"408 Request Timeout", b"request not received in time\n")
HEAD_TOO_LARGE = _refusal(b"431 Request Header Fields Too Large", b"request head too large\n")


def http_protocol(settings: Settings) -> tuple[Any, dict[str, Any]]:
    """uvicorn's ``http=`` and any extra ``uvicorn.Config`` arguments for ``settings``."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
        return "h11", {"h11_max_incomplete_event_size": settings.http_max_head_bytes}

    class DeadlineHttpProtocol(HttpToolsProtocol):
        """httptools' protocol, with a head deadline and size cap and a body deadline."""

        head_timeout_secs: ClassVar[float] = settings.http_head_timeout_secs
        body_timeout_secs: ClassVar[float] = settings.http_body_timeout_secs
        max_head_bytes: ClassVar[int] = settings.http_max_head_bytes
        lw_state = _HEAD
        lw_head_bytes = 0
        lw_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._lw_arm(self.head_timeout_secs)

        def connection_lost(self, exc: Exception | None) -> None:
            self._lw_disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.lw_state == _HEAD and self.parser is not None and not self.transport.is_closing():
                # Every byte of a read that ended inside a head is head (a head that ends within one
                # read is at most the read's size).
                self.lw_head_bytes += len(data)
                if self.lw_head_bytes > self.max_head_bytes:
                    self._lw_refuse(HEAD_TOO_LARGE, f"request head over {self.max_head_bytes} bytes")

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self.lw_state != _HEAD:  # a new request on a kept-alive connection
                self.lw_state = _HEAD
                self.lw_head_bytes = 0
                self._lw_arm(self.head_timeout_secs)

        def on_headers_complete(self) -> None:
            self.lw_state = _BODY
            self._lw_arm(self.body_timeout_secs)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self.lw_state = _OTHER
            self._lw_disarm()
            super().on_message_complete()

        def handle_websocket_upgrade(self) -> None:
            self.lw_state = _OTHER
            self._lw_disarm()  # the WebSocket's own hello deadline takes over
            super().handle_websocket_upgrade()

        def _lw_arm(self, secs: float) -> None:
            self._lw_disarm()
            self.lw_timer = self.loop.call_later(secs, self._lw_expired)

        def _lw_disarm(self) -> None:
            if self.lw_timer is not None:
                self.lw_timer.cancel()
                self.lw_timer = None

        def _lw_expired(self) -> None:
            self.lw_timer = None
            if self.transport.is_closing():
                return
            if self.lw_state == _BODY and self.flow.read_paused:
                self._lw_arm(self.body_timeout_secs)  # uvicorn is not reading: not the client's delay
                return
            what = "request head" if self.lw_state == _HEAD else "request body"
            self._lw_refuse(REQUEST_TIMEOUT, f"{what} not received in time")

        def _lw_refuse(self, response: bytes, why: str) -> None:
            client = self.client[0] if self.client else "?"
            log.info("closing an HTTP connection from %s: %s", client, why)
            self.lw_state = _OTHER
            self._lw_disarm()
            cycle = self.cycle
            if cycle is None or not cycle.response_started or cycle.response_complete:
                self.transport.write(response)
            self.transport.close()

    return DeadlineHttpProtocol, {}
