"""The WebSocket endpoint over real uvicorn: every bad input gets a clear error or close code, and only
the offender is affected: another viewer keeps receiving events and the room's data is unchanged."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import websockets
from itsdangerous.timed import TimestampSigner
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from server.auth import ROOM_SCOPES, Principal, Role, Scope
from server.config import (
    HOST_SESSION_SECS,
    INBOUND_BURST,
    MAX_FRAME_BYTES,
    VIEWER_TOKEN_SECS,
)
from server.domains import default_registry
from server.realtime.protocol import Close
from server.rooms import actions, snapshot
from server.rooms.identity import VIEWER_COOKIE
from tests.conftest import make_settings
from tests.helpers import Client, Running, create_room, serve

# Generous: the machine has two cores and other suites run at the same time.
TIMEOUT = 10.0


@dataclass
class Scene:
    """A room with a host and a bystander viewer connected, and an offender who has joined."""

    running: Running
    room: dict[str, str]
    host: Client
    bystander: Client
    offender: dict[str, Any]
    baseline: dict[str, Any]
    markers: int = 0

    @property
    def room_id(self) -> str:
        return self.room["id"]

    def url(self, role: str = "viewer", room_id: str | None = None) -> str:
        return f"{self.running.ws}/ws/{role}/{room_id or self.room_id}"


async def room_state(running: Running, room_id: str) -> dict[str, Any]:
    """What the room holds (status, announcements, products): the host snapshot without the live
    viewer count and the links (the screen link is re-signed, with a new timestamp, each time)."""
    state = await snapshot.build(running.app.state.services, Principal(Role.HOST, room_id))
    del state["presence"], state["links"]
    return state


async def join_viewer(running: Running, room_id: str, name: str) -> dict[str, Any]:
    """Join in-process, as POST /join does (tests/test_api.py covers the HTTP route itself)."""
    services = running.app.state.services
    viewer = await actions.do_join(services, room_id, None, name)
    return {"viewer_id": viewer.id, "token": services.tokens.viewer(viewer.id)}


@pytest.fixture(scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    """One real server for this module (each test has its own room): starting and stopping uvicorn
    per test would cost about a third of a second each, across fifty tests."""
    async with serve(make_settings(tmp_path_factory.mktemp("endpoint"))) as running:
        yield running


@pytest.fixture
async def scene(shared: Running) -> AsyncIterator[Scene]:
    running = shared
    room = await create_room(running)
    bystander_join = await join_viewer(running, room["id"], "bystander")
    offender = await join_viewer(running, room["id"], "offender")
    host = await Client.connect(running.ws, "host", room["id"], {"token": room["host_token"]})
    bystander = await Client.connect(running.ws, "viewer", room["id"], {"token": bystander_join["token"]})
    yield Scene(running, room, host, bystander, offender, await room_state(running, room["id"]))
    for client in (host, bystander):
        await client.close()


async def assert_only_offender_affected(scene: Scene) -> None:
    """The room's data is as before, and the bystander still receives the next event, with no gap."""
    assert await room_state(scene.running, scene.room_id) == scene.baseline
    scene.markers += 1
    text = f"still live {scene.markers}"
    ack = await scene.host.request("announce", {"text": text})
    assert ack["type"] == "ack", ack
    event = await scene.bystander.recv_type("announcement", TIMEOUT)
    assert event["data"]["text"] == text
    scene.baseline = await room_state(scene.running, scene.room_id)


async def offender_client(scene: Scene) -> Client:
    return await Client.connect(scene.running.ws, "viewer", scene.room_id, {"token": scene.offender["token"]})


async def error_for(client: Client) -> dict[str, Any]:
    """The next error frame's data (events in between are skipped, in order)."""
    msg = await client.recv_type("error", TIMEOUT)
    data: dict[str, Any] = msg["data"]
    assert isinstance(data.get("message"), str) and data["message"]
    return data


async def still_answers(client: Client) -> None:
    """The connection is still open and served: a ping gets its pong."""
    await client.ws.send(json.dumps({"type": "ping", "data": {"t": 7}}))
    pong = await client.recv_type("pong", TIMEOUT)
    assert pong["data"]["t"] == 7


async def until_closed(ws: ClientConnection) -> tuple[list[dict[str, Any]], int | None]:
    """Every frame the server sends until it closes, and the close code it sent."""
    frames: list[dict[str, Any]] = []
    try:
        while True:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)))
    except ConnectionClosed:
        pass
    received = ws.protocol.close_rcvd
    return frames, received.code if received is not None else None


