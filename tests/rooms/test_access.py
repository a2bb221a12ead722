"""server/rooms/access.py over real uvicorn: host key checks off the event loop and throttled, key
rotation, screen-link revocation and logout, each refusing the old credentials on HTTP and WebSocket
and closing the live connections that use them."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from server import auth
from server.auth import SecretChecks
from server.config import HOST_SESSION_SECS
from server.realtime.protocol import Close
from server.rooms import access
from server.rooms.access import LOGIN_PER_ADDRESS, LOGIN_PER_ROOM, REVOCATION_SWEEP_SECS
from server.rooms.identity import host_cookie
from server.services import Services
from server.storage import now_ms
from server.storage.models import RevokedToken
from tests.conftest import make_settings
from tests.helpers import Client, Running, create_room, serve

TIMEOUT = 10.0
_addresses = itertools.count(1)


@pytest.fixture(scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    """One server for the module; every test makes its own room and uses addresses of its own."""
    async with serve(make_settings(tmp_path_factory.mktemp("access"))) as running:
        yield running


@pytest.fixture
async def http(shared: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=shared.base, timeout=TIMEOUT) as client:
        yield client


@pytest.fixture
async def room(shared: Running) -> dict[str, str]:
    return await create_room(shared, "Access room")


@pytest.fixture
def quick_keys(room: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Key checks without scrypt's ~50 ms (the throttle tests make dozens): the room's key is right."""
    monkeypatch.setattr(auth, "verify_secret", lambda secret, stored: secret == room["host_key"])


def services(running: Running) -> Services:
    found: Services = running.app.state.services
    return found


def address() -> dict[str, str]:
    """A client address of its own (uvicorn trusts X-Forwarded-For from 127.0.0.1, as behind Caddy)."""
    n = next(_addresses)
    return {"x-forwarded-for": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def code_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    code: str = response.json()["error"]["code"]
    return code


async def login(http: httpx.AsyncClient, room_id: str, key: str, headers: dict[str, str]) -> httpx.Response:
    return await http.post(f"/api/rooms/{room_id}/host-token", json={"key": key}, headers=headers)


async def until_closed(ws: ClientConnection) -> tuple[list[dict[str, Any]], int | None]:
    """Every frame until the server closes, and its close code."""
    frames: list[dict[str, Any]] = []
    try:
        while True:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)))
    except ConnectionClosed:
        pass
    received = ws.protocol.close_rcvd
    return frames, received.code if received is not None else None


async def closed_as_revoked(client: Client) -> None:
    """The connection gets an error frame ``revoked``, then close 4001."""
    frames, code = await until_closed(client.ws)
    assert code == Close.UNAUTHORIZED
    assert [f["data"]["code"] for f in frames if f["type"] == "error"] == ["revoked"]


async def hello_refused(
    running: Running, role: str, room_id: str, hello: dict[str, Any]
) -> tuple[str, int | None]:
    async with websockets.connect(f"{running.ws}/ws/{role}/{room_id}") as ws:
        await ws.send(json.dumps({"type": "hello", "data": hello}))
        frames, code = await until_closed(ws)
    errors = [f["data"]["code"] for f in frames if f["type"] == "error"]
    assert len(errors) == 1 and not [f for f in frames if f["type"] == "welcome"], frames
    return errors[0], code


async def still_open(client: Client) -> None:
    """The connection still answers a ping."""
    await client.ws.send(json.dumps({"type": "ping", "data": {"t": 1}}))
    await client.recv_type("pong", TIMEOUT)


# --- secret checks off the loop ------------------------------------------------------------------------


def slow_wrong_check(monkeypatch: pytest.MonkeyPatch, secs: float) -> None:
    """Key checks that take ``secs`` of a thread (as scrypt does, releasing the GIL) and fail."""

    def verify(secret: str, stored: str) -> bool:
        time.sleep(secs)
        return False

    monkeypatch.setattr(auth, "verify_secret", verify)


