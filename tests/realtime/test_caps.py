"""Connection caps: per client address (HTTP 429 at the handshake, the forwarded address behind a
trusted proxy) and per identity (the oldest connection closed with 4009)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from server.auth import Principal, Role
from server.realtime.caps import ConnectionCaps, identity
from server.realtime.protocol import Close
from tests.conftest import make_settings
from tests.helpers import Client, Running, create_room, join, serve

TIMEOUT = 10.0


def test_address_cap_counts_and_releases() -> None:
    """The cap's worth of connections enter; the next is refused until one leaves."""
    caps: ConnectionCaps[object] = ConnectionCaps()
    assert [caps.enter_address("10.0.0.1", 2) for _ in range(3)] == [True, True, False]
    assert caps.enter_address("10.0.0.2", 2)
    caps.leave_address("10.0.0.1")
    assert caps.enter_address("10.0.0.1", 2)
    for _ in range(2):
        caps.leave_address("10.0.0.1")
    assert caps.address_count("10.0.0.1") == 0


def test_identity_cap_displaces_the_oldest() -> None:
    """Past the cap, each new connection displaces the oldest; leaving forgets it."""
    caps: ConnectionCaps[str] = ConnectionCaps()
    assert caps.enter_identity("v1", "a", 2) == []
    assert caps.enter_identity("v1", "b", 2) == []
    assert caps.enter_identity("v1", "c", 2) == ["a"]
    caps.leave_identity("v1", "a")  # already displaced: nothing changes
    assert caps.identity_count("v1") == 2
    caps.leave_identity("v1", "b")
    caps.leave_identity("v1", "c")
    assert caps.identity_count("v1") == 0


def test_identities() -> None:
    """A viewer is its id in every room; a host is its login; screens of a room share its link."""
    assert identity(Principal(Role.VIEWER, "r1", viewer_id="v")) == identity(
        Principal(Role.VIEWER, "r2", viewer_id="v")
    )
    host = Principal(Role.HOST, "r1", credential="t1", generation=1)
    assert identity(host) != identity(Principal(Role.HOST, "r1", credential="t2", generation=1))
    screen = Principal(Role.SCREEN, "r1", generation=3)
    assert identity(screen) == identity(Principal(Role.SCREEN, "r1", generation=3))
    assert identity(screen) != identity(Principal(Role.SCREEN, "r2", generation=3))


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async with serve(make_settings(tmp_path, max_conns_per_address=3, max_conns_per_identity=2)) as r:
        yield r


def on_leave(running: Running) -> asyncio.Event:
    """Set when the server stops counting a connection (its handler ends just after the close
    handshake, so the client's close alone does not say the count dropped)."""
    caps = running.app.state.services.hub.caps
    left = asyncio.Event()
    leave = caps.leave_address

    def leave_and_tell(address: str) -> None:
        leave(address)
        left.set()

    caps.leave_address = leave_and_tell
    return left


async def test_connections_over_the_address_cap_get_429(running: Running) -> None:
    """Three sockets from one address (before any hello) are accepted; the fourth is refused with HTTP
    429 and the documented error body; once one closes, a new one is accepted."""
    room = await create_room(running)
    url = f"{running.ws}/ws/viewer/{room['id']}"
    open_ = [await websockets.connect(url) for _ in range(3)]
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(url)
    response = refused.value.response
    assert response.status_code == 429
    assert json.loads(response.body)["error"]["code"] == "too_many_connections"
    left = on_leave(running)
    await open_[0].close()
    await asyncio.wait_for(left.wait(), TIMEOUT)
    assert running.app.state.services.hub.caps.address_count("127.0.0.1") == 2
    again = await websockets.connect(url)
    for ws in [*open_[1:], again]:
        await ws.close()


async def test_the_cap_counts_the_forwarded_address(running: Running) -> None:
    """Behind a trusted proxy (here 127.0.0.1, uvicorn's default FORWARDED_ALLOW_IPS) each forwarded
    address has its own count: a venue's phones are not refused for another address's sockets."""
    room = await create_room(running)
    url = f"{running.ws}/ws/viewer/{room['id']}"

    async def from_(address: str) -> websockets.ClientConnection:
        return await websockets.connect(url, additional_headers={"X-Forwarded-For": address})

    first = [await from_("198.51.100.7") for _ in range(3)]
    with pytest.raises(InvalidStatus) as refused:
        await from_("198.51.100.7")
    assert refused.value.response.status_code == 429
    other = await from_("203.0.113.9")
    assert running.app.state.services.hub.caps.address_count("203.0.113.9") == 1
    for ws in [*first, other]:
        await ws.close()


async def test_a_new_connection_past_the_identity_cap_closes_the_oldest_4009(running: Running) -> None:
    """A viewer's third connection (cap 2) closes its first with 4009; the two newest are served."""
    room = await create_room(running)
    viewer = await join(running.base, room["id"], "tabs")
    hello = {"token": viewer["token"]}
    oldest = await Client.connect(running.ws, "viewer", room["id"], hello)
    middle = await Client.connect(running.ws, "viewer", room["id"], hello)
    newest = await Client.connect(running.ws, "viewer", room["id"], hello)
    with pytest.raises(ConnectionClosed):
        while True:
            await oldest.recv(TIMEOUT)
    assert oldest.ws.close_code == Close.REPLACED
    for client in (middle, newest):
        await client.ws.send(json.dumps({"type": "ping", "data": {"t": 3}}))
        assert (await client.recv_type("pong", TIMEOUT))["data"]["t"] == 3
    hub = running.app.state.services.hub
    assert len([c for c in hub.connections(room["id"], "viewer") if not c.closed]) == 2
    for client in (middle, newest):
        await client.close()
