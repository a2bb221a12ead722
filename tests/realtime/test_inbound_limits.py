"""Inbound limits over real uvicorn: a flood is read (and parsed) no faster than its budget and closed
4029 while others are served; an innocent burst is slowed, never refused or closed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame
from websockets.http11 import Response
from websockets.uri import parse_uri

from server.realtime.protocol import Close
from server.realtime.uvicorn_ws import DIRECT_EXTENSION
from tests.conftest import make_settings
from tests.helpers import Client, Running, create_room, join, serve

TIMEOUT = 10.0  # generous: two shared cores


class RawClient:
    """A WebSocket client on a bare stream (sans-I/O websockets): writes any number of frames at once."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, proto: ClientProtocol
    ) -> None:
        self.reader, self.writer, self.proto = reader, writer, proto
        self.messages: list[dict[str, Any]] = []

    @classmethod
    async def connect(cls, running: Running, room_id: str, token: str) -> RawClient:
        port = int(running.base.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        proto = ClientProtocol(parse_uri(f"{running.ws}/ws/viewer/{room_id}"))
        proto.send_request(proto.connect())
        raw = cls(reader, writer, proto)
        raw.flush()
        first = await raw.read_events()
        assert isinstance(first[0], Response) and first[0].status_code == 101
        raw.send([json.dumps({"type": "hello", "data": {"token": token}})])
        while not [m for m in raw.messages if m["type"] == "welcome"]:
            await raw.read_events()
        return raw

    def flush(self) -> None:
        self.writer.write(b"".join(self.proto.data_to_send()))

    def send(self, texts: list[str]) -> None:
        for text in texts:
            self.proto.send_text(text.encode())
        self.flush()

    async def read_events(self) -> list[Any]:
        data = await asyncio.wait_for(self.reader.read(65536), TIMEOUT)
        if data:
            self.proto.receive_data(data)
        else:
            self.proto.receive_eof()
        events = list(self.proto.events_received())
        for event in events:
            if isinstance(event, Frame) and event.opcode.name == "TEXT":
                self.messages.append(json.loads(event.data))
        self.flush()  # pongs and the close reply
        return events

    async def closed(self) -> int | None:
        """Read until the server's close frame and the end of the stream; its close code. (After a
        flood close the server leaves what it was sent unread, so the end may come as a reset.)"""
        try:
            while not self.reader.at_eof():
                await self.read_events()
        except ConnectionResetError:
            pass
        received = self.proto.close_rcvd
        return received.code if received is not None else None

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    settings = make_settings(
        tmp_path, inbound_burst=20, inbound_rate_per_sec=50.0, inbound_flood_close_secs=1.0
    )
    async with serve(settings) as r:
        yield r


def parsed_frames(running: Running, room_id: str, viewer_id: str) -> list[int]:
    """Count the frames websockets' parser yields on this viewer's connection from now on."""
    services = running.app.state.services
    (conn,) = [c for c in services.hub.connections(room_id, "viewer") if c.principal.viewer_id == viewer_id]
    parser = conn.websocket.scope["extensions"][DIRECT_EXTENSION].conn
    count = [0]
    events_received = parser.events_received

    def counted() -> list[Any]:
        events: list[Any] = events_received()
        count[0] += len(events)
        return events

    parser.events_received = counted
    return count


async def test_a_flood_is_parsed_no_faster_than_its_budget_then_closed_4029(running: Running) -> None:
    """10,000 pings at once: the server parses about burst + rate x time of them (not every frame it
    was sent), answers a bystander at once while the rest wait unread, and closes the flooder 4029."""
    room = await create_room(running)
    flooder_join, bystander_join = [await join(running.base, room["id"], n) for n in ("flood", "calm")]
    flooder = await RawClient.connect(running, room["id"], flooder_join["token"])
    bystander = await Client.connect(running.ws, "viewer", room["id"], {"token": bystander_join["token"]})
    count = parsed_frames(running, room["id"], flooder_join["viewer_id"])
    loop = asyncio.get_running_loop()
    start = loop.time()

    flooder.send(['{"type":"ping","data":{"t":1}}'] * 10_000)
    while len(flooder.of_type("pong")) < 20:  # the burst is answered: the rest is being held now
        await flooder.read_events()
    for t in range(5):
        await bystander.ws.send(json.dumps({"type": "ping", "data": {"t": t}}))
        assert (await bystander.recv_type("pong", TIMEOUT))["data"]["t"] == t
    code = await asyncio.wait_for(flooder.closed(), TIMEOUT)
    elapsed = loop.time() - start

    assert code == Close.FLOOD
    # The burst (20), 50 a second after it, the close frame, and one tick of the clock's slack.
    assert count[0] <= 20 + 50 * elapsed + 2, (count[0], elapsed)
    assert len(flooder.of_type("pong")) <= count[0]
    assert not flooder.of_type("error"), "held back, never refused"
    await bystander.close()


@pytest.fixture
async def patient(tmp_path: Path) -> AsyncIterator[Running]:
    """The same limits, with the default's room before a flood close: 80 frames over the burst at 50
    a second are held back 1.6 s, well within it."""
    settings = make_settings(
        tmp_path, inbound_burst=20, inbound_rate_per_sec=50.0, inbound_flood_close_secs=5.0
    )
    async with serve(settings) as r:
        yield r


async def test_an_innocent_burst_after_a_stall_is_slowed_not_closed(patient: Running) -> None:
    """A phone back from a stall sends 100 queued messages at once (5x the burst): every one is
    answered, in order, with no error and no close; the ones over the burst are read at the rate."""
    running = patient
    room = await create_room(running)
    phone_join = await join(running.base, room["id"], "phone")
    phone = await RawClient.connect(running, room["id"], phone_join["token"])
    loop = asyncio.get_running_loop()
    start = loop.time()
    phone.send([json.dumps({"type": "ping", "data": {"t": i}}) for i in range(100)])
    while len(phone.of_type("pong")) < 100:
        assert not phone.reader.at_eof(), phone.messages
        await phone.read_events()
    elapsed = loop.time() - start
    assert [p["data"]["t"] for p in phone.of_type("pong")] == list(range(100))
    assert not phone.of_type("error")
    assert phone.proto.close_rcvd is None
    assert elapsed >= (100 - 20) / 50 * 0.9, "the frames over the burst were read at the rate"
    phone.send([json.dumps({"type": "ping", "data": {"t": 100}})])
    while len(phone.of_type("pong")) < 101:
        await phone.read_events()
    phone.writer.close()


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_under_another_server_messages_over_the_limits_are_refused(tmp_path: Path) -> None:
    """Without Livewall's protocol (Starlette's test client here) there are no raw frames to hold
    back: the endpoint counts messages itself, refuses those over the limits with rate_limited, and
    closes a client refused 20 times in a row with 4029."""
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    from server.app import create_app

    app = create_app(make_settings(tmp_path, inbound_burst=5))
    with TestClient(app) as http:
        room = http.portal.call(create_room, Running("http://testserver", app))
        token = http.post(f"/api/rooms/{room['id']}/join", json={"name": "t"}).json()["token"]
        with http.websocket_connect(f"/ws/viewer/{room['id']}") as ws:
            ws.send_text(json.dumps({"type": "hello", "data": {"token": token}}))
            assert json.loads(ws.receive_text())["type"] == "welcome"
            for t in range(40):
                ws.send_text(json.dumps({"type": "ping", "data": {"t": t}}))
            kinds: list[str] = []
            with pytest.raises(WebSocketDisconnect) as closed:
                while True:
                    message = json.loads(ws.receive_text())
                    if message["type"] in ("pong", "error"):  # not the room's events (presence, ...)
                        kinds.append("pong" if message["type"] == "pong" else message["data"]["code"])
    assert closed.value.code == Close.FLOOD
    assert kinds[:5] == ["pong"] * 5 and set(kinds[5:]) == {"rate_limited"}
