"""Room actions: check_* validates, do_* changes state, commits, then publishes the event."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import asdict

from sqlalchemy import func, update
from sqlmodel import col, select

from server.auth import hash_secret, new_host_key
from server.errors import NotFound, Unauthorized
from server.rooms import rules, sources, wire
from server.rooms.events import AnnouncementPosted, PresenceChanged, RoomStatusChanged
from server.services import Services
from server.storage import Database, now_ms
from server.storage.accounts import DEFAULT_ORG
from server.storage.batch import (
    MISSING,
    BatchGetter,
    BatchLinkedInserter,
    Missing,
    per_database,
    shared_inserter,
)
from server.storage.models import Announcement, Product, Room, RoomViewer, Viewer
from server.ttlcache import TtlCache


def new_room_id() -> str:
    """8 URL-safe characters (48 random bits): short enough for a QR code, too many to guess."""
    return secrets.token_urlsafe(6)


async def create_room(
    db: Database,
    *,
    title: str,
    products: Sequence[wire.ProductSeed] = (),
    org_id: str = DEFAULT_ORG,
    scheduled_ms: int | None = None,
    description: str | None = None,
    cover: str | None = None,
    cloned_from: str | None = None,
) -> tuple[Room, str]:
    """Create a room (and optional products) in an organisation, announced for ``scheduled_ms`` if
    given; returns it with the host key, shown only now."""
    clean = rules.clean_title(title)
    host_key = new_host_key()
    now = now_ms()
    hashed = await asyncio.to_thread(hash_secret, host_key)  # scrypt: tens of ms of CPU, off the loop
    room = Room(
        id=new_room_id(),
        title=clean,
        created_ms=now,
        host_key_hash=hashed,
        org_id=org_id,
        scheduled_ms=scheduled_ms,
        description=description,
        cover=cover,
        cloned_from=cloned_from,
    )
    async with db.session() as session:
        session.add(room)
        await session.flush()
        for item in products:
            session.add(Product(room_id=room.id, created_ms=now, **asdict(item)))
        await session.commit()
    return room, host_key


async def load_room(db: Database, room_id: str) -> Room:
    """The room, or NotFound."""
    if not isinstance(room_id, str) or len(room_id) > 32:
        raise NotFound("no such room")
    async with db.session() as session:
        room = await session.get(Room, room_id)
    if room is None:
        raise NotFound("no such room")
    return room


# Connects read the room to check credentials. A reconnect storm (thousands of phones within seconds)
# should not mean thousands of identical reads, so connects share a room row for at most this long;
# a replaced host key or revoked screen link therefore takes effect within this time.
ROOM_CACHE_SECS = 2.0


def _rooms(db: Database) -> TtlCache[str, Room]:
    """The room rows of ``db`` this process holds (one cache per app's database, none module-wide)."""
    return per_database(db, "rooms", lambda: TtlCache(ROOM_CACHE_SECS, max_entries=10_000))


async def load_room_cached(db: Database, room_id: str) -> Room:
    """The room, from a cache of at most ROOM_CACHE_SECS (for connection checks only)."""
    return await _rooms(db).get(room_id, lambda: load_room(db, room_id))


def forget_room_cached(db: Database, room_id: str) -> None:
    """Drop this process's cached row (its key generations changed: server/rooms/access.py)."""
    _rooms(db).forget(room_id)


async def _transition(services: Services, room_id: str, command: str) -> Room:
    room = await load_room(services.db, room_id)
    status = rules.next_status(room.status, command)
    now = now_ms()
    values: dict[str, object] = {"status": status}
    if command == "start":
        values.update(started_ms=now, ended_ms=None)
    else:
        values["ended_ms"] = now
    async with services.db.session() as session:
        # Conditional on the status we read: a double click or two co-hosts start it once.
        result = await session.exec(
            update(Room).where(col(Room.id) == room_id, col(Room.status) == room.status).values(**values)
        )
        await session.commit()
    if result.rowcount != 1:
        rules.next_status(status, command)  # raises Conflict with the state someone else just set
    for key, value in values.items():
        setattr(room, key, value)
    await services.hub.publish(
        room_id, RoomStatusChanged(status=room.status, started_ms=room.started_ms, ended_ms=room.ended_ms)
    )
    return room


async def do_start(services: Services, room_id: str) -> Room:
    """Go live (and tell the domains that react to it: go-live reminders)."""
    room = await _transition(services, room_id, "start")
    for hook in services.registry.live_hooks:
        await hook(services, room_id)
    return room


async def do_end(services: Services, room_id: str) -> Room:
    """End the live session."""
    return await _transition(services, room_id, "end")


async def do_announce(services: Services, room_id: str, announce: wire.Announce) -> Announcement:
    """Store an announcement and show it on every surface."""
    clean = announce.text
    await load_room_cached(services.db, room_id)
    created = now_ms()
    values: dict[str, object] = {"room_id": room_id, "text": clean, "created_ms": created}
    # One INSERT ... RETURNING, shared with announcements of the same moment: a host announcing ten
    # times a second must not wait on four statements a time behind the database's single thread.
    new_id = await shared_inserter(services.db, Announcement).add(values)
    item = Announcement(id=new_id, room_id=room_id, text=clean, created_ms=created)
    await services.hub.publish(room_id, AnnouncementPosted(id=new_id, text=clean, created_ms=created))
    return item


async def do_join(
    services: Services,
    room_id: str,
    viewer_id: str | None,
    name: object,
    *,
    locale: str | None = None,
    first_locale: str | None = None,
    src: object = None,
) -> Viewer:
    """Record a viewer's attendance; creates the viewer identity if it is new (or unknown).
    ``locale``: the language the phone shows (kept); ``first_locale``: a guess kept only for a
    viewer whose language is not known yet; ``src``: the entry link's source code (docs/revenue.md),
    ignored unless it is a live code of this room."""
    await load_room_cached(services.db, room_id)
    ref = await sources.known_source(services.db, room_id, src)
    clean = rules.clean_display_name(name)
    now = now_ms()
    if not viewer_id:
        # A phone new to us (a QR-code scan storm is thousands a minute): its identity and attendance
        # go in with those of the same moment, in one transaction.
        fresh = Viewer(
            id=secrets.token_hex(8), display_name=clean, locale=locale or first_locale, created_ms=now
        )
        attendance = {
            "room_id": room_id,
            "viewer_id": fresh.id,
            "joined_ms": now,
            "first_ref": ref,
            "last_ref": ref,
        }
        await _new_viewers(services.db).add((fresh.model_dump(), attendance))
        return fresh
    async with services.db.session() as session:
        viewer = await session.get(Viewer, viewer_id)
        if viewer is None:
            viewer = Viewer(
                id=secrets.token_hex(8), display_name=clean, locale=locale or first_locale, created_ms=now
            )
            session.add(viewer)
        else:
            if name is not None:
                viewer.display_name = clean
            if locale is not None or viewer.locale is None:
                viewer.locale = locale or first_locale or viewer.locale
            session.add(viewer)
        await session.flush()
        present = await session.get(RoomViewer, (room_id, viewer.id))
        if present is None:
            session.add(
                RoomViewer(room_id=room_id, viewer_id=viewer.id, joined_ms=now, first_ref=ref, last_ref=ref)
            )
        elif ref is not None:
            sources.touch(present, ref)
            session.add(present)
        await session.commit()
        await session.refresh(viewer)
    return viewer


def _new_viewers(db: Database) -> BatchLinkedInserter:
    tables = (Viewer.__table__, RoomViewer.__table__)  # type: ignore[attr-defined]
    return per_database(db, "new-viewers", lambda: BatchLinkedInserter(db, tables))


# Display names for new posts come from here. A rename in this process updates it at once; in another
# process (several servers on Redis) the new name shows on posts within this time.
NAME_CACHE_SECS = 30.0


def _names(db: Database) -> TtlCache[str, str | None]:
    return per_database(db, "names", lambda: TtlCache(NAME_CACHE_SECS, max_entries=200_000))


async def display_name_cached(db: Database, viewer_id: str) -> str | None:
    """A viewer's display name from a short cache (the hot path of a comment storm); misses of the
    same moment are read together."""
    reader = _name_reader(db)

    async def load() -> str | None:
        name = await reader.get(viewer_id)
        return None if isinstance(name, Missing) else name

    return await _names(db).get(viewer_id, load)


def _name_reader(db: Database) -> BatchGetter[str, str | Missing | None]:
    async def fetch(ids: set[str]) -> dict[str, str | Missing | None]:
        return dict(await display_names(db, ids))

    return per_database(db, "viewer-names", lambda: BatchGetter(fetch, MISSING))


async def viewer_name(db: Database, viewer_id: str) -> str | None:
    """A stored viewer's display name, read now (reads of the same moment go together); raises
    Unauthorized if no such viewer exists (a token outliving its viewer)."""
    name = await _name_reader(db).get(viewer_id)
    if isinstance(name, Missing):
        raise Unauthorized("unknown viewer; join again")
    return name


async def display_names(db: Database, viewer_ids: set[str]) -> dict[str, str | None]:
    """Several viewers' display names in one read."""
    if not viewer_ids:
        return {}
    async with db.session() as session:
        rows = await session.exec(
            select(Viewer.id, Viewer.display_name).where(col(Viewer.id).in_(sorted(viewer_ids)))
        )
        return dict(rows.all())


async def do_rename(services: Services, viewer_id: str, rename: wire.Rename) -> Viewer:
    """Change (or clear, for anonymous) a viewer's display name."""
    clean = rename.name
    async with services.db.session() as session:
        viewer = await session.get(Viewer, viewer_id)
        if viewer is None:
            raise Unauthorized("unknown viewer; join again")
        viewer.display_name = clean
        session.add(viewer)
        await session.commit()
        await session.refresh(viewer)
    _names(services.db).put(viewer_id, viewer.display_name)
    return viewer


async def on_presence(services: Services, room_id: str, viewers: int) -> None:
    """Raise the stored peak if needed and publish the new count, unless a newer one has been computed.

    With several processes, two counts can be computed one after the other and reach this point in
    the other order; the backend publishes a count only while it is still the room's total.
    """
    async with services.db.session() as session:
        await session.exec(
            update(Room)
            .where(col(Room.id) == room_id, col(Room.peak_viewers) < viewers)
            .values(peak_viewers=viewers)
        )
        await session.commit()
        peak = (await session.exec(select(Room.peak_viewers).where(Room.id == room_id))).first()
    if peak is None:
        return
    await services.hub.publish(room_id, PresenceChanged(viewers=viewers, peak=peak), if_presence=viewers)


async def recent_announcements(db: Database, room_id: str, limit: int) -> list[Announcement]:
    async with db.session() as session:
        result = await session.exec(
            select(Announcement)
            .where(Announcement.room_id == room_id)
            .order_by(col(Announcement.id).desc())
            .limit(limit)
        )
        return list(result.all())


async def room_products(db: Database, room_id: str) -> list[Product]:
    async with db.session() as session:
        result = await session.exec(
            select(Product)
            .where(Product.room_id == room_id, col(Product.archived).is_(False))
            .order_by(col(Product.id))
        )
        return list(result.all())


async def count_attendees(db: Database, room_id: str) -> int:
    async with db.session() as session:
        result = await session.exec(
            select(func.count()).select_from(RoomViewer).where(RoomViewer.room_id == room_id)
        )
        return int(result.one())
