"""Test helpers: a real uvicorn server on a free port, a protocol client, subprocess servers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import websockets
from websockets.asyncio.client import ClientConnection

from server.app import create_app
from server.cli.serve import uvicorn_config
from server.config import Settings

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# How long a test waits for a frame it expects. Generous: it only runs out when something is wrong,
# and CI runs with both cores busy (a 5 s bound timed out there on a correct run).
RECV_SECS = 30.0


@dataclass
class Running:
    """A server started by the tests: where it is, and its app (in-process only)."""

    base: str
    app: Any = None

    @property
    def ws(self) -> str:
        return self.base.replace("http://", "ws://")


@contextlib.asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[Running]:
    """Run the real app under uvicorn (with Livewall's WebSocket protocol) on this event loop."""
    settings = settings if settings.port else Settings(**{**settings.__dict__, "port": free_port()})
    app = create_app(settings)
    config = uvicorn_config(app, settings)
    config.loop = "none"
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server did not start")
        await asyncio.sleep(0.01)
    try:
        yield Running(f"http://127.0.0.1:{settings.port}", app)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


async def create_room(running: Running, title: str = "Test room") -> dict[str, str]:
    """Create a room through the app's own actions; returns id, host key, host token, screen key."""
    from server.rooms.actions import create_room as do_create

    services = running.app.state.services
    room, key = await do_create(services.db, title=title)
    return {
        "id": room.id,
        "host_key": key,
        "host_token": services.tokens.host(room.id, room.host_key_gen),
        "screen_key": services.tokens.screen(room.id, room.screen_key_gen),
    }


async def join(base: str, room_id: str, name: str | None = "viewer") -> dict[str, Any]:
    # Plain http to this machine: no TLS context (loading the CA store costs ~35 ms a client).
    async with httpx.AsyncClient(base_url=base, verify=False) as http:
        r = await http.post(f"/api/rooms/{room_id}/join", json={"name": name})
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return data


class Client:
    """A protocol-speaking WebSocket client for tests."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.welcome: dict[str, Any] = {}
        self.seq = 0
        self.epoch = ""
        self.events: list[dict[str, Any]] = []
        self._ids = 0

    @classmethod
    async def connect(
        cls,
        ws_base: str,
        role: str,
        room_id: str,
        hello: dict[str, Any],
        resume: tuple[str, int] | None = None,
        **kwargs: Any,
    ) -> Client:
        ws = await websockets.connect(f"{ws_base}/ws/{role}/{room_id}", **kwargs)
        client = cls(ws)
        data = dict(hello)
        if resume is not None:
            data["resume"] = {"epoch": resume[0], "seq": resume[1]}
        await ws.send(json.dumps({"type": "hello", "data": data}))
        first = await client.recv()
        if first["type"] != "welcome":
            raise AssertionError(f"expected welcome, got {first}")
        client.welcome = first["data"]
        client.seq = first["data"]["seq"]
        client.epoch = first["data"]["epoch"]
        return client

    async def recv(self, timeout: float = RECV_SECS) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        msg: dict[str, Any] = json.loads(raw)
        if "seq" in msg:
            assert msg["seq"] == self.seq + 1, f"gap or disorder: had {self.seq}, got {msg['seq']}"
            self.seq = msg["seq"]
            self.events.append(msg)
        return msg

    async def recv_type(self, kind: str, timeout: float = RECV_SECS) -> dict[str, Any]:
        """Read until a message of ``kind`` (checking sequence order on the way)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            msg = await self.recv(max(0.01, deadline - loop.time()))
            if msg["type"] == kind:
                return msg

    async def request(self, kind: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send an action and wait for its ack or error."""
        self._ids += 1
        msg_id = f"t{self._ids}"
        await self.ws.send(json.dumps({"type": kind, "id": msg_id, "data": data or {}}))
        while True:
            msg = await self.recv()
            if msg["type"] in ("ack", "error") and msg["data"].get("id") == msg_id:
                return msg

    async def close(self) -> None:
        await self.ws.close()


@contextlib.contextmanager
def spawn(
    args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[subprocess.Popen[str]]:
    """A ``livewall`` subprocess, terminated at the end."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd=cwd or REPO,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def wait_ready(base: str, timeout: float = 20) -> None:
    """Poll /readyz until it answers 200 (for subprocess servers)."""
    import time

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{base} not ready: {last}")


async def setup_room(
    running: Running, viewers: int = 2
) -> tuple[dict[str, str], Client, Client, list[Client], list[dict[str, Any]]]:
    """A room with a host console (named Ann), a big screen and ``viewers`` joined phones."""
    room = await create_room(running)
    host = await Client.connect(running.ws, "host", room["id"], {"token": room["host_token"], "name": "Ann"})
    screen = await Client.connect(running.ws, "screen", room["id"], {"key": room["screen_key"]})
    joined = [await join(running.base, room["id"], f"v{i}") for i in range(viewers)]
    phones = [await Client.connect(running.ws, "viewer", room["id"], {"token": j["token"]}) for j in joined]
    return room, host, screen, phones, joined
