"""A uvicorn WebSocket protocol that lets the hub write pre-encoded frames straight to the socket.

uvicorn's ASGI ``send`` costs an await, a dict and a frame encoding per message and per recipient.
Server-to-client WebSocket frames are unmasked, so one encoded frame is valid for every recipient:
the hub encodes each event once and writes the same bytes to every transport, synchronously. This
class only adds that write path (scope extension ``livewall.direct``); handshake, reading, pings and
closing stay uvicorn's. Under any other server the hub falls back to ASGI sends.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

DIRECT_EXTENSION = "livewall.direct"


class DirectWriteProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O websockets protocol plus a synchronous pre-framed write path."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope: Any = getattr(self, "scope", None)
        if scope is not None:
            # The ASGI task is created but has not run yet, so it sees this extension.
            scope["extensions"][DIRECT_EXTENSION] = self

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
