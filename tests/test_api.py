"""The HTTP API over real uvicorn: joining, host tokens, host actions, and a clear error for bad input."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.config import VIEWER_TOKEN_SECS
from server.httputil import MAX_JSON_BODY_BYTES
from server.rooms import actions
from server.rooms.identity import VIEWER_COOKIE
from server.rooms.rules import DISPLAY_NAME_MAX_CHARS
from tests.conftest import make_settings
from tests.helpers import Running, create_room, serve

TIMEOUT = 10.0


@pytest.fixture(scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    """One server for the module; every test makes its own room."""
    async with serve(make_settings(tmp_path_factory.mktemp("api"))) as running:
        yield running


@pytest.fixture(scope="module")
async def shared_http(shared: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=shared.base, timeout=TIMEOUT) as client:
        yield client


@pytest.fixture
def http(shared_http: httpx.AsyncClient) -> httpx.AsyncClient:
    """The module's client, with no cookies left over from another test."""
    shared_http.cookies.clear()
    return shared_http


@pytest.fixture
async def room(shared: Running) -> dict[str, str]:
    return await create_room(shared, "API room")


def error_of(response: httpx.Response, status: int) -> str:
    """The error code of an error response, after checking its status and shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    code: str = body["error"]["code"]
    return code


_addresses = itertools.count(1)


def own_address() -> dict[str, str]:
    """A client address for one request: wrong keys lock their address after a few (rooms/access.py),
    and this module's tests share one server."""
    return {"x-forwarded-for": f"10.99.0.{next(_addresses)}"}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def attendees(running: Running, room_id: str) -> int:
    return await actions.count_attendees(running.app.state.services.db, room_id)


# --- join --------------------------------------------------------------------------------------------


async def test_join_without_name(http: httpx.AsyncClient, room: dict[str, str], shared: Running) -> None:
    """Joining with an empty body makes an anonymous viewer with a valid token."""
    r = await http.post(f"/api/rooms/{room['id']}/join")
    assert r.status_code == 200
    body = r.json()
    assert body["name"] is None and body["room"] == room["id"]
    assert shared.app.state.services.tokens.check_viewer(body["token"]) == body["viewer_id"]
    assert await attendees(shared, room["id"]) == 1


async def test_a_storm_of_new_phones_joins_in_shared_transactions(
    room: dict[str, str], shared: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """60 phones new to the server join at once: 60 viewers, each attending the room once, stored
    in a few transactions; each token names its own viewer."""
    inserter = actions._new_viewers(shared.app.state.services.db)
    batches: list[int] = []
    write = inserter._write

    async def counting(rows: Any) -> Any:
        batches.append(len(rows))
        return await write(rows)

    monkeypatch.setattr(inserter, "_write", counting)

    async def phone(i: int) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=shared.base) as client:  # a cookie jar of its own
            r = await client.post(f"/api/rooms/{room['id']}/join", json={"name": f"p{i}"})
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()
            return body

    joined = await asyncio.gather(*(phone(i) for i in range(60)))
    assert len({j["viewer_id"] for j in joined}) == 60
    assert await attendees(shared, room["id"]) == 60
    assert sum(batches) == 60 and len(batches) < 60
    tokens = shared.app.state.services.tokens
    assert all(tokens.check_viewer(j["token"]) == j["viewer_id"] for j in joined)
    names = await actions.display_names(shared.app.state.services.db, {j["viewer_id"] for j in joined})
    assert sorted(names.values()) == sorted(f"p{i}" for i in range(60))


async def test_join_with_cjk_name(http: httpx.AsyncClient, room: dict[str, str]) -> None:
    """A Chinese name with an emoji is stored as typed (trimmed)."""
    r = await http.post(f"/api/rooms/{room['id']}/join", json={"name": "  小明 🎉 "})
    assert (r.status_code, r.json()["name"]) == (200, "小明 🎉")


async def test_join_name_normalized(http: httpx.AsyncClient, room: dict[str, str]) -> None:
    """A decomposed name is stored in NFC."""
    r = await http.post(f"/api/rooms/{room['id']}/join", json={"name": "Zoe\u0308"})
    assert r.json()["name"] == "Zo\u00eb"


async def test_join_longest_name_accepted(http: httpx.AsyncClient, room: dict[str, str]) -> None:
    """A name of exactly DISPLAY_NAME_MAX_CHARS characters (CJK) is accepted."""
    name = "名" * DISPLAY_NAME_MAX_CHARS
    r = await http.post(f"/api/rooms/{room['id']}/join", json={"name": name})
    assert (r.status_code, r.json()["name"]) == (200, name)


