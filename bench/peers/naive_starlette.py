"""The naive peer: a Starlette WebSocket endpoint that broadcasts with one await per recipient.

This is what the framework's documentation leads to: keep a set of sockets, and for each broadcast
``for ws in clients: await ws.send_text(text)``. Run: ``python -m bench.peers.naive_starlette --port 0``.
"""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from bench.peers.common import ROOM, http_routes, port_arg, room, serve

clients: dict[WebSocket, None] = {}


async def viewer(websocket: WebSocket) -> None:
    await websocket.accept()
    hello = json.loads(await websocket.receive_text())
    if hello.get("data", {}).get("token") not in room.viewer_tokens:
        await websocket.close(4001)
        return
    await websocket.send_text(json.dumps({"type": "welcome", "data": {"epoch": "naive", "seq": room.seq}}))
    clients[websocket] = None
    try:
        while True:
            msg = json.loads(await websocket.receive_text())
            if msg.get("type") == "ping":
                await websocket.send_text(json.dumps({"type": "pong", "data": {"t": msg["data"].get("t")}}))
    except WebSocketDisconnect:
        pass
    finally:
        clients.pop(websocket, None)


async def host(websocket: WebSocket) -> None:
    await websocket.accept()
    hello = json.loads(await websocket.receive_text())
    if hello.get("data", {}).get("token") not in room.host_tokens:
        await websocket.close(4001)
        return
    await websocket.send_text(json.dumps({"type": "welcome", "data": {"epoch": "naive", "seq": room.seq}}))
    try:
        while True:
            msg = json.loads(await websocket.receive_text())
            if msg.get("type") != "announce":
                continue
            text = json.dumps(room.announcement(str(msg["data"]["text"])))
            for ws in list(clients):
                try:
                    await ws.send_text(text)
                except Exception:
                    clients.pop(ws, None)
            await websocket.send_text(json.dumps({"type": "ack", "data": {"id": msg.get("id")}}))
    except WebSocketDisconnect:
        pass


app = Starlette(
    routes=[
        *http_routes,
        WebSocketRoute(f"/ws/viewer/{ROOM}", viewer),
        WebSocketRoute(f"/ws/host/{ROOM}", host),
    ]
)

if __name__ == "__main__":
    serve(app, port_arg())
