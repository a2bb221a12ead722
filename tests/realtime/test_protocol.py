"""server.realtime.protocol: inbound frame validation, envelopes, close codes, type registries."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from server.auth import Scope
from server.domain import ActionTable, Domain, Registry
from server.domains import default_registry
from server.errors import BadMessage, TooLarge
from server.realtime.protocol import (
    CLIENT_TYPES,
    Close,
    Event,
    direct_frame,
    envelope_parts,
    error_frame,
    join_envelope,
    parse_client_frame,
)
from server.rooms.events import RoomStatusChanged

LIMIT = 16 * 1024


def bad(raw: str | bytes) -> BadMessage:
    with pytest.raises(BadMessage) as info:
        parse_client_frame(raw, LIMIT)
    return info.value


# --- accepted frames ---------------------------------------------------------------------------------


def test_minimal_frame_defaults() -> None:
    """A frame with only a type gets no id and empty data."""
    msg = parse_client_frame('{"type":"ping"}', LIMIT)
    assert (msg.type, msg.id, msg.data) == ("ping", None, {})


def test_string_id_and_data_kept() -> None:
    """A string id and an object data pass through unchanged."""
    msg = parse_client_frame('{"type":"announce","id":"a1","data":{"text":"hi"}}', LIMIT)
    assert (msg.type, msg.id, msg.data) == ("announce", "a1", {"text": "hi"})


def test_integer_id_accepted() -> None:
    """An integer id is accepted as an integer."""
    assert parse_client_frame('{"type":"ping","id":42}', LIMIT).id == 42


def test_null_data_is_empty_object() -> None:
    """``"data": null`` is treated as an empty object."""
    assert parse_client_frame('{"type":"ping","data":null}', LIMIT).data == {}


def test_bytes_frame_accepted() -> None:
    """A UTF-8 bytes frame parses like the same text."""
    msg = parse_client_frame('{"type":"announce","data":{"text":"直播"}}'.encode(), LIMIT)
    assert msg.data == {"text": "直播"}


def test_frame_exactly_at_limit_accepted() -> None:
    """A frame of exactly max_bytes is accepted."""
    head = '{"type":"ping","data":{"p":"'
    raw = head + "x" * (LIMIT - len(head) - 3) + '"}}'
    assert len(raw.encode()) == LIMIT
    assert parse_client_frame(raw, LIMIT).type == "ping"


# --- refused frames ----------------------------------------------------------------------------------


def test_not_json_is_bad_json() -> None:
    """Text that is not JSON is refused with code bad_json."""
    assert bad("{type: ping}").code == "bad_json"


def test_empty_frame_is_bad_json() -> None:
    """An empty frame is refused with code bad_json."""
    assert bad("").code == "bad_json"


@pytest.mark.parametrize("raw", ["[]", '"ping"', "42", "null", "true"])
def test_non_object_refused(raw: str) -> None:
    """A JSON value that is not an object is refused with code bad_message."""
    assert bad(raw).code == "bad_message"


@pytest.mark.parametrize(
    "raw", ["{}", '{"type":""}', '{"type":7}', '{"type":null}', '{"type":["ping"]}', '{"data":{}}']
)
def test_missing_or_non_string_type_refused(raw: str) -> None:
    """A missing, empty or non-string type is refused."""
    assert bad(raw).code == "bad_message"


def test_type_over_64_chars_refused() -> None:
    """A type longer than 64 characters is refused; 64 is accepted."""
    assert parse_client_frame(orjson.dumps({"type": "t" * 64}), LIMIT).type == "t" * 64
    assert bad(orjson.dumps({"type": "t" * 65})).code == "bad_message"


@pytest.mark.parametrize("msg_id", [True, 1.5, {"a": 1}, [1], "i" * 65])
def test_bad_id_refused(msg_id: object) -> None:
    """An id that is a bool, float, object, list or a string over 64 characters is refused."""
    assert bad(orjson.dumps({"type": "ping", "id": msg_id})).code == "bad_message"


@pytest.mark.parametrize("data", [[], "text", 1, True])
def test_data_not_object_refused(data: object) -> None:
    """A data field that is not an object (or null) is refused."""
    assert bad(orjson.dumps({"type": "ping", "data": data})).code == "bad_message"


def test_over_size_refused() -> None:
    """A frame over max_bytes raises TooLarge, before any parsing."""
    with pytest.raises(TooLarge):
        parse_client_frame("x" * (LIMIT + 1), LIMIT)


def test_size_counted_in_utf8_bytes() -> None:
    """The size limit counts UTF-8 bytes, not characters (CJK text is 3 bytes a character)."""
    raw = orjson.dumps({"type": "announce", "data": {"text": "直" * (LIMIT // 3)}}).decode()
    assert len(raw) < LIMIT < len(raw.encode())
    with pytest.raises(TooLarge):
        parse_client_frame(raw, LIMIT)


@pytest.mark.parametrize(
    "raw", [b"\xff\xfe", b'{"type":"ping\xc3"}', b'{"type":"ping","data":{"t":"\xed\xa0\x80"}}']
)
def test_invalid_utf8_bytes_refused(raw: bytes) -> None:
    """Bytes that are not valid UTF-8 are refused with code bad_json."""
    assert bad(raw).code == "bad_json"


def test_lone_surrogate_escape_refused() -> None:
    """A JSON escape for a lone surrogate (not encodable text) is refused with code bad_json."""
    assert bad('{"type":"ping","data":{"t":"\\ud800"}}').code == "bad_json"


def test_str_with_lone_surrogate_refused_not_crash() -> None:
    """A str holding a lone surrogate raises BadMessage, as documented ("never anything else")."""
    bad('{"type":"\ud800"}')


# --- outbound frames ---------------------------------------------------------------------------------


def test_envelope_parts_join_to_valid_json() -> None:
    """prefix + seq + suffix is one JSON object with type, seq, ts and data."""
    data = orjson.dumps({"text": '直播 "quoted" </script>', "n": 1})
    prefix, suffix = envelope_parts("announcement", 1_700_000_000_123, data)
    envelope = orjson.loads(join_envelope(prefix, 17, suffix))
    assert envelope == {
        "type": "announcement",
        "seq": 17,
        "ts": 1_700_000_000_123,
        "data": {"text": '直播 "quoted" </script>', "n": 1},
    }


def test_envelope_type_is_json_escaped() -> None:
    """An event type with quotes or backslashes still yields valid JSON."""
    prefix, suffix = envelope_parts('we"ird\\type', 1, b"{}")
    assert orjson.loads(join_envelope(prefix, 1, suffix))["type"] == 'we"ird\\type'


def test_envelope_parts_reusable_for_many_seqs() -> None:
    """One prefix/suffix pair yields a valid envelope for any seq."""
    prefix, suffix = envelope_parts("presence", 5, b'{"viewers":1,"peak":1}')
    seqs = [orjson.loads(join_envelope(prefix, seq, suffix))["seq"] for seq in (1, 9, 10, 123456789)]
    assert seqs == [1, 9, 10, 123456789]


def test_direct_frame_is_valid_json() -> None:
    """direct_frame yields {"type", "data"} without a seq."""
    assert orjson.loads(direct_frame("pong", {"t": 1})) == {"type": "pong", "data": {"t": 1}}


def test_error_frame_carries_code_message_and_id() -> None:
    """error_frame includes the client's id only when there is one."""
    assert orjson.loads(error_frame("bad_json", "nope", "a1")) == {
        "type": "error",
        "data": {"code": "bad_json", "message": "nope", "id": "a1"},
    }
    assert "id" not in orjson.loads(error_frame("bad_json", "nope"))["data"]


