"""The wire contract, pure (no I/O): envelopes out, client messages in, close codes, the type registry.

Every message type listed here is documented in docs/protocol.md; a test keeps the two in step.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from server.errors import BadMessage, TooLarge


class Close(enum.IntEnum):
    """WebSocket close codes this server sends (docs/protocol.md, "Close codes")."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutting down
    TOO_BIG = 1009  # frame over the size limit (sent by the WebSocket layer itself)
    TRY_AGAIN_LATER = 1013  # a backend (Redis, the database) did not answer while connecting
    UNAUTHORIZED = 4001  # missing, forged or expired credentials
    FORBIDDEN = 4003  # wrong role for this endpoint, or Origin not allowed
    NOT_FOUND = 4004  # no such room
    SLOW_CONSUMER = 4008  # could not keep up: unsent data over the limit
    REPLACED = 4009  # a newer connection of the same identity took this one's place (per-identity cap)
    HELLO_TIMEOUT = 4010  # no hello in time
    PROTOCOL = 4002  # the first message was not hello, or hello was malformed
    FLOOD = 4029  # sent faster than the inbound limits allow for too long


# Client -> server message types. Value: one line of documentation (docs/protocol.md has the full text).
CLIENT_TYPES: dict[str, str] = {
    "hello": "first message on every connection: credentials and optional resume point",
    "ping": "application heartbeat; the server answers pong",
}

# Server -> client frames that are not room events (they carry no seq).
DIRECT_TYPES: dict[str, str] = {
    "welcome": "answer to hello: who you are, and a snapshot or the resume result",
    "pong": "answer to ping, with the server clock",
    "ack": "an action succeeded; carries the client's id and the result",
    "error": "an action or frame was refused; stable code and a message",
}


@dataclass(frozen=True)
class ClientMessage:
    """A parsed client frame: ``{"type": str, "id"?: str|int, "data"?: object}``."""

    type: str
    id: str | int | None
    data: dict[str, Any]


MAX_ID_CHARS = 64


def parse_client_frame(raw: str | bytes, max_bytes: int) -> ClientMessage:
    """Validate one inbound frame. Raises BadMessage or TooLarge; never anything else."""
    size = len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
    if size > max_bytes:
        raise TooLarge(f"frame is {size} bytes; the limit is {max_bytes}")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadMessage("frame is not valid JSON", code="bad_json") from None
    if not isinstance(obj, dict):
        raise BadMessage("frame must be a JSON object")
    kind = obj.get("type")
    if not isinstance(kind, str) or not kind or len(kind) > 64:
        raise BadMessage('frame needs a string "type"')
    msg_id = obj.get("id")
    if msg_id is not None and not (
        (isinstance(msg_id, str) and len(msg_id) <= MAX_ID_CHARS)
        or (isinstance(msg_id, int) and not isinstance(msg_id, bool))
    ):
        raise BadMessage('"id" must be a short string or an integer')
    data = obj.get("data", {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadMessage('"data" must be a JSON object')
    return ClientMessage(kind, msg_id, data)


def dumps(obj: Any) -> bytes:
    """JSON encoding used for every frame (orjson: compact, UTF-8, fast)."""
    return orjson.dumps(obj)


def direct_frame(kind: str, data: Any) -> bytes:
    """A frame outside the room's sequence (welcome, ack, error, pong)."""
    return b'{"type":' + orjson.dumps(kind) + b',"data":' + orjson.dumps(data) + b"}"


def error_frame(code: str, message: str, msg_id: str | int | None = None) -> bytes:
    data: dict[str, Any] = {"code": code, "message": message}
    if msg_id is not None:
        data["id"] = msg_id
    return direct_frame("error", data)


def envelope_parts(kind: str, ts_ms: int, data_json: bytes) -> tuple[bytes, bytes]:
    """The envelope split around its sequence number, so the sequencer (in-process or a Redis
    script) can produce the final bytes with one concatenation: ``prefix + str(seq) + suffix``."""
    prefix = b'{"type":' + orjson.dumps(kind) + b',"seq":'
    suffix = b',"ts":' + str(ts_ms).encode() + b',"data":' + data_json + b"}"
    return prefix, suffix


def join_envelope(prefix: bytes, seq: int, suffix: bytes) -> bytes:
    return prefix + str(seq).encode() + suffix


# --- Events ------------------------------------------------------------------------------------------

AUDIENCES = ("viewer", "screen", "host")
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


class Event:
    """A room event: one ``type`` name, sent to a set of audiences, each with its own payload.

    Subclasses are dataclasses documented in docs/protocol.md. ``payload(audience)`` may differ
    per audience (the host sees more than the screen), and is encoded once per audience.
    """

    type: ClassVar[str]
    audiences: ClassVar[tuple[str, ...]] = AUDIENCES

    def payload(self, audience: str) -> dict[str, Any]:
        """What ``audience`` sees of this event (default: every field, for everyone).

        A shallow dict: the frame is encoded once per audience (orjson encodes nested dataclasses
        itself), so copying a tick's batch of items deeply (``dataclasses.asdict``) was wasted work.
        """
        names = _FIELD_NAMES.get(type(self))
        if names is None:
            names = _FIELD_NAMES[type(self)] = tuple(f.name for f in dataclasses.fields(self))  # type: ignore[arg-type]
        return {name: getattr(self, name) for name in names}