async def test_wrong_keys_in_flight_do_not_hold_up_the_loop(
    shared: Running, http: httpx.AsyncClient, room: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While 8 wrong logins are being checked (0.15 s each), /healthz answers within 0.1 s throughout."""
    slow_wrong_check(monkeypatch, 0.15)
    logins = [asyncio.ensure_future(login(http, room["id"], "wrong", address())) for _ in range(8)]
    await asyncio.sleep(0.05)  # all eight are in
    worst = 0.0
    async with httpx.AsyncClient(base_url=shared.base, timeout=TIMEOUT) as other:
        while not all(t.done() for t in logins):
            started = time.perf_counter()
            assert (await other.get("/healthz")).status_code == 200
            worst = max(worst, time.perf_counter() - started)
            await asyncio.sleep(0.01)
    assert [code_of(t.result(), 401) for t in logins] == ["bad_key"] * 8
    assert worst < 0.1, f"/healthz took {worst * 1000:.0f} ms while keys were checked"


async def test_too_many_checks_at_once_are_refused_quickly(
    shared: Running, http: httpx.AsyncClient, room: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the checks running and waiting, a login is refused at once: 429 too_many_attempts, Retry-After."""
    slow_wrong_check(monkeypatch, 0.3)
    access_ = services(shared).engines.get(access.Access)
    assert access_ is not None
    monkeypatch.setattr(access_, "checks", SecretChecks(at_once=1, waiting=1))
    busy = [asyncio.ensure_future(login(http, room["id"], "wrong", address())) for _ in range(2)]
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    refused = await login(http, room["id"], "wrong", address())
    assert time.perf_counter() - started < 0.2
    assert code_of(refused, 429) == "too_many_attempts" and refused.headers["retry-after"] == "1"
    assert [r.status_code for r in await asyncio.gather(*busy)] == [401, 401]
    access_.checks.close()


async def test_secret_checks_run_in_threads() -> None:
    """SecretChecks hashes and verifies on worker threads, not the caller's."""
    checks = SecretChecks(at_once=2, waiting=0)
    stored = await checks.hash("the-key")
    assert await checks.verify("the-key", stored) and not await checks.verify("other", stored)
    assert checks.busy == 0
    checks.close()


# --- the throttle ----------------------------------------------------------------------------------------


@pytest.mark.usefixtures("quick_keys")
async def test_an_address_is_locked_after_its_free_failures(
    http: httpx.AsyncClient, room: dict[str, str]
) -> None:
    """After 5 wrong keys the address gets 429 too_many_attempts, Retry-After, even with the right key."""
    mine = address()
    for _ in range(LOGIN_PER_ADDRESS.free):
        assert code_of(await login(http, room["id"], "wrong", mine), 401) == "bad_key"
    locked = await login(http, room["id"], room["host_key"], mine)
    assert code_of(locked, 429) == "too_many_attempts"
    assert locked.headers["retry-after"] == "1"
    assert (await login(http, room["id"], room["host_key"], address())).status_code == 200  # others may


@pytest.mark.usefixtures("quick_keys")
async def test_a_right_key_clears_the_address_count(http: httpx.AsyncClient, room: dict[str, str]) -> None:
    """Failures before a successful login do not count towards the next lock."""
    mine = address()
    for _ in range(LOGIN_PER_ADDRESS.free - 1):
        await login(http, room["id"], "wrong", mine)
    assert (await login(http, room["id"], room["host_key"], mine)).status_code == 200
    for _ in range(LOGIN_PER_ADDRESS.free - 1):
        assert code_of(await login(http, room["id"], "wrong", mine), 401) == "bad_key"
    assert (await login(http, room["id"], room["host_key"], mine)).status_code == 200


@pytest.mark.usefixtures("quick_keys")
async def test_a_room_tried_from_many_addresses_is_locked(
    shared: Running, http: httpx.AsyncClient, room: dict[str, str]
) -> None:
    """20 wrong keys from 20 addresses lock the room for every address, not other rooms."""
    for _ in range(LOGIN_PER_ROOM.free):
        assert code_of(await login(http, room["id"], "wrong", address()), 401) == "bad_key"
    assert code_of(await login(http, room["id"], room["host_key"], address()), 429) == "too_many_attempts"
    other = await create_room(shared)
    assert (
        code_of(await login(http, other["id"], "wrong", address()), 401) == "bad_key"
    )  # checked, not locked


@pytest.mark.usefixtures("quick_keys")
async def test_the_login_page_shows_the_lock(
    shared: Running, http: httpx.AsyncClient, room: dict[str, str]
) -> None:
    """The login form answers 429 with Retry-After and says how long to wait."""
    mine = address()
    url = f"/host/{room['id']}/login"
    for _ in range(LOGIN_PER_ADDRESS.free):
        assert (await http.post(url, data={"key": "wrong"}, headers=mine)).status_code == 401
    page = await http.post(url, data={"key": room["host_key"]}, headers=mine)
    assert page.status_code == 429 and page.headers["retry-after"] == "1"
    assert "data-login-throttled" in page.text and host_cookie(room["id"]) not in page.headers.get(
        "set-cookie", ""
    )


# --- logout ----------------------------------------------------------------------------------------------


async def test_logout_revokes_the_token_on_http_and_websocket(
    shared: Running, http: httpx.AsyncClient, room: dict[str, str]
) -> None:
    """After POST .../logout the same token is refused (401 revoked; WebSocket 4001 revoked), and its open
    console is closed; another session of the room stays logged in."""
    token = (await login(http, room["id"], room["host_key"], address())).json()["token"]
    other = (await login(http, room["id"], room["host_key"], address())).json()["token"]
    assert token != other
    console = await Client.connect(shared.ws, "host", room["id"], {"token": token})
    colleague = await Client.connect(shared.ws, "host", room["id"], {"token": other})
    assert (await http.post(f"/api/rooms/{room['id']}/logout", headers=bearer(token))).json() == {"ok": True}
    await closed_as_revoked(console)
    await still_open(colleague)
    assert code_of(await http.post(f"/api/rooms/{room['id']}/start", headers=bearer(token)), 401) == "revoked"
    assert await hello_refused(shared, "host", room["id"], {"token": token}) == (
        "revoked",
        Close.UNAUTHORIZED,
    )
    assert (await http.post(f"/api/rooms/{room['id']}/start", headers=bearer(other))).status_code == 200
    await colleague.close()


async def test_logout_everywhere_revokes_every_session(
    shared: Running, http: httpx.AsyncClient, room: dict[str, str]
) -> None:
    """With everywhere, every host session of the room is logged out; the key still logs in."""
    tokens = [(await login(http, room["id"], room["host_key"], address())).json()["token"] for _ in range(2)]
    consoles = [await Client.connect(shared.ws, "host", room["id"], {"token": t}) for t in tokens]
    answer = await http.post(
        f"/api/rooms/{room['id']}/logout", json={"everywhere": True}, headers=bearer(tokens[0])
    )
    assert answer.json() == {"ok": True}
    for console in consoles:
        await closed_as_revoked(console)
    for token in tokens:
        assert (
            code_of(await http.post(f"/api/rooms/{room['id']}/end", headers=bearer(token)), 401) == "revoked"
        )
    assert (await login(http, room["id"], room["host_key"], address())).status_code == 200


async def test_logout_page_revokes_the_session_cookie(
    shared: Running, http: httpx.AsyncClient, room: dict[str, str]
) -> None:
    """The console's Log out revokes its token: a copy of the cookie no longer opens the console."""
    await http.post(f"/host/{room['id']}/login", data={"key": room["host_key"]}, headers=address())
    token = http.cookies[host_cookie(room["id"])]
    assert (await http.get(f"/host/{room['id']}")).status_code == 200
    assert (await http.post(f"/host/{room['id']}/logout")).status_code == 303
    copy = {"cookie": f"{host_cookie(room['id'])}={token}"}
    async with httpx.AsyncClient(base_url=shared.base, timeout=TIMEOUT) as thief:
        assert (await thief.get(f"/host/{room['id']}", headers=copy)).status_code == 303
        assert (
            code_of(await thief.get(f"/api/rooms/{room['id']}/export.json", headers=bearer(token)), 401)
            == "revoked"
        )


async def test_logout_refuses_bad_input(http: httpx.AsyncClient, room: dict[str, str]) -> None:
    """everywhere must be a boolean (422); no token is 401; a foreign page riding on the cookie is 403."""
    answer = await http.post(
        f"/api/rooms/{room['id']}/logout", json={"everywhere": "yes"}, headers=bearer(room["host_token"])
    )
    assert code_of(answer, 422) == "invalid"
    assert code_of(await http.post(f"/api/rooms/{room['id']}/logout"), 401) == "unauthorized"
    cookie = {"cookie": f"{host_cookie(room['id'])}={room['host_token']}", "origin": "https://evil.example"}
    assert code_of(await http.post(f"/api/rooms/{room['id']}/logout", headers=cookie), 403) == "bad_origin"


async def test_expired_deny_list_entries_are_pruned(
    shared: Running, http: httpx.AsyncClient, room: dict[str, str]
) -> None:
    """Logging out drops entries of tokens that have expired anyway; the new entry lasts a session."""
    db = services(shared).db
    async with db.session() as session:
        session.add(RevokedToken(id="old-one", room_id=room["id"], expires_ms=now_ms() - 1))
        await session.commit()
    before = now_ms()
    await http.post(f"/api/rooms/{room['id']}/logout", headers=bearer(room["host_token"]))
    async with db.session() as session:
        assert await session.get(RevokedToken, "old-one") is None
        entry = await session.get(RevokedToken, auth.token_id(room["host_token"]))
    assert entry is not None and entry.expires_ms >= before + HOST_SESSION_SECS * 1000


# --- rotating the host key -------------------------------------------------------------------------------


async def test_rotating_the_key_revokes_the_old_one_and_its_sessions(
    shared: Running, http: httpx.AsyncClient, room: dict[str, str]
) -> None:
    """The new key logs in, the old one does not; sessions of the old key are refused and closed; the
    caller's new token works."""
    console = await Client.connect(shared.ws, "host", room["id"], {"token": room["host_token"]})
    answer = await http.post(f"/api/rooms/{room['id']}/host-key/rotate", headers=bearer(room["host_token"]))
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    key, token = answer.json()["key"], answer.json()["token"]
    await closed_as_revoked(console)
    assert code_of(await login(http, room["id"], room["host_key"], address()), 401) == "bad_key"
    assert (await login(http, room["id"], key, address())).status_code == 200
    old = room["host_token"]
    assert code_of(await http.post(f"/api/rooms/{room['id']}/start", headers=bearer(old)), 401) == "revoked"
    assert await hello_refused(shared, "host", room["id"], {"token": old}) == ("revoked", Close.UNAUTHORIZED)
    assert (await http.post(f"/api/rooms/{room['id']}/start", headers=bearer(token))).status_code == 200
    renewed = await Client.connect(shared.ws, "host", room["id"], {"token": token})
    await renewed.close()


async def test_rotating_from_the_console_renews_its_cookie(
    shared: Running, http: httpx.AsyncClient, room: dict[str, str]
) -> None:
    """Called with the session cookie (same origin), the answer sets the new session cookie."""
    await http.post(f"/host/{room['id']}/login", data={"key": room["host_key"]}, headers=address())
    old = http.cookies[host_cookie(room["id"])]
    answer = await http.post(f"/api/rooms/{room['id']}/host-key/rotate", headers={"origin": shared.base})
    assert answer.status_code == 200
    assert http.cookies[host_cookie(room["id"])] == answer.json()["token"] != old
    assert (await http.get(f"/host/{room['id']}")).status_code == 200


async def test_rotating_needs_the_host(
    shared: Running, http: httpx.AsyncClient, room: dict[str, str]
) -> None:
    """No token: 401; another room's token: 401; a foreign page on the cookie: 403; no such room: 404."""
    url = f"/api/rooms/{room['id']}/host-key/rotate"
    assert code_of(await http.post(url), 401) == "unauthorized"
    other = await create_room(shared)
    assert code_of(await http.post(url, headers=bearer(other["host_token"])), 401) == "unauthorized"
    cookie = {"cookie": f"{host_cookie(room['id'])}={room['host_token']}", "origin": "https://evil.example"}
    assert code_of(await http.post(url, headers=cookie), 403) == "bad_origin"
    answer = await http.post("/api/rooms/nope/host-key/rotate", headers=bearer(room["host_token"]))
    assert code_of(answer, 404) == "not_found"
    assert (await login(http, room["id"], room["host_key"], address())).status_code == 200  # unchanged


# --- the big-screen link -----------------------------------------------------------------------------------


async def test_a_replaced_screen_link_is_refused_and_its_screens_closed(
    shared: Running, http: httpx.AsyncClient, room: dict[str, str]
) -> None:
    """The old link's page answers 401 revoked and its WebSocket 4001 revoked; an open screen on it is
    closed; the new link works."""
    screen = await Client.connect(shared.ws, "screen", room["id"], {"key": room["screen_key"]})
    answer = await http.post(
        f"/api/rooms/{room['id']}/screen-link/rotate", headers=bearer(room["host_token"])
    )
    assert answer.status_code == 200
    key, link = answer.json()["key"], answer.json()["link"]
    assert link == f"/screen/{room['id']}?k={key}"
    await closed_as_revoked(screen)
    page = await http.get(f"/screen/{room['id']}", params={"k": room["screen_key"]})
    assert page.status_code == 401 and 'data-error-code="revoked"' in page.text
    assert await hello_refused(shared, "screen", room["id"], {"key": room["screen_key"]}) == (
        "revoked",
        Close.UNAUTHORIZED,
    )
    assert (await http.get(link)).status_code == 200
    fresh = await Client.connect(shared.ws, "screen", room["id"], {"key": key})
    await fresh.close()


async def test_replacing_the_screen_link_needs_the_host(
    http: httpx.AsyncClient, room: dict[str, str]
) -> None:
    """The screen's own key is not a host credential."""
    url = f"/api/rooms/{room['id']}/screen-link/rotate"
    assert code_of(await http.post(url, headers=bearer(room["screen_key"])), 401) == "unauthorized"


# --- revocations made elsewhere ----------------------------------------------------------------------------


async def test_the_sweep_closes_what_another_process_revoked(shared: Running, room: dict[str, str]) -> None:
    """A key rotated outside this process (`livewall rooms rotate-key`, another server) closes this
    process's consoles at its next sweep, within REVOCATION_SWEEP_SECS; the screen's link still works."""
    console = await Client.connect(shared.ws, "host", room["id"], {"token": room["host_token"]})
    screen = await Client.connect(shared.ws, "screen", room["id"], {"key": room["screen_key"]})
    started = time.monotonic()
    await access.do_rotate_key(services(shared).db, room["id"])  # no sweep here: as the CLI does it
    await closed_as_revoked(console)
    assert time.monotonic() - started < REVOCATION_SWEEP_SECS + 1
    await still_open(screen)
    await screen.close()


@pytest.mark.redis
async def test_two_servers_on_redis_share_locks_and_revocations(
    tmp_path: Path, redis_clean: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With Redis, an address locked on one server is locked on the other, and a key rotated on one
    closes the consoles of the old key on the other."""
    async with (
        serve(make_settings(tmp_path, redis_url=redis_clean)) as one,
        serve(make_settings(tmp_path, redis_url=redis_clean)) as two,
    ):
        room = await create_room(one)
        monkeypatch.setattr(auth, "verify_secret", lambda secret, stored: secret == room["host_key"])
        mine = address()
        async with httpx.AsyncClient(base_url=one.base, timeout=TIMEOUT) as first:
            for _ in range(LOGIN_PER_ADDRESS.free):
                assert code_of(await login(first, room["id"], "wrong", mine), 401) == "bad_key"
        async with httpx.AsyncClient(base_url=two.base, timeout=TIMEOUT) as second:
            assert (
                code_of(await login(second, room["id"], room["host_key"], mine), 429) == "too_many_attempts"
            )
            console = await Client.connect(two.ws, "host", room["id"], {"token": room["host_token"]})
            async with httpx.AsyncClient(base_url=one.base, timeout=TIMEOUT) as first:
                rotated = await first.post(
                    f"/api/rooms/{room['id']}/host-key/rotate", headers=bearer(room["host_token"])
                )
            assert rotated.status_code == 200
            await closed_as_revoked(console)
            old = bearer(room["host_token"])
            assert code_of(await second.post(f"/api/rooms/{room['id']}/start", headers=old), 401) == "revoked"
