"""Sources (docs/revenue.md): the entry link's ``src`` code carried onto a viewer's attendance, and
read back for the intents, claims and orders that follow. An unknown or archived code is ignored."""

from __future__ import annotations

import re
from collections.abc import Collection

from sqlmodel import col, select

from server.storage import Database
from server.storage.batch import BatchGetter, per_database
from server.storage.models import RoomViewer, SourceCode
from server.ttlcache import TtlCache

# Codes are checked on every scan of a poster: a QR storm costs one read per code per period. An
# archive made in another process stops counting new scans within this time.
SOURCE_CACHE_SECS = 30.0
CODE_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,16}")


def _codes(db: Database) -> TtlCache[str, str | None]:
    return per_database(db, "source-codes", lambda: TtlCache(SOURCE_CACHE_SECS, max_entries=50_000))


async def known_source(db: Database, room_id: str, code: object) -> str | None:
    """``code`` if it is a live source code of this room, else None (never an error)."""
    if not isinstance(code, str) or not CODE_SHAPE.fullmatch(code):
        return None

    async def load() -> str | None:
        async with db.session() as session:
            row = await session.get(SourceCode, code)
        return None if row is None or row.archived else row.room_id

    return code if await _codes(db).get(code, load) == room_id else None


def forget_source(db: Database, code: str) -> None:
    """A code archived or created in this process counts (or stops counting) at once."""
    _codes(db).forget(code)


def touch(attendance: RoomViewer, ref: str | None) -> None:
    """First touch is kept once set; last touch follows every code that comes."""
    if ref is None:
        return
    attendance.last_ref = ref
    if attendance.first_ref is None:
        attendance.first_ref = ref


async def viewer_refs(db: Database, room_id: str, viewer_id: str | None) -> RoomViewer | None:
    """The viewer's attendance of the room (``first_ref``, ``last_ref``, ``last_message_id``)."""
    if viewer_id is None:
        return None
    async with db.session() as session:
        return await session.get(RoomViewer, (room_id, viewer_id))


async def last_refs(db: Database, room_id: str, viewer_ids: Collection[str]) -> dict[str, str | None]:
    """Each viewer's last-touch source in the room (one query; those without attendance are left out)."""
    if not viewer_ids:
        return {}
    async with db.session() as session:
        rows = await session.exec(
            select(RoomViewer.viewer_id, RoomViewer.last_ref).where(
                RoomViewer.room_id == room_id, col(RoomViewer.viewer_id).in_(list(viewer_ids))
            )
        )
        return dict(rows.all())


def _ref_reader(db: Database) -> BatchGetter[tuple[str, str], str | None]:
    async def fetch(keys: set[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        found: dict[tuple[str, str], str | None] = {}
        for room_id in {room for room, _ in keys}:
            refs = await last_refs(db, room_id, [v for r, v in keys if r == room_id])
            found.update(((room_id, v), ref) for v, ref in refs.items())
        return found

    return per_database(db, "viewer-refs", lambda: BatchGetter(fetch, None))


async def last_ref(db: Database, room_id: str, viewer_id: str | None) -> str | None:
    """The viewer's last-touch source now (the reads of one moment are one query: an intent storm)."""
    if viewer_id is None:
        return None
    return await _ref_reader(db).get((room_id, viewer_id))
