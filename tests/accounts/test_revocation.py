"""A member's open console follows their studio session and role within a second: revoking or
expiring the session, narrowing the role in the room, removing the membership, and turning the
room's host key off are each written straight into the database (as another process would) and
close the consoles they concern ("revoked", close 4001) through the revocation sweep, and no other.
Also across processes: a session revoked through process B closes a console on process A."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, insert, update
from sqlmodel import col
from websockets.exceptions import ConnectionClosed

from server.accounts.identity import STUDIO_COOKIE
from server.auth import MemberRole, Tokens
from server.realtime.protocol import Close
from server.rooms.access import REVOCATION_SWEEP_SECS
from server.rooms.actions import create_room
from server.services import Services
from server.storage import Database, now_ms
from server.storage.accounts import Account, Membership, RoomRole, StudioSession
from server.storage.models import Room
from tests.accounts.test_role_matrix import NOT_THROUGH, Member, add_member, outcome
from tests.conftest import make_settings
from tests.helpers import Client, Running, free_port, serve, spawn, wait_ready

# What the tests allow from the write to the close: the sweep's period (0.5 s), its reads and the
# frames' way back, with both cores busy. The times measured are printed (pytest -s).
CLOSED_WITHIN_SECS = 1.5
TIMEOUT = 10.0
SECRET = "revocation-secret"


@pytest.fixture(scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    """One server for the module; every test makes its own room and accounts."""
    async with serve(make_settings(tmp_path_factory.mktemp("revocation"))) as running:
        yield running


@pytest.fixture
async def other_writer(shared: Running) -> AsyncIterator[Database]:
    """A second engine on the server's database: writes the app is not told about."""
    services: Services = shared.app.state.services
    db = Database(services.db.url)
    yield db
    await db.dispose()


@pytest.fixture
async def room_id(shared: Running) -> str:
    services: Services = shared.app.state.services
    room, _key = await create_room(services.db, title="Revocation room")
    return room.id


def services_of(running: Running) -> Services:
    found: Services = running.app.state.services
    return found


async def member_console(running: Running, room_id: str, member: Member) -> Client:
    token = services_of(running).tokens.member_host(room_id, member.session_id)
    return await Client.connect(running.ws, "host", room_id, {"token": token})


async def host_key_console(running: Running, room_id: str) -> tuple[Client, str]:
    """A console opened with a token of the room's host key, and that token."""
    services = services_of(running)
    async with services.db.session() as session:
        room = await session.get(Room, room_id)
    assert room is not None
    token = services.tokens.host(room.id, room.host_key_gen)
    return await Client.connect(running.ws, "host", room_id, {"token": token}), token


async def write(db: Database, statement: Any) -> float:
    """Run one statement and commit; returns the moment it was committed (perf_counter)."""
    async with db.session() as session:
        await session.exec(statement)
        await session.commit()
    return time.perf_counter()


async def until_closed(client: Client) -> tuple[list[dict[str, Any]], int | None]:
    frames: list[dict[str, Any]] = []
    try:
        while True:
            frames.append(json.loads(await client.ws.recv()))
    except ConnectionClosed:
        pass
    received = client.ws.protocol.close_rcvd
    return frames, received.code if received is not None else None


async def closed_as_revoked(client: Client, since: float, what: str) -> float:
    """The console gets the "revoked" error frame and close 4001 within CLOSED_WITHIN_SECS of
    ``since``; returns how long it took."""
    frames, code = await asyncio.wait_for(until_closed(client), CLOSED_WITHIN_SECS)
    took = time.perf_counter() - since
    assert code == Close.UNAUTHORIZED
    assert [f["data"]["code"] for f in frames if f["type"] == "error"] == ["revoked"]
    print(f"\n{what}: console closed {took * 1000:.0f} ms after the write")
    return took


async def still_open(client: Client) -> None:
    """The connection still answers a ping."""
    await client.ws.send(json.dumps({"type": "ping", "data": {"t": 1}}))
    await client.recv_type("pong", TIMEOUT)


async def hello_refused(running: Running, room_id: str, token: str) -> tuple[str, int | None]:
    """A console hello that is refused: its error code and close code."""
    import websockets

    async with websockets.connect(f"{running.ws}/ws/host/{room_id}") as ws:
        await ws.send(json.dumps({"type": "hello", "data": {"token": token}}))
        client = Client(ws)
        frames, code = await asyncio.wait_for(until_closed(client), TIMEOUT)
    assert not [f for f in frames if f["type"] == "welcome"], frames
    errors = [f["data"]["code"] for f in frames if f["type"] == "error"]
    assert len(errors) == 1, frames
    return errors[0], code


def test_the_sweep_is_frequent_enough() -> None:
    """The sweep runs at least twice a second: what "within a second" rests on."""
    assert REVOCATION_SWEEP_SECS <= 0.5


async def test_a_revoked_session_closes_its_console(
    shared: Running, other_writer: Database, room_id: str
) -> None:
    """Revoking the studio session closes the member's console within a second; its token is refused."""
    member = await add_member(services_of(shared).db, MemberRole.HOST)
    console = await member_console(shared, room_id, member)
    bystander = await member_console(
        shared, room_id, await add_member(services_of(shared).db, MemberRole.HOST)
    )
    since = await write(
        other_writer,
        update(StudioSession).where(col(StudioSession.id) == member.session_id).values(revoked_ms=now_ms()),
    )
    await closed_as_revoked(console, since, "revoked session")
    await still_open(bystander)
    token = services_of(shared).tokens.member_host(room_id, member.session_id)
    assert await hello_refused(shared, room_id, token) == ("revoked", Close.UNAUTHORIZED)
    await bystander.close()


