"""Reconnect and resume over real uvicorn: missed events replayed exactly once and in order, or a flagged
snapshot when that is impossible; and a slow consumer cut off without holding anyone else back."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.client import ClientProtocol
from websockets.frames import Close as CloseFrame
from websockets.http11 import Response
from websockets.uri import parse_uri

from server.realtime.protocol import Close
from server.realtime.uvicorn_ws import DIRECT_EXTENSION
from server.rooms import actions, wire
from tests.conftest import make_settings
from tests.helpers import Client, Running, create_room, join, serve

TIMEOUT = 10.0
# Presence ticks would add presence events to the viewers' stream at unpredictable points; these tests
# count events exactly, so the tick is pushed out of the test's lifetime.
NO_PRESENCE = 3600.0


@pytest.fixture
async def quiet(tmp_path: Path) -> AsyncIterator[Running]:
    """A server whose viewer stream carries only what the test publishes."""
    async with serve(make_settings(tmp_path, presence_tick_secs=NO_PRESENCE)) as running:
        yield running


async def setup_room(running: Running) -> tuple[dict[str, str], Client, dict[str, Any]]:
    """A room, its connected host, and a joined (not yet connected) viewer."""
    room = await create_room(running)
    host = await Client.connect(running.ws, "host", room["id"], {"token": room["host_token"]})
    viewer = await join(running.base, room["id"], "resumer")
    return room, host, viewer


async def announce(host: Client, text: str) -> None:
    ack = await host.request("announce", {"text": text})
    assert ack["type"] == "ack", ack


async def texts(client: Client, n: int) -> list[tuple[int, str]]:
    """The next n announcements as (seq, text); Client.recv fails on any gap or repeat."""
    out = []
    for _ in range(n):
        msg = await client.recv_type("announcement", TIMEOUT)
        out.append((msg["seq"], msg["data"]["text"]))
    return out


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


# --- resume --------------------------------------------------------------------------------------


async def test_resume_replays_exactly_the_missed_events(quiet: Running) -> None:
    """A viewer back after missing N events gets resumed=true, missed=N, those N in order, then live ones."""
    room, host, viewer = await setup_room(quiet)
    first = await Client.connect(quiet.ws, "viewer", room["id"], {"token": viewer["token"]})
    await announce(host, "seen")
    assert await texts(first, 1) == [(first.welcome["seq"] + 1, "seen")]
    epoch, seq = first.epoch, first.seq
    await first.close()

    missed = [f"missed {i}" for i in range(4)]
    for text in missed:
        await announce(host, text)

    again = await Client.connect(
        quiet.ws, "viewer", room["id"], {"token": viewer["token"]}, resume=(epoch, seq)
    )
    assert again.welcome["resumed"] is True
    assert (again.welcome["missed"], again.welcome["seq"], again.welcome["epoch"]) == (4, seq, epoch)
    assert "snapshot" not in again.welcome
    assert await texts(again, 4) == [(seq + 1 + i, text) for i, text in enumerate(missed)]

    await announce(host, "live")
    assert await texts(again, 1) == [(seq + 5, "live")]
    await again.close()
    await host.close()


async def test_resume_with_nothing_missed(quiet: Running) -> None:
    """Resuming at the head replays nothing (missed=0) and then carries live events."""
    room, host, viewer = await setup_room(quiet)
    first = await Client.connect(quiet.ws, "viewer", room["id"], {"token": viewer["token"]})
    await announce(host, "one")
    await texts(first, 1)
    await first.close()

    again = await Client.connect(
        quiet.ws, "viewer", room["id"], {"token": viewer["token"]}, resume=(first.epoch, first.seq)
    )
    assert (again.welcome["resumed"], again.welcome["missed"]) == (True, 0)
    await announce(host, "two")
    assert await texts(again, 1) == [(first.seq + 1, "two")]
    await again.close()
    await host.close()


async def test_resume_while_events_are_published(quiet: Running) -> None:
    """Resuming while the host keeps publishing loses and repeats nothing."""
    room, host, viewer = await setup_room(quiet)
    await host.close()  # publishing is done in-process below; an unread host client would stall its close
    first = await Client.connect(quiet.ws, "viewer", room["id"], {"token": viewer["token"]})
    epoch, seq = first.epoch, first.seq
    await first.close()
    services = quiet.app.state.services
    total = 40

    async def publish() -> None:
        for i in range(total):
            await actions.do_announce(services, room["id"], wire.Announce(f"n{i}"))
            await asyncio.sleep(0)

    publisher = asyncio.create_task(publish())
    again = await Client.connect(
        quiet.ws, "viewer", room["id"], {"token": viewer["token"]}, resume=(epoch, seq)
    )
    assert again.welcome["resumed"] is True
    got = await texts(again, total)
    await asyncio.wait_for(publisher, TIMEOUT)
    assert got == [(seq + 1 + i, f"n{i}") for i in range(total)]
    await again.close()


async def test_wrong_epoch_gets_snapshot(quiet: Running) -> None:
    """A resume point from another epoch gets resumed=false, reason epoch_changed and a fresh snapshot."""
    room, host, viewer = await setup_room(quiet)
    await announce(host, "latest")
    client = await Client.connect(
        quiet.ws, "viewer", room["id"], {"token": viewer["token"]}, resume=("not-this-epoch", 1)
    )
    welcome = client.welcome
    assert (welcome["resumed"], welcome["reason"]) == (False, "epoch_changed")
    assert welcome["epoch"] != "not-this-epoch"
    assert welcome["snapshot"]["announcement"]["text"] == "latest"
    await announce(host, "after")
    assert await texts(client, 1) == [(welcome["seq"] + 1, "after")]
    await client.close()
    await host.close()


async def test_resume_after_history_expired_gets_snapshot(tmp_path: Path) -> None:
    """Missing more events than the room holds (history_events=5) gets history_expired and a snapshot."""
    async with serve(make_settings(tmp_path, history_events=5, presence_tick_secs=NO_PRESENCE)) as running:
        room, host, viewer = await setup_room(running)
        first = await Client.connect(running.ws, "viewer", room["id"], {"token": viewer["token"]})
        epoch, seq = first.epoch, first.seq
        await first.close()
        for i in range(7):
            await announce(host, f"m{i}")

        again = await Client.connect(
            running.ws, "viewer", room["id"], {"token": viewer["token"]}, resume=(epoch, seq)
        )
        welcome = again.welcome
        assert (welcome["resumed"], welcome["reason"]) == (False, "history_expired")
        assert welcome["seq"] == seq + 7
        assert welcome["snapshot"]["announcement"]["text"] == "m6"
        await announce(host, "live")
        assert await texts(again, 1) == [(seq + 8, "live")]
        await again.close()
        await host.close()


async def test_resume_within_short_history_still_replays(tmp_path: Path) -> None:
    """Missing exactly history_events events still resumes (the boundary is inclusive)."""
    async with serve(make_settings(tmp_path, history_events=5, presence_tick_secs=NO_PRESENCE)) as running:
        room, host, viewer = await setup_room(running)
        first = await Client.connect(running.ws, "viewer", room["id"], {"token": viewer["token"]})
        epoch, seq = first.epoch, first.seq
        await first.close()
        for i in range(5):
            await announce(host, f"m{i}")
        again = await Client.connect(
            running.ws, "viewer", room["id"], {"token": viewer["token"]}, resume=(epoch, seq)
        )
        assert (again.welcome["resumed"], again.welcome["missed"]) == (True, 5)
        assert await texts(again, 5) == [(seq + 1 + i, f"m{i}") for i in range(5)]
        await again.close()
        await host.close()


async def test_resume_beyond_head_gets_snapshot(quiet: Running) -> None:
    """A resume point past the room's last seq (from the future) gets history_expired and a snapshot."""
    room, host, viewer = await setup_room(quiet)
    await announce(host, "only")
    probe = await Client.connect(quiet.ws, "viewer", room["id"], {"token": viewer["token"]})
    await probe.close()
    client = await Client.connect(
        quiet.ws, "viewer", room["id"], {"token": viewer["token"]}, resume=(probe.epoch, probe.seq + 100)
    )
    assert (client.welcome["resumed"], client.welcome["reason"]) == (False, "history_expired")
    assert client.welcome["seq"] == probe.seq
    assert client.welcome["snapshot"]["announcement"]["text"] == "only"
    await client.close()
    await host.close()