async def hello_refused(scene: Scene, url: str, hello: Any) -> tuple[str, int | None]:
    """Send ``hello`` (a dict as JSON, str/bytes as they are); return (error code, close code)."""
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps(hello) if isinstance(hello, dict) else hello)
        frames, code = await until_closed(ws)
    errors = [f for f in frames if f["type"] == "error"]
    assert len(errors) == 1, frames
    assert not [f for f in frames if f["type"] == "welcome"], frames
    assert errors[0]["data"]["message"], frames
    return errors[0]["data"]["code"], code


def signed_long_ago(monkeypatch: pytest.MonkeyPatch, make: Any, age_secs: int) -> str:
    """A token made by ``make()`` as if signed ``age_secs`` ago."""
    with monkeypatch.context() as patch:
        real = TimestampSigner.get_timestamp
        patch.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) - age_secs)
        token: str = make()
    return token


# --- the handshake ---------------------------------------------------------------------------------


async def test_cross_site_origin_refused_with_403(scene: Scene) -> None:
    """A handshake with another site's Origin is refused with HTTP 403 before any WebSocket opens."""
    with pytest.raises(InvalidStatus) as info:
        await websockets.connect(scene.url(), origin="https://evil.example")  # type: ignore[arg-type]
    assert info.value.response.status_code == 403
    await assert_only_offender_affected(scene)


async def test_null_origin_refused_with_403(scene: Scene) -> None:
    """An opaque ("null") Origin, as sent by sandboxed frames, is refused with HTTP 403."""
    with pytest.raises(InvalidStatus) as info:
        await websockets.connect(scene.url(), origin="null")  # type: ignore[arg-type]
    assert info.value.response.status_code == 403


async def test_same_origin_accepted(scene: Scene) -> None:
    """A handshake from the server's own origin is accepted."""
    client = await Client.connect(
        scene.running.ws,
        "viewer",
        scene.room_id,
        {"token": scene.offender["token"]},
        origin=scene.running.base,
    )
    assert client.welcome["role"] == "viewer"
    await client.close()


