"""The studio's rooms on the wire: what the room forms and the JSON API send, parsed into typed
values, and rooms and presets shaped into the dicts the studio's pages and the console receive."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from server.errors import InvalidInput
from server.rooms import rules as room_rules
from server.storage.accounts import Preset
from server.storage.models import Room
from server.text import clean_text

STATUSES = ("scheduled", "live", "ended")
DESCRIPTION_MAX_CHARS = 2000
SEARCH_MAX_CHARS = 100
LABEL_MAX_CHARS = 120
PRESET_KINDS = ("discount", "draw")
# A start time further ahead than this is a typo (a year of 20266), not a plan.
MAX_SCHEDULE_AHEAD_MS = 2 * 365 * 24 * 3600 * 1000


@dataclass(frozen=True)
class RoomFields:
    """A room's announcement as the studio edits it."""

    title: str
    scheduled_ms: int | None
    description: str | None


@dataclass(frozen=True)
class Listing:
    """Which rooms the list shows: a status tab, a text in the title, a page (from 1)."""

    status: str | None
    query: str | None
    page: int


def _when(value: object, now: int, keep: int | None) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput("scheduled_ms: the start time must be epoch milliseconds or null")
    if value == keep:
        return value  # unchanged: a room edited after its announced time keeps it
    if value <= now:
        raise InvalidInput("scheduled_ms: the start time must be in the future")
    if value > now + MAX_SCHEDULE_AHEAD_MS:
        raise InvalidInput("scheduled_ms: the start time is more than two years ahead")
    return value


def parse_room(data: Mapping[str, Any], *, now: int, current: Room | None = None) -> RoomFields:
    """A room's title, start time (in the future, or null) and description (at most 2,000 characters).
    Editing ``current``: a field left out keeps its value."""
    title: object = data.get("title", current.title if current else None)
    description: object = data.get("description", current.description if current else None)
    keep = current.scheduled_ms if current else None
    when: object = data.get("scheduled_ms", keep)
    clean = clean_text(description, field="description", max_chars=DESCRIPTION_MAX_CHARS, required=False)
    return RoomFields(room_rules.clean_title(title), _when(when, now, keep), clean)


def parse_listing(params: Mapping[str, str]) -> Listing:
    """The list's query string: ``status`` (scheduled | live | ended), ``q``, ``page``."""
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
    query = (params.get("q") or "").strip() or None
    if query is not None and len(query) > SEARCH_MAX_CHARS:
        raise InvalidInput(f"q: at most {SEARCH_MAX_CHARS} characters")
    raw = params.get("page") or "1"
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        raise InvalidInput("page must be a whole number from 1")
    return Listing(status, query, int(raw))


def parse_enabled(data: Mapping[str, Any]) -> bool:
    value = data.get("enabled")
    if not isinstance(value, bool):
        raise InvalidInput("enabled must be true or false")
    return value


def parse_label(data: Mapping[str, Any]) -> str:
    label = clean_text(data.get("label"), field="label", max_chars=LABEL_MAX_CHARS)
    assert label is not None
    return label


def parse_payload(data: Mapping[str, Any]) -> dict[str, Any]:
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise InvalidInput("payload must be an object (what discount.launch or draw.create takes)")
    return payload


def like_pattern(text: str) -> str:
    """A LIKE pattern for titles containing ``text``, its own wildcards escaped (with ``\\``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


# --- shapes -------------------------------------------------------------------------------------


def room_shape(room: Room) -> dict[str, Any]:
    """A room as the studio's list and room page show it."""
    return {
        "id": room.id,
        "title": room.title,
        "status": room.status,
        "org_id": room.org_id,
        "scheduled_ms": room.scheduled_ms,
        "started_ms": room.started_ms,
        "ended_ms": room.ended_ms,
        "created_ms": room.created_ms,
        "description": room.description,
        "cover": f"/media/{room.cover}" if room.cover else None,
        "peak_viewers": room.peak_viewers,
        "host_key_enabled": room.host_key_enabled,
        "cloned_from": room.cloned_from,
    }


def preset_payload(preset: Preset) -> dict[str, Any]:
    payload = orjson.loads(preset.payload)
    return payload if isinstance(payload, dict) else {}


def preset_shape(preset: Preset) -> dict[str, Any]:
    """A preset as the room page and the console list it."""
    return {
        "id": preset.id,
        "kind": preset.kind,
        "label": preset.label,
        "payload": preset_payload(preset),
        "created_ms": preset.created_ms,
        "launched_ms": preset.launched_ms,
    }
