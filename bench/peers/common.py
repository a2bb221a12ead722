"""What both peer servers share: tokens, the room, the envelope and the startup line.

The peers speak the same wire contract as Livewall for what the benchmark uses (HTTP join and
host-token, hello/welcome, sequenced ``announcement`` envelopes) so one load generator drives all.
They keep everything in memory: no database, which favours them over Livewall.
"""

from __future__ import annotations

import itertools
import json
import secrets
import sys
import time
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ROOM = "benchroom"
HOST_KEY = secrets.token_urlsafe(12)


class Room:
    """One room's state: tokens issued, the announcement sequence."""

    def __init__(self) -> None:
        self.viewer_tokens: set[str] = set()
        self.host_tokens: set[str] = set()
        self.seq = 0
        self.ids = itertools.count(1)

    def announcement(self, text: str) -> dict[str, Any]:
        """The next sequenced envelope, shaped like Livewall's."""
        self.seq += 1
        now = time.time_ns() // 1_000_000
        return {
            "type": "announcement",
            "seq": self.seq,
            "ts": now,
            "data": {"id": next(self.ids), "text": text[:500], "created_ms": now},
        }


room = Room()


async def join(request: Request) -> JSONResponse:
    token = secrets.token_hex(16)
    room.viewer_tokens.add(token)
    return JSONResponse({"room": ROOM, "viewer_id": token[:16], "token": token})


async def host_token(request: Request) -> JSONResponse:
    body = await request.json()
    if body.get("key") != HOST_KEY:
        return JSONResponse({"error": "bad key"}, status_code=401)
    token = secrets.token_hex(16)
    room.host_tokens.add(token)
    return JSONResponse({"token": token})


http_routes = [
    Route("/api/rooms/{room_id}/join", join, methods=["POST"]),
    Route("/api/rooms/{room_id}/host-token", host_token, methods=["POST"]),
]


def serve(app: Any, port: int) -> None:
    """Run under uvicorn like Livewall does (uvloop, no permessage-deflate) and print the links line."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        ws_per_message_deflate=False,
        log_level="warning",
        access_log=False,
        backlog=4096,
    )
    server = uvicorn.Server(config)
    original = server.startup

    async def startup(sockets: Any = None) -> None:
        await original(sockets)
        bound = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{bound}"
        line = {"room": ROOM, "host_url": f"{base}/host#key={HOST_KEY}", "api_base": f"{base}/api"}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()

    server.startup = startup  # type: ignore[method-assign]
    server.run()


def port_arg() -> int:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    return int(parser.parse_args().port)
