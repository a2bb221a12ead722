"""server/rooms/identity.py over real uvicorn: one credential, one verdict, whichever way it travels
(HTTP bearer, the console's session cookie, the WebSocket hello's token or cookie)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from server.realtime.protocol import Close
from server.rooms.identity import host_cookie
from tests.conftest import make_settings
from tests.helpers import Running, create_room, serve

TIMEOUT = 10.0
WAYS = ("bearer", "cookie", "hello token", "hello cookie")


@pytest.fixture(scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    async with serve(make_settings(tmp_path_factory.mktemp("identity"))) as running:
        yield running


async def verdict(running: Running, room_id: str, token: str, way: str) -> str:
    """``ok``, or the refusal's code (HTTP 401, or WebSocket close 4001 after an error frame)."""
    cookie = {"cookie": f"{host_cookie(room_id)}={token}"}
    if way in ("bearer", "cookie"):
        headers = {"authorization": f"Bearer {token}"} if way == "bearer" else cookie
        async with httpx.AsyncClient(base_url=running.base, timeout=TIMEOUT) as http:
            answer = await http.get(f"/api/rooms/{room_id}/export.json", headers=headers)
        if answer.status_code == 200:
            return "ok"
        assert answer.status_code == 401, answer.text
        code: str = answer.json()["error"]["code"]
        return code
    hello = {"token": token} if way == "hello token" else {}
    headers = cookie if way == "hello cookie" else {}
    async with websockets.connect(f"{running.ws}/ws/host/{room_id}", additional_headers=headers) as ws:
        await ws.send(json.dumps({"type": "hello", "data": hello}))
        first = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if first["type"] == "welcome":
            return "ok"
        assert first["type"] == "error", first
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == Close.UNAUTHORIZED
        refused: str = first["data"]["code"]
        return refused


async def verdicts(running: Running, room_id: str, token: str) -> dict[str, str]:
    return {way: await verdict(running, room_id, token, way) for way in WAYS}


async def console_opens(running: Running, room_id: str, token: str) -> bool:
    """GET /host/{room} with the session cookie shows the console (else it redirects to the login)."""
    async with httpx.AsyncClient(base_url=running.base, timeout=TIMEOUT) as http:
        page = await http.get(f"/host/{room_id}", headers={"cookie": f"{host_cookie(room_id)}={token}"})
    return page.status_code == 200


@pytest.mark.parametrize("revoke", ["logout", "rotate"])
async def test_one_host_token_one_verdict_on_every_path(shared: Running, revoke: str) -> None:
    """A host token is accepted over HTTP bearer, the session cookie and the WebSocket hello alike,
    and once logged out (or its key replaced) refused as ``revoked`` on all of them."""
    room = await create_room(shared, "Identity room")
    token = room["host_token"]
    assert await verdicts(shared, room["id"], token) == dict.fromkeys(WAYS, "ok")
    assert await console_opens(shared, room["id"], token)
    async with httpx.AsyncClient(base_url=shared.base, timeout=TIMEOUT) as http:
        path = "logout" if revoke == "logout" else "host-key/rotate"
        answer = await http.post(
            f"/api/rooms/{room['id']}/{path}", headers={"authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200, answer.text
    assert await verdicts(shared, room["id"], token) == dict.fromkeys(WAYS, "revoked")
    assert not await console_opens(shared, room["id"], token)


async def test_a_forged_token_is_refused_alike_on_every_path(shared: Running) -> None:
    """A token that is not the server's is ``unauthorized`` on every path, not only on some."""
    room = await create_room(shared, "Forged room")
    assert await verdicts(shared, room["id"], room["host_token"] + "x") == dict.fromkeys(WAYS, "unauthorized")
    assert not await console_opens(shared, room["id"], room["host_token"] + "x")


# Routes a console drives on its session cookie: each refuses another site's page (CSRF) the same way.
SESSION_ROUTES = [
    ("GET", "/api/rooms/{room}/followup"),
    ("POST", "/api/rooms/{room}/products/import"),
    ("POST", "/api/rooms/{room}/screen-link/rotate"),
]


@pytest.mark.parametrize(("method", "path"), SESSION_ROUTES)
async def test_the_session_cookie_is_same_origin_only_on_every_route(
    shared: Running, method: str, path: str
) -> None:
    """On the session cookie another site's request is 403 ``bad_origin``; the same request with the
    token as ``Authorization: Bearer`` (which no other site's page can send) gets past the check."""
    room = await create_room(shared, "Origin room")
    url = path.format(room=room["id"])
    evil = {"origin": "https://evil.example"}
    cookie = {"cookie": f"{host_cookie(room['id'])}={room['host_token']}", **evil}
    token = {"authorization": f"Bearer {room['host_token']}", **evil}
    async with httpx.AsyncClient(base_url=shared.base, timeout=TIMEOUT) as http:
        refused = await http.request(method, url, headers=cookie)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "bad_origin"
        passed = await http.request(method, url, headers=token)
        assert passed.status_code != 403, passed.text