# --- registries and codes ----------------------------------------------------------------------------


def test_close_codes_are_distinct() -> None:
    """No two close code names share a value (an IntEnum would silently alias them)."""
    assert len(Close.__members__) == len({int(c) for c in Close.__members__.values()})


def test_application_close_codes_in_private_range() -> None:
    """Close codes are either registered WebSocket codes (below 3000) or in the 4000-4999 private range."""
    registered = {Close.NORMAL, Close.GOING_AWAY, Close.TOO_BIG, Close.TRY_AGAIN_LATER}
    assert all(c < 3000 for c in registered)
    ours = [c for c in Close if c not in registered]
    assert all(4000 <= c <= 4999 for c in ours)


def test_client_and_direct_types_do_not_overlap() -> None:
    """A message type name means one thing: client types, direct types and events are disjoint."""
    import server.app  # noqa: F401  (defines every event)

    registry = default_registry()
    assert not set(registry.client_types) & set(registry.direct_types)
    assert not set(registry.direct_types) & set(registry.events)
    assert not set(registry.client_types) & set(registry.events)


async def _noop(_ctx: object, _data: dict[str, object]) -> None:
    return None


def test_a_client_type_declared_twice_is_refused() -> None:
    """Two handlers for one client type (in one table, across two domains, or over a core type such as
    ``ping``) are refused when the table or the app's registry is built."""
    table = ActionTable()
    table.action("x.do", scope=Scope.SHOW, doc="one")(_noop)
    with pytest.raises(ValueError):
        table.action("x.do", scope=Scope.SHOW, doc="two")(_noop)
    other = ActionTable()
    other.action("x.do", scope=Scope.SHOW, doc="again")(_noop)
    with pytest.raises(ValueError):
        Registry([Domain("a", actions=table), Domain("b", actions=other)])
    core = ActionTable()
    core.action("ping", scope=Scope.SHOW, doc=CLIENT_TYPES["ping"])(_noop)
    with pytest.raises(ValueError):
        Registry([Domain("c", actions=core)])
    with pytest.raises(ValueError):
        Registry([Domain("a"), Domain("a")])


def test_event_type_declared_twice_refused() -> None:
    """Two domains declaring an event type of the same name are refused when the app is built."""

    @dataclasses.dataclass(frozen=True)
    class Again(Event):
        type = "room.status"

    with pytest.raises(ValueError):
        Registry([Domain("rooms", events=(RoomStatusChanged,)), Domain("other", events=(Again,))])


def test_every_event_type_is_declared_by_a_domain() -> None:
    """Each Event subclass of the server is in exactly one domain's declaration (events_of)."""
    import server.app  # noqa: F401  (imports every domain)

    def subclasses(cls: type[Event]) -> set[type[Event]]:
        out = set(cls.__subclasses__())
        for sub in list(out):
            out |= subclasses(sub)
        return out

    defined = {c for c in subclasses(Event) if c.__module__.startswith("server.") and "type" in c.__dict__}
    assert defined == set(default_registry().events.values())


def test_event_default_payload_is_every_field() -> None:
    """By default every audience sees every field of the event."""
    event = RoomStatusChanged(status="live", started_ms=1, ended_ms=None)
    for audience in event.audiences:
        assert event.payload(audience) == {"status": "live", "started_ms": 1, "ended_ms": None}
