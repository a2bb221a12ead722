"""What each role sees on connect, and the reference reducer that applies events to it.

The browser clients apply events the same way (static/js/state.js); tests check, for every event
type, that snapshot + event == a snapshot taken after it.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, union
from sqlmodel import col, select

from server.auth import Principal, Role
from server.domain import PersonalPart, Reducer
from server.rooms import actions
from server.services import Services
from server.storage import Database
from server.storage.batch import BatchGetter, per_database
from server.storage.models import Announcement, Room, RoomViewer

HOST_ANNOUNCEMENTS = 20


def links(services: Services, room: Room) -> dict[str, str]:
    """Paths of the room's three surfaces (the screen path carries its secret key)."""
    screen_key = services.tokens.screen(room.id, room.screen_key_gen)
    return {
        "viewer": f"/r/{room.id}",
        "screen": f"/screen/{room.id}?k={screen_key}",
        "host": f"/host/{room.id}",
    }


def _room(room: Room) -> dict[str, Any]:
    return {
        "id": room.id,
        "title": room.title,
        "status": room.status,
        "started_ms": room.started_ms,
        "ended_ms": room.ended_ms,
    }


def _announcement(item: Announcement) -> dict[str, Any]:
    return {"id": item.id, "text": item.text, "created_ms": item.created_ms}


async def build(services: Services, principal: Principal, *, viewers: int | None = None) -> dict[str, Any]:
    """The snapshot every connection of the principal's role shares, read from storage now."""
    room = await actions.load_room(services.db, principal.room_id)
    recent = await actions.recent_announcements(
        services.db, room.id, HOST_ANNOUNCEMENTS if principal.role is Role.HOST else 1
    )
    if viewers is None:
        viewers = await services.hub.backend.presence_total(room.id)
    snap: dict[str, Any] = {
        "room": _room(room),
        "announcement": _announcement(recent[0]) if recent else None,
        "presence": {"viewers": viewers, "peak": max(room.peak_viewers, viewers)},
    }
    if principal.role is Role.HOST:
        snap["announcements"] = [_announcement(a) for a in recent]
        snap["links"] = links(services, room)
    for contribute in services.registry.contributors:
        await contribute(services, principal, snap)
    return snap


async def private_parts(services: Services, principal: Principal) -> dict[str, Any]:
    """The snapshot's part that is this principal's own (a viewer's ``me``), merged over the shared part."""
    if principal.role is Role.VIEWER and principal.viewer_id is not None:
        name = await actions.viewer_name(services.db, principal.viewer_id)
        return {"me": {"id": principal.viewer_id, "name": name}}
    return {}


async def personal(services: Services, principal: Principal) -> dict[str, Any]:
    """A viewer's private state (their own items, their votes), sent in every welcome, resumed or not."""
    assert principal.viewer_id is not None
    parts = services.registry.personal
    quick = await _quick_reader(services.db, parts).get((principal.room_id, principal.viewer_id))
    out: dict[str, Any] = {}
    if quick is not None:
        for part in parts:
            out.update(part.empty(quick.joined_ms))
        return out
    for part in parts:
        await part.read(services, principal, out)
    return out


@dataclass(frozen=True, slots=True)
class _Quick:
    joined_ms: int | None


@functools.cache  # built once per set of parts (one per app)
def _quick_statement(parts: tuple[PersonalPart, ...]) -> Any:
    """Attendance of the viewers (``:ids``) of a room (``:room``) that no part names: built once, so
    a welcome costs no statement construction (SQLAlchemy's cache key included)."""
    room: Any = bindparam("room")
    ids: Any = bindparam("ids", expanding=True)
    busy = union(*[s for part in parts for s in part.has_state(room, ids)]).subquery()
    return select(RoomViewer.viewer_id, RoomViewer.joined_ms).where(
        RoomViewer.room_id == room,
        col(RoomViewer.viewer_id).in_(ids),
        col(RoomViewer.viewer_id).not_in(select(busy.c[0])),
    )


def _quick_reader(
    db: Database, parts: tuple[PersonalPart, ...]
) -> BatchGetter[tuple[str, str], _Quick | None]:
    """Which viewers of a moment have no private state at all (answered from their attendance row
    alone); ``None`` for the others, read part by part."""

    async def fetch(keys: set[tuple[str, str]]) -> dict[tuple[str, str], _Quick | None]:
        statement = _quick_statement(parts)
        rooms: dict[str, list[str]] = {}
        for room_id, viewer_id in keys:
            rooms.setdefault(room_id, []).append(viewer_id)
        out: dict[tuple[str, str], _Quick | None] = {}
        async with db.engine.connect() as conn:
            for room_id, ids in rooms.items():
                rows = await conn.execute(statement, {"room": room_id, "ids": ids})
                for row in rows:
                    out[(room_id, row[0])] = _Quick(row[1])
        return out

    return per_database(db, "personal-quick", lambda: BatchGetter(fetch, None))


def apply_event(
    snapshot: dict[str, Any], kind: str, data: dict[str, Any], reducers: Mapping[str, Reducer]
) -> dict[str, Any]:
    """Reference reducer: the snapshot after one event (does not modify its input); ``reducers`` are
    the domains' parts (``Registry.reducers``)."""
    snap = copy.deepcopy(snapshot)
    if kind == "room.status":
        snap["room"].update(data)
    elif kind == "announcement":
        snap["announcement"] = dict(data)
        if "announcements" in snap:
            rest = [a for a in snap["announcements"] if a["id"] != data["id"]]
            snap["announcements"] = [dict(data), *rest][:HOST_ANNOUNCEMENTS]
    elif kind == "presence":
        snap["presence"] = dict(data)
    elif kind in reducers:
        reducers[kind](snap, data)
    return snap