async def test_resume_across_restart_gets_snapshot(tmp_path: Path) -> None:
    """After a server restart (history lost, new epoch) a resume gets epoch_changed and the stored state."""
    settings = make_settings(tmp_path, presence_tick_secs=NO_PRESENCE)
    async with serve(settings) as running:
        room, host, viewer = await setup_room(running)
        client = await Client.connect(running.ws, "viewer", room["id"], {"token": viewer["token"]})
        await announce(host, "before restart")
        await texts(client, 1)
        epoch, seq = client.epoch, client.seq
        await client.close()
        await host.close()
    async with serve(settings) as running:
        again = await Client.connect(
            running.ws, "viewer", room["id"], {"token": viewer["token"]}, resume=(epoch, seq)
        )
        assert (again.welcome["resumed"], again.welcome["reason"]) == (False, "epoch_changed")
        assert again.welcome["epoch"] != epoch
        assert again.welcome["snapshot"]["announcement"]["text"] == "before restart"
        await again.close()


# --- slow consumers ------------------------------------------------------------------------------


class RawViewer:
    """A WebSocket client on a bare socket that reads only when told to (sans-I/O websockets)."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, proto: ClientProtocol
    ) -> None:
        self.reader, self.writer, self.proto = reader, writer, proto

    @classmethod
    async def connect(cls, running: Running, room_id: str, token: str) -> RawViewer:
        sock = socket.socket()
        # A small receive window, so the server's writes back up quickly once we stop reading.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        port = int(running.base.rsplit(":", 1)[1])
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
        proto = ClientProtocol(parse_uri(f"{running.ws}/ws/viewer/{room_id}"), max_size=None)
        proto.send_request(proto.connect())
        raw = cls(reader, writer, proto)
        raw.flush()
        events = await raw.read_events()
        assert isinstance(events[0], Response) and events[0].status_code == 101
        proto.send_text(json.dumps({"type": "hello", "data": {"token": token}}).encode())
        raw.flush()
        while not [e for e in events[1:] if b'"type":"welcome"' in getattr(e, "data", b"")]:
            events += await raw.read_events()
        return raw

    def flush(self) -> None:
        self.writer.write(b"".join(self.proto.data_to_send()))

    async def read_events(self) -> list[Any]:
        data = await asyncio.wait_for(self.reader.read(65536), TIMEOUT)
        if data:
            self.proto.receive_data(data)
        else:
            self.proto.receive_eof()
        return list(self.proto.events_received())

    async def close_received(self) -> CloseFrame | None:
        """Read (and drop) everything the server sent until its close frame."""
        while self.proto.close_rcvd is None and not self.reader.at_eof():
            await self.read_events()
        return self.proto.close_rcvd

    def abort(self) -> None:
        self.writer.transport.abort()


async def test_slow_consumer_closed_4008_others_unaffected(tmp_path: Path) -> None:
    """A viewer that stops reading is closed with 4008 while a normal viewer receives every event."""
    settings = make_settings(
        tmp_path,
        send_buffer_limit_bytes=16 * 1024,
        # the host below publishes as fast as it can; that is not what this test is about
        inbound_burst=100_000,
        inbound_rate_per_sec=100_000.0,
        inbound_burst_bytes=10**9,
        inbound_bytes_per_sec=1e9,
        presence_tick_secs=NO_PRESENCE,
    )
    async with serve(settings) as running:
        services = running.app.state.services
        room, host, slow_join = await setup_room(running)
        good_join = await join(running.base, room["id"], "keeps up")
        slow = await RawViewer.connect(running, room["id"], slow_join["token"])
        good = await Client.connect(running.ws, "viewer", room["id"], {"token": good_join["token"]})

        # On loopback the kernel's send buffer autotunes to megabytes; pin the server side of the slow
        # connection to a small one, as on a congested phone link, so its writes back up in the process.
        (slow_conn,) = [
            c
            for c in services.hub.connections(room["id"], "viewer")
            if c.principal.viewer_id == slow_join["viewer_id"]
        ]
        transport = slow_conn.websocket.scope["extensions"][DIRECT_EXTENSION].transport
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

        big = "直" * 500  # the longest announcement: 1.5 KB of UTF-8
        sent = 0
        while not slow_conn.closed:
            assert sent < 2000, "the slow consumer was never cut off"
            await announce(host, f"{sent:04d}{big[4:]}")
            sent += 1
        assert slow_conn.close_code == Close.SLOW_CONSUMER

        got = await texts(good, sent)
        assert [text[:4] for _seq, text in got] == [f"{i:04d}" for i in range(sent)]
        await announce(host, "after the cut")
        assert (await texts(good, 1))[0][1] == "after the cut"

        close = await asyncio.wait_for(slow.close_received(), TIMEOUT)
        assert close is not None and close.code == Close.SLOW_CONSUMER
        await wait_until(
            lambda: len(services.hub.connections(room["id"], "viewer")) == 1,
            "the slow connection to be detached",
        )
        assert services.metrics.slow_disconnects._value.get() == 1
        slow.abort()
        await good.close()
        await host.close()


async def test_backend_outage_at_connect_is_a_clear_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the hub's backend does not answer while a client connects, it gets `unavailable` and 1013."""
    from tests.conftest import make_settings
    from tests.helpers import create_room, join, serve

    async with serve(make_settings(tmp_path)) as running:
        room = await create_room(running)
        viewer = await join(running.base, room["id"], "v")
        backend = running.app.state.services.hub.backend

        async def down(*_args: object) -> None:
            raise ConnectionError("redis is down")

        monkeypatch.setattr(backend, "head", down)
        ws = await websockets.connect(f"{running.ws}/ws/viewer/{room['id']}")
        await ws.send(json.dumps({"type": "hello", "data": {"token": viewer["token"]}}))
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert frame["type"] == "error" and frame["data"]["code"] == "unavailable"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