async def test_join_too_long_name_422(http: httpx.AsyncClient, room: dict[str, str], shared: Running) -> None:
    """A name over the limit gets 422 too_long and creates no viewer."""
    r = await http.post(f"/api/rooms/{room['id']}/join", json={"name": "名" * (DISPLAY_NAME_MAX_CHARS + 1)})
    assert error_of(r, 422) == "too_long"
    assert await attendees(shared, room["id"]) == 0


@pytest.mark.parametrize("name", [42, ["a"], {"first": "a"}, "two\nlines", "bell\x07"])
async def test_join_bad_name_422(http: httpx.AsyncClient, room: dict[str, str], name: Any) -> None:
    """A name that is not one line of text gets 422 invalid."""
    r = await http.post(f"/api/rooms/{room['id']}/join", json={"name": name})
    assert error_of(r, 422) == "invalid"


async def test_join_bad_json_400(http: httpx.AsyncClient, room: dict[str, str]) -> None:
    """A body that is not JSON gets 400 bad_json."""
    r = await http.post(
        f"/api/rooms/{room['id']}/join", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert error_of(r, 400) == "bad_json"


async def test_join_invalid_utf8_400(http: httpx.AsyncClient, room: dict[str, str]) -> None:
    """A body that is not valid UTF-8 gets 400 bad_json."""
    r = await http.post(f"/api/rooms/{room['id']}/join", content=b'{"name": "\xff"}')
    assert error_of(r, 400) == "bad_json"


@pytest.mark.parametrize("body", [b"[]", b'"name"', b"null", b"7"])
async def test_join_non_object_body_400(http: httpx.AsyncClient, room: dict[str, str], body: bytes) -> None:
    """A JSON body that is not an object gets 400 bad_message."""
    r = await http.post(f"/api/rooms/{room['id']}/join", content=body)
    assert error_of(r, 400) == "bad_message"


async def test_join_body_over_limit_413(http: httpx.AsyncClient, room: dict[str, str]) -> None:
    """A body over the limit (by Content-Length) gets 413 too_large."""
    body = b'{"name": "' + b"x" * MAX_JSON_BODY_BYTES + b'"}'
    r = await http.post(f"/api/rooms/{room['id']}/join", content=body)
    assert error_of(r, 413) == "too_large"


async def test_join_streamed_body_over_limit_413(http: httpx.AsyncClient, room: dict[str, str]) -> None:
    """A chunked body (no Content-Length) that grows over the limit gets 413 too_large."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(MAX_JSON_BODY_BYTES // 4096 + 2):
            yield b"x" * 4096
        yield b'"}'

    r = await http.post(f"/api/rooms/{room['id']}/join", content=chunks())
    assert error_of(r, 413) == "too_large"


async def test_join_unknown_room_404(http: httpx.AsyncClient) -> None:
    """Joining a room that does not exist gets 404 not_found."""
    r = await http.post("/api/rooms/no-such-room/join", json={"name": "Ann"})
    assert error_of(r, 404) == "not_found"


async def test_join_cross_site_origin_403(
    http: httpx.AsyncClient, room: dict[str, str], shared: Running
) -> None:
    """A join from another site's page (CSRF) gets 403 bad_origin and creates nothing."""
    r = await http.post(
        f"/api/rooms/{room['id']}/join", json={"name": "Ann"}, headers={"origin": "https://evil.example"}
    )
    assert error_of(r, 403) == "bad_origin"
    assert "set-cookie" not in r.headers
    assert await attendees(shared, room["id"]) == 0


async def test_join_same_origin_accepted(
    http: httpx.AsyncClient, room: dict[str, str], shared: Running
) -> None:
    """A join from the server's own pages (same Origin) is accepted."""
    r = await http.post(f"/api/rooms/{room['id']}/join", json={}, headers={"origin": shared.base})
    assert r.status_code == 200


async def test_join_cookie_flags(http: httpx.AsyncClient, room: dict[str, str]) -> None:
    """The viewer cookie is HttpOnly, SameSite=Lax, site-wide and lasts as long as the token."""
    r = await http.post(f"/api/rooms/{room['id']}/join", json={})
    cookie = r.headers["set-cookie"]
    parts = {p.strip().split("=", 1)[0].lower(): p.strip() for p in cookie.split(";")}
    assert cookie.startswith(f"{VIEWER_COOKIE}={r.json()['token']}")
    assert "httponly" in parts
    assert parts["samesite"].lower() == "samesite=lax"
    assert parts["path"] == "Path=/"
    assert parts["max-age"] == f"Max-Age={VIEWER_TOKEN_SECS}"
    assert "secure" not in parts  # plain-HTTP default; see the next test


async def test_join_cookie_secure_when_configured(tmp_path: Path) -> None:
    """With secure_cookies on, the viewer cookie is also Secure."""
    async with serve(make_settings(tmp_path, secure_cookies=True)) as running:
        room = await create_room(running)
        async with httpx.AsyncClient(base_url=running.base, timeout=TIMEOUT) as http:
            r = await http.post(f"/api/rooms/{room['id']}/join", json={})
    assert "secure" in [p.strip().lower() for p in r.headers["set-cookie"].split(";")]


async def test_join_again_with_cookie_keeps_identity(http: httpx.AsyncClient, room: dict[str, str]) -> None:
    """A second join with the cookie keeps the viewer id and may rename."""
    first = (await http.post(f"/api/rooms/{room['id']}/join", json={"name": "Ann"})).json()
    second = (await http.post(f"/api/rooms/{room['id']}/join", json={"name": "Anna"})).json()
    assert second["viewer_id"] == first["viewer_id"] and second["name"] == "Anna"


async def test_join_with_forged_token_401(http: httpx.AsyncClient, room: dict[str, str]) -> None:
    """A join that carries a forged viewer token gets 401."""
    r = await http.post(f"/api/rooms/{room['id']}/join", json={"token": "forged.token.value"})
    assert error_of(r, 401) == "unauthorized"


# --- host token --------------------------------------------------------------------------------------


async def test_host_token_with_right_key(http: httpx.AsyncClient, room: dict[str, str]) -> None:
    """The room's host key is exchanged for a host token that works as a bearer."""
    r = await http.post(f"/api/rooms/{room['id']}/host-token", json={"key": room["host_key"]})
    assert r.status_code == 200
    started = await http.post(f"/api/rooms/{room['id']}/start", headers=bearer(r.json()["token"]))
    assert started.json() == {"status": "live"}


@pytest.mark.parametrize(
    "body", [{"key": "wrong-key-000000"}, {"key": ""}, {}, {"key": 12345}, {"key": "k" * 201}]
)
async def test_host_token_with_wrong_key_401(
    http: httpx.AsyncClient, room: dict[str, str], body: Any
) -> None:
    """A wrong, empty, missing, non-string or oversized key gets 401 bad_key."""
    r = await http.post(f"/api/rooms/{room['id']}/host-token", json=body, headers=own_address())
    assert error_of(r, 401) == "bad_key"


async def test_host_key_of_other_room_401(
    http: httpx.AsyncClient, room: dict[str, str], shared: Running
) -> None:
    """Room A's host key does not give a host token for room B."""
    other = await create_room(shared, "Other")
    r = await http.post(
        f"/api/rooms/{other['id']}/host-token", json={"key": room["host_key"]}, headers=own_address()
    )
    assert error_of(r, 401) == "bad_key"


async def test_host_token_unknown_room_404(http: httpx.AsyncClient) -> None:
    """Asking for a host token of a room that does not exist gets 404."""
    r = await http.post("/api/rooms/no-such-room/host-token", json={"key": "whatever"})
    assert error_of(r, 404) == "not_found"


# --- host endpoints ----------------------------------------------------------------------------------

HOST_ENDPOINTS = [("announcements", {"text": "hello"}), ("start", None), ("end", None)]


@pytest.mark.parametrize(("path", "body"), HOST_ENDPOINTS)
async def test_host_endpoint_without_bearer_401(
    http: httpx.AsyncClient, room: dict[str, str], shared: Running, path: str, body: Any
) -> None:
    """Host actions without an Authorization header get 401 and change nothing."""
    r = await http.post(f"/api/rooms/{room['id']}/{path}", json=body)
    assert error_of(r, 401) == "unauthorized"
    assert (await http.get(f"/api/rooms/{room['id']}")).json()["status"] == "scheduled"


@pytest.mark.parametrize("header", ["Bearer not-a-token", "Basic dXNlcjpwYXNz", "Bearer", "Token abc"])
async def test_host_endpoint_with_wrong_bearer_401(
    http: httpx.AsyncClient, room: dict[str, str], header: str
) -> None:
    """Host actions with a bad or non-bearer Authorization header get 401."""
    for path, body in HOST_ENDPOINTS:
        r = await http.post(f"/api/rooms/{room['id']}/{path}", json=body, headers={"authorization": header})
        assert error_of(r, 401) == "unauthorized", path


async def test_host_endpoint_with_other_rooms_token_401(
    http: httpx.AsyncClient, room: dict[str, str], shared: Running
) -> None:
    """Room A's host token does not act on room B."""
    other = await create_room(shared, "Other")
    r = await http.post(f"/api/rooms/{other['id']}/start", headers=bearer(room["host_token"]))
    assert error_of(r, 401) == "unauthorized"
    assert (await http.get(f"/api/rooms/{other['id']}")).json()["status"] == "scheduled"


async def test_host_endpoint_with_viewer_token_401(http: httpx.AsyncClient, room: dict[str, str]) -> None:
    """A viewer token is not a host token."""
    viewer = (await http.post(f"/api/rooms/{room['id']}/join", json={})).json()
    r = await http.post(f"/api/rooms/{room['id']}/start", headers=bearer(viewer["token"]))
    assert error_of(r, 401) == "unauthorized"


async def test_start_twice_409(http: httpx.AsyncClient, room: dict[str, str]) -> None:
    """Starting a live room again gets 409 bad_state."""
    first = await http.post(f"/api/rooms/{room['id']}/start", headers=bearer(room["host_token"]))
    assert first.json() == {"status": "live"}
    again = await http.post(f"/api/rooms/{room['id']}/start", headers=bearer(room["host_token"]))
    assert error_of(again, 409) == "bad_state"


async def test_end_before_start_409(http: httpx.AsyncClient, room: dict[str, str]) -> None:
    """Ending a room that has not started gets 409 bad_state."""
    r = await http.post(f"/api/rooms/{room['id']}/end", headers=bearer(room["host_token"]))
    assert error_of(r, 409) == "bad_state"


async def test_start_end_start(http: httpx.AsyncClient, room: dict[str, str]) -> None:
    """A room can be started, ended and started again (a second part of the show)."""
    statuses = []
    for path in ("start", "end", "start"):
        r = await http.post(f"/api/rooms/{room['id']}/{path}", headers=bearer(room["host_token"]))
        statuses.append(r.json()["status"])
    assert statuses == ["live", "ended", "live"]


async def test_announcement_created_201(
    http: httpx.AsyncClient, room: dict[str, str], shared: Running
) -> None:
    """A host announcement gets 201 with its id, text and time, and is stored."""
    r = await http.post(
        f"/api/rooms/{room['id']}/announcements",
        json={"text": "限时优惠 🎉"},
        headers=bearer(room["host_token"]),
    )
    assert r.status_code == 201
    body = r.json()
    assert body["text"] == "限时优惠 🎉" and isinstance(body["id"], int) and body["created_ms"] > 0
    stored = await actions.recent_announcements(shared.app.state.services.db, room["id"], 5)
    assert [a.text for a in stored] == ["限时优惠 🎉"]


@pytest.mark.parametrize(
    ("body", "code"), [({"text": ""}, "empty"), ({"text": "x" * 501}, "too_long"), ({"text": 1}, "invalid")]
)
async def test_bad_announcement_422_not_stored(
    http: httpx.AsyncClient, room: dict[str, str], shared: Running, body: Any, code: str
) -> None:
    """An empty, too long or non-string announcement gets 422 and is not stored."""
    r = await http.post(
        f"/api/rooms/{room['id']}/announcements", json=body, headers=bearer(room["host_token"])
    )
    assert error_of(r, 422) == code
    assert await actions.recent_announcements(shared.app.state.services.db, room["id"], 5) == []


# --- room info and health ----------------------------------------------------------------------------


async def test_room_info(http: httpx.AsyncClient, room: dict[str, str]) -> None:
    """GET /api/rooms/{room} gives id, title, status and viewer counts."""
    r = await http.get(f"/api/rooms/{room['id']}")
    assert r.json() == {"id": room["id"], "title": "API room", "status": "scheduled", "viewers": 0, "peak": 0}


async def test_room_info_unknown_404(http: httpx.AsyncClient) -> None:
    """GET of a room that does not exist gets 404 not_found."""
    assert error_of(await http.get("/api/rooms/no-such-room"), 404) == "not_found"


async def test_room_info_overlong_id_404(http: httpx.AsyncClient) -> None:
    """A room id longer than any real one gets 404, not a database error."""
    assert error_of(await http.get(f"/api/rooms/{'r' * 300}"), 404) == "not_found"


async def test_healthz(http: httpx.AsyncClient) -> None:
    """/healthz answers 200 ok."""
    r = await http.get("/healthz")
    assert (r.status_code, r.text) == (200, "ok")


async def test_readyz(http: httpx.AsyncClient) -> None:
    """/readyz answers 200 when the database and the hub answer."""
    r = await http.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"ready": True, "checks": {"database": True, "hub": True}}
