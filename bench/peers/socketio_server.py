"""The python-socketio peer: AsyncServer in ASGI mode on uvicorn, one room, ``emit(..., room=)``.

What a Python developer would pick for "push to everyone in a room". Viewers authenticate in the
Socket.IO CONNECT packet (``auth``); the host emits ``announce`` with an ack; every viewer gets an
``announcement`` event with the same envelope as Livewall's. WebSocket transport only (no polling).
Run: ``python -m bench.peers.socketio_server --port 0``.
"""

from __future__ import annotations

from typing import Any

import socketio
from starlette.applications import Starlette

from bench.peers.common import ROOM, http_routes, port_arg, room, serve

sio = socketio.AsyncServer(async_mode="asgi", transports=["websocket"], cors_allowed_origins="*")


@sio.event
async def connect(sid: str, environ: dict[str, Any], auth: dict[str, Any] | None) -> bool:
    auth = auth or {}
    if auth.get("token") in room.viewer_tokens:
        await sio.enter_room(sid, ROOM)
    elif auth.get("host") not in room.host_tokens:
        return False
    await sio.emit("welcome", {"type": "welcome", "data": {"epoch": "sio", "seq": room.seq}}, to=sid)
    return True


@sio.event
async def announce(sid: str, data: dict[str, Any]) -> dict[str, Any]:
    envelope = room.announcement(str(data.get("text", "")))
    await sio.emit("announcement", envelope, room=ROOM)
    return {"seq": envelope["seq"]}


@sio.event
async def ping(sid: str, data: dict[str, Any]) -> None:
    await sio.emit("pong", {"type": "pong", "data": {"t": data.get("t")}}, to=sid)


app = socketio.ASGIApp(sio, other_asgi_app=Starlette(routes=http_routes))

if __name__ == "__main__":
    serve(app, port_arg())