async def test_an_expired_session_closes_its_console(
    shared: Running, other_writer: Database, room_id: str
) -> None:
    """A session past its expiry closes the member's console within a second."""
    member = await add_member(services_of(shared).db, MemberRole.MODERATOR)
    console = await member_console(shared, room_id, member)
    since = await write(
        other_writer,
        update(StudioSession)
        .where(col(StudioSession.id) == member.session_id)
        .values(expires_ms=now_ms() - 1),
    )
    await closed_as_revoked(console, since, "expired session")


async def test_a_disabled_account_closes_its_console(
    shared: Running, other_writer: Database, room_id: str
) -> None:
    """Disabling the account ends its sessions as revoking them does: the console closes within a second."""
    member = await add_member(services_of(shared).db, MemberRole.HOST)
    console = await member_console(shared, room_id, member)
    since = await write(
        other_writer, update(Account).where(col(Account.id) == member.account_id).values(disabled=True)
    )
    await closed_as_revoked(console, since, "disabled account")


async def test_a_narrowed_role_closes_the_console_and_the_new_one_has_the_new_scopes(
    shared: Running, other_writer: Database, room_id: str
) -> None:
    """An override that makes a host an analyst in this room closes their console; reconnected, an
    action the host could do (announce) is refused."""
    member = await add_member(services_of(shared).db, MemberRole.HOST)
    console = await member_console(shared, room_id, member)
    assert outcome(await console.request("announce", {})) not in NOT_THROUGH  # past the scope check
    since = await write(
        other_writer,
        insert(RoomRole).values(room_id=room_id, account_id=member.account_id, role="analyst"),
    )
    await closed_as_revoked(console, since, "narrowed role")
    again = await member_console(shared, room_id, member)
    assert outcome(await again.request("announce", {})) == "forbidden"
    assert outcome(await again.request("item.approve", {})) == "forbidden"
    await again.close()


async def test_a_removed_member_is_closed_and_cannot_reconnect(
    shared: Running, other_writer: Database, room_id: str
) -> None:
    """Removing the membership closes the console within a second; a new hello is refused (forbidden)."""
    member = await add_member(services_of(shared).db, MemberRole.SELLER)
    console = await member_console(shared, room_id, member)
    since = await write(
        other_writer,
        delete(Membership).where(col(Membership.account_id) == member.account_id),
    )
    await closed_as_revoked(console, since, "removed membership")
    token = services_of(shared).tokens.member_host(room_id, member.session_id)
    assert await hello_refused(shared, room_id, token) == ("forbidden", Close.FORBIDDEN)


async def test_turning_the_host_key_off_closes_only_host_key_consoles(
    shared: Running, other_writer: Database, room_id: str
) -> None:
    """With the room's host key turned off, a console opened with it closes within a second, a
    member's console stays open, and the host key's token is refused over HTTP."""
    by_key, token = await host_key_console(shared, room_id)
    member = await member_console(shared, room_id, await add_member(services_of(shared).db, MemberRole.OWNER))
    since = await write(
        other_writer, update(Room).where(col(Room.id) == room_id).values(host_key_enabled=False)
    )
    await closed_as_revoked(by_key, since, "host key turned off")
    await still_open(member)
    assert outcome(await member.request("announce", {})) not in NOT_THROUGH
    async with httpx.AsyncClient(base_url=shared.base, timeout=TIMEOUT) as http:
        refused = await http.get(
            f"/api/rooms/{room_id}/export.json", headers={"authorization": f"Bearer {token}"}
        )
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "revoked"
    await member.close()


# --- two processes on one Redis and one database ------------------------------------------------------


@pytest.fixture(scope="module")
def two_processes(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """`livewall serve` A and B on one Redis and one SQLite file: (A's URL, B's URL, the database URL)."""
    tmp: Path = tmp_path_factory.mktemp("two-processes")
    database_url = f"sqlite:///{tmp / 'shared.db'}"
    shared = ["--database-url", database_url, "--secret-key", SECRET, "--data-dir", str(tmp / "data")]
    ports = [free_port(), free_port()]
    with (
        spawn(
            ["serve", "--port", str(ports[0]), "--redis-url", redis_url, "--log-level", "warning", *shared]
        ),
        spawn(
            ["serve", "--port", str(ports[1]), "--redis-url", redis_url, "--log-level", "warning", *shared]
        ),
    ):
        a, b = (f"http://127.0.0.1:{port}" for port in ports)
        wait_ready(a, 60)
        wait_ready(b, 60)
        yield a, b, database_url


@pytest.mark.redis
async def test_a_session_revoked_through_process_b_closes_a_console_on_process_a(
    two_processes: tuple[str, str, str],
) -> None:
    """The member revokes their studio session on B (B writes it); their console on A closes within a
    second, by A's own sweep."""
    a, b, database_url = two_processes
    db = Database(database_url)
    try:
        room, _key = await create_room(db, title="Two processes")
        member = await add_member(db, MemberRole.HOST)
    finally:
        await db.dispose()
    tokens = Tokens(SECRET)
    console = await Client.connect(
        a.replace("http://", "ws://"),
        "host",
        room.id,
        {"token": tokens.member_host(room.id, member.session_id)},
    )
    async with httpx.AsyncClient(
        base_url=b, timeout=TIMEOUT, cookies={STUDIO_COOKIE: tokens.studio(member.session_id)}
    ) as http:
        revoked = await http.post(f"/studio/sessions/{member.session_id}/revoke", headers={"origin": b})
        since = time.perf_counter()
    assert revoked.status_code == 303 and revoked.headers["location"] == "/studio/signin", revoked.text
    await closed_as_revoked(console, since, "revoked on process B, console on A")