async def test_unknown_role_path_refused(scene: Scene) -> None:
    """A role that does not exist in the path is closed with 4004 (no such endpoint)."""
    ws = await websockets.connect(scene.url("admin"))
    with pytest.raises(websockets.ConnectionClosed) as info:
        await asyncio.wait_for(ws.recv(), 5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 4004
    await assert_only_offender_affected(scene)


# --- hello and credentials -------------------------------------------------------------------------


async def test_welcome_describes_connection(scene: Scene) -> None:
    """A valid hello gets a welcome with role, viewer id, epoch, seq, heartbeat and a snapshot."""
    client = await offender_client(scene)
    welcome = client.welcome
    assert welcome["role"] == "viewer" and welcome["room_id"] == scene.room_id
    assert welcome["viewer_id"] == scene.offender["viewer_id"]
    assert welcome["resumed"] is False and welcome["reason"] == "fresh"
    assert isinstance(welcome["epoch"], str) and isinstance(welcome["seq"], int)
    assert welcome["heartbeat_secs"] > 0
    assert welcome["snapshot"]["me"] == {"id": scene.offender["viewer_id"], "name": "offender"}
    await client.close()


async def test_unknown_room_closes_4004(scene: Scene) -> None:
    """A hello for a room that does not exist gets not_found, then close 4004."""
    code = await hello_refused(
        scene,
        scene.url(room_id="no-such-room"),
        {"type": "hello", "data": {"token": scene.offender["token"]}},
    )
    assert code == ("not_found", Close.NOT_FOUND)
    await assert_only_offender_affected(scene)


async def test_forged_viewer_token_closes_4001(scene: Scene) -> None:
    """A viewer token with a tampered signature gets unauthorized, then close 4001."""
    head, _, sig = scene.offender["token"].rpartition(".")
    i = len(sig) // 2  # a middle character: the last one may only carry base64 padding bits
    forged = f"{head}.{sig[:i]}{'A' if sig[i] != 'A' else 'B'}{sig[i + 1 :]}"
    code = await hello_refused(scene, scene.url(), {"type": "hello", "data": {"token": forged}})
    assert code == ("unauthorized", Close.UNAUTHORIZED)
    await assert_only_offender_affected(scene)


async def test_garbage_token_closes_4001(scene: Scene) -> None:
    """A token that is not a signed value at all gets close 4001."""
    code = await hello_refused(scene, scene.url(), {"type": "hello", "data": {"token": "x" * 600}})
    assert code == ("unauthorized", Close.UNAUTHORIZED)


async def test_missing_credentials_close_4001(scene: Scene) -> None:
    """A hello without a token (and no cookie) gets close 4001."""
    code = await hello_refused(scene, scene.url(), {"type": "hello", "data": {}})
    assert code == ("unauthorized", Close.UNAUTHORIZED)
    await assert_only_offender_affected(scene)


async def test_expired_viewer_token_closes_4001(scene: Scene, monkeypatch: pytest.MonkeyPatch) -> None:
    """A viewer token past its lifetime gets token_expired, then close 4001."""
    tokens = scene.running.app.state.services.tokens
    old = signed_long_ago(
        monkeypatch, lambda: tokens.viewer(scene.offender["viewer_id"]), VIEWER_TOKEN_SECS + 60
    )
    code = await hello_refused(scene, scene.url(), {"type": "hello", "data": {"token": old}})
    assert code == ("token_expired", Close.UNAUTHORIZED)
    await assert_only_offender_affected(scene)


async def test_expired_host_token_closes_4001(scene: Scene, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host token past the host session lifetime gets token_expired, then close 4001."""
    tokens = scene.running.app.state.services.tokens
    old = signed_long_ago(monkeypatch, lambda: tokens.host(scene.room_id, 1), HOST_SESSION_SECS + 60)
    code = await hello_refused(scene, scene.url("host"), {"type": "hello", "data": {"token": old}})
    assert code == ("token_expired", Close.UNAUTHORIZED)
    await assert_only_offender_affected(scene)


async def test_host_token_of_other_room_closes_4001(scene: Scene) -> None:
    """A valid host token for room A, used on room B, gets close 4001."""
    other = await create_room(scene.running, "Room B")
    code = await hello_refused(
        scene, scene.url("host", other["id"]), {"type": "hello", "data": {"token": scene.room["host_token"]}}
    )
    assert code == ("unauthorized", Close.UNAUTHORIZED)
    await assert_only_offender_affected(scene)


async def test_screen_key_of_other_room_closes_4001(scene: Scene) -> None:
    """A screen key for room A, used on room B, gets close 4001."""
    other = await create_room(scene.running, "Room B")
    code = await hello_refused(
        scene, scene.url("screen", other["id"]), {"type": "hello", "data": {"key": scene.room["screen_key"]}}
    )
    assert code == ("unauthorized", Close.UNAUTHORIZED)


async def test_viewer_token_on_host_endpoint_closes_4001(scene: Scene) -> None:
    """A viewer token does not open the host endpoint."""
    code = await hello_refused(
        scene, scene.url("host"), {"type": "hello", "data": {"token": scene.offender["token"]}}
    )
    assert code == ("unauthorized", Close.UNAUTHORIZED)
    await assert_only_offender_affected(scene)


async def test_token_of_unknown_viewer_closes_4001(scene: Scene) -> None:
    """A correctly signed token for a viewer that was never stored gets close 4001."""
    token = scene.running.app.state.services.tokens.viewer("never-joined")
    code = await hello_refused(scene, scene.url(), {"type": "hello", "data": {"token": token}})
    assert code == ("unauthorized", Close.UNAUTHORIZED)


async def test_first_message_not_hello_closes_4002(scene: Scene) -> None:
    """An action sent before hello gets a protocol error, then close 4002."""
    code = await hello_refused(scene, scene.url(), {"type": "announce", "data": {"text": "hi"}})
    assert code == ("protocol", Close.PROTOCOL)
    await assert_only_offender_affected(scene)


async def test_first_message_bad_json_closes_4002(scene: Scene) -> None:
    """A first frame that is not JSON gets bad_json, then close 4002."""
    code = await hello_refused(scene, scene.url(), "hello?")
    assert code == ("bad_json", Close.PROTOCOL)
    await assert_only_offender_affected(scene)


async def test_first_message_binary_closes_4002(scene: Scene) -> None:
    """A binary first frame gets bad_message, then close 4002."""
    code = await hello_refused(scene, scene.url(), json.dumps({"type": "hello", "data": {}}).encode())
    assert code == ("bad_message", Close.PROTOCOL)


async def test_malformed_resume_closes_4002(scene: Scene) -> None:
    """A hello whose resume point is not {epoch: str, seq: int >= 0} gets bad_message, then close 4002."""
    for resume in (
        "yesterday",
        {"epoch": "e", "seq": -1},
        {"epoch": 5, "seq": 1},
        {"epoch": "e", "seq": True},
    ):
        hello = {"type": "hello", "data": {"token": scene.offender["token"], "resume": resume}}
        assert await hello_refused(scene, scene.url(), hello) == ("bad_message", Close.PROTOCOL)
    await assert_only_offender_affected(scene)


async def test_no_hello_closes_4010(scene: Scene, monkeypatch: pytest.MonkeyPatch) -> None:
    """A socket that never says hello gets hello_timeout, then close 4010 (HELLO_TIMEOUT_SECS shortened)."""
    monkeypatch.setattr("server.realtime.endpoint.HELLO_TIMEOUT_SECS", 0.3)
    async with websockets.connect(scene.url()) as ws:
        frames, code = await until_closed(ws)
    assert [f["data"]["code"] for f in frames] == ["hello_timeout"]
    assert code == Close.HELLO_TIMEOUT
    await assert_only_offender_affected(scene)


async def test_second_hello_refused(scene: Scene) -> None:
    """A second hello gets error protocol (docs/protocol.md); the connection stays open and served."""
    client = await offender_client(scene)
    await client.ws.send(json.dumps({"type": "hello", "id": 1, "data": {"token": scene.offender["token"]}}))
    error = await error_for(client)
    assert (error["code"], error.get("id")) == ("protocol", 1)
    await still_answers(client)
    await assert_only_offender_affected(scene)
    await client.close()


async def test_viewer_cookie_authenticates_hello(scene: Scene) -> None:
    """A hello without a token is accepted with the HttpOnly lw_viewer cookie (the browser's way)."""
    client = await Client.connect(
        scene.running.ws,
        "viewer",
        scene.room_id,
        {},
        additional_headers={"cookie": f"{VIEWER_COOKIE}={scene.offender['token']}"},
    )
    assert client.welcome["viewer_id"] == scene.offender["viewer_id"]
    await client.close()


# --- bad frames after hello ------------------------------------------------------------------------


async def test_malformed_json_gets_bad_json(scene: Scene) -> None:
    """A frame that is not JSON gets error bad_json; the connection stays usable."""
    client = await offender_client(scene)
    await client.ws.send('{"type": "ping",')
    assert (await error_for(client))["code"] == "bad_json"
    await still_answers(client)
    await assert_only_offender_affected(scene)
    await client.close()


@pytest.mark.parametrize("raw", ["[1, 2]", '"announce"', "null", "12"])
async def test_non_object_gets_bad_message(scene: Scene, raw: str) -> None:
    """A JSON frame that is not an object gets error bad_message."""
    client = await offender_client(scene)
    await client.ws.send(raw)
    assert (await error_for(client))["code"] == "bad_message"
    await still_answers(client)
    await assert_only_offender_affected(scene)
    await client.close()


async def test_bad_fields_get_bad_message(scene: Scene) -> None:
    """A frame with a non-string type, a bad id or non-object data gets error bad_message."""
    client = await offender_client(scene)
    for frame in ({"type": 5}, {"type": "ping", "id": True}, {"type": "viewer.rename", "data": ["x"]}):
        await client.ws.send(json.dumps(frame))
        assert (await error_for(client))["code"] == "bad_message"
    await still_answers(client)
    await assert_only_offender_affected(scene)
    await client.close()


async def test_unknown_type_gets_unknown_type(scene: Scene) -> None:
    """A message type nobody handles gets error unknown_type, carrying the client's id."""
    client = await offender_client(scene)
    reply = await client.request("room.explode", {})
    assert reply["type"] == "error"
    assert (reply["data"]["code"], reply["data"]["id"]) == ("unknown_type", "t1")
    await still_answers(client)
    await assert_only_offender_affected(scene)
    await client.close()


async def test_binary_frame_gets_bad_message(scene: Scene) -> None:
    """A binary frame after hello gets error bad_message; the connection stays usable."""
    client = await offender_client(scene)
    await client.ws.send(json.dumps({"type": "ping"}).encode())
    assert (await error_for(client))["code"] == "bad_message"
    await still_answers(client)
    await assert_only_offender_affected(scene)
    await client.close()


async def test_frame_over_16_kib_closes_1009(scene: Scene) -> None:
    """A frame over the 16 KiB limit closes the connection with 1009 (message too big)."""
    client = await offender_client(scene)
    await client.ws.send(json.dumps({"type": "ping", "data": {"pad": "x" * MAX_FRAME_BYTES}}))
    _frames, code = await until_closed(client.ws)
    assert code == Close.TOO_BIG
    await assert_only_offender_affected(scene)


async def test_invalid_utf8_text_frame_closes_1007(scene: Scene) -> None:
    """A text frame that is not valid UTF-8 closes the connection with 1007 (invalid data)."""
    client = await offender_client(scene)
    await client.ws.send(b'{"type":"ping","data":{"t":"\xff"}}', text=True)
    _frames, code = await until_closed(client.ws)
    assert code == 1007
    await assert_only_offender_affected(scene)


async def test_ping_gets_pong(scene: Scene) -> None:
    """ping is answered with pong, echoing t and giving the server clock."""
    client = await offender_client(scene)
    await client.ws.send(json.dumps({"type": "ping", "data": {"t": 123.5}}))
    pong = await client.recv_type("pong", TIMEOUT)
    assert pong["data"]["t"] == 123.5 and isinstance(pong["data"]["server_ms"], int)
    await client.close()


# --- wrong role ------------------------------------------------------------------------------------


def action_kinds(*scopes: Scope) -> list[str]:
    """Every declared client action that needs one of ``scopes`` (all domains, as the app has them)."""
    handlers = default_registry().handlers
    return sorted(kind for kind, handler in handlers.items() if handler.scope in scopes)


async def all_forbidden(connect: Callable[[], Awaitable[Client]], kinds: list[str]) -> None:
    """Each action gets error forbidden (a fresh connection per batch stays inside the flood guard)."""
    assert kinds
    batch = INBOUND_BURST // 2
    for start in range(0, len(kinds), batch):
        client = await connect()
        for kind in kinds[start : start + batch]:
            reply = await client.request(kind, {"text": "x", "name": "x", "id": 1})
            assert (reply["type"], reply["data"]["code"]) == ("error", "forbidden"), kind
        await still_answers(client)
        await client.close()


async def test_viewer_host_actions_forbidden(scene: Scene) -> None:
    """A viewer sending any host action (announce, room.start, ...) gets error forbidden; nothing changes."""
    kinds = action_kinds(*(ROOM_SCOPES - {Scope.READ}))
    assert {"announce", "room.start", "room.end"} <= set(kinds)
    await all_forbidden(lambda: offender_client(scene), kinds)
    await assert_only_offender_affected(scene)


async def test_screen_any_action_forbidden(scene: Scene) -> None:
    """The big screen is read-only: every action of any role gets error forbidden; nothing changes."""

    async def screen() -> Client:
        return await Client.connect(
            scene.running.ws, "screen", scene.room_id, {"key": scene.room["screen_key"]}
        )

    await all_forbidden(screen, action_kinds(Scope.PARTICIPATE, *ROOM_SCOPES))
    await assert_only_offender_affected(scene)


async def test_host_cannot_rename_as_viewer(scene: Scene) -> None:
    """Audience actions are refused to the host (forbidden), not crashed on."""
    reply = await scene.host.request("viewer.rename", {"name": "Host"})
    assert (reply["type"], reply["data"]["code"]) == ("error", "forbidden")
    await assert_only_offender_affected(scene)


# --- host actions with bad content -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"text": ""}, "empty"),
        ({"text": "   "}, "empty"),
        ({}, "empty"),
        ({"text": "直" * 501}, "too_long"),
        ({"text": 42}, "invalid"),
        ({"text": ["a"]}, "invalid"),
        ({"text": "bell\x07"}, "invalid"),
    ],
)
async def test_bad_announcement_refused_and_not_stored(scene: Scene, data: dict[str, Any], code: str) -> None:
    """An empty, too long or non-string announcement gets an invalid-input error and is not stored."""
    reply = await scene.host.request("announce", data)
    assert (reply["type"], reply["data"]["code"]) == ("error", code)
    # assert_only_offender_affected also checks that the bystander's next announcement is the marker
    await assert_only_offender_affected(scene)


async def test_ending_a_scheduled_room_conflicts(scene: Scene) -> None:
    """room.end before room.start gets error bad_state and the room stays scheduled."""
    reply = await scene.host.request("room.end", {})
    assert (reply["type"], reply["data"]["code"]) == ("error", "bad_state")
    await assert_only_offender_affected(scene)
