"""What the questions domain reads and writes besides its actions' own statements: items, settings,
sanctions and the moderation log, with the short caches the comment path shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlmodel import col, select

from server.auth import Principal
from server.errors import NotFound
from server.questions import rules
from server.storage import Database, now_ms
from server.storage.batch import per_database, shared_inserter
from server.storage.models import Item, ModerationLog, RoomSettings, Sanction
from server.ttlcache import TtlCache

TOP_QUESTIONS = 10


@dataclass(slots=True)
class NewItem:
    """An item just stored by a viewer, with the columns of ``Item``: the comment path builds and
    inserts it without the ORM (storage.batch.BatchInserter), and it is read like an ``Item``."""

    id: int
    room_id: str
    viewer_id: str
    author: str | None
    kind: str
    text: str
    product_id: int | None
    status: str
    blocked_word: str | None
    created_ms: int
    votes: int = 0
    answer: str | None = None
    reply: str | None = None
    claimed_by: str | None = None
    answered_ms: int | None = None


AnyItem = Item | NewItem


# --- the comment path's caches --------------------------------------------------------------------

# Posting reads the room's settings, the poster's sanction and name. At 1,000 comments a second those
# reads are shared: each is kept this long. A change made in this process applies at once; one made
# in another process (several servers on Redis) applies within this time.
POST_CACHE_SECS = 1.0


# Keyed by (what, room, detail): ("settings", room, ""), ("sanctions", room, "").
def _cache(db: Database) -> TtlCache[tuple[str, str, str], Any]:
    """This process's post-path reads of ``db`` (one cache per database, none module-wide)."""
    return per_database(db, "post-reads", lambda: TtlCache(POST_CACHE_SECS, max_entries=200_000))


def forget(db: Database, kind: str, room_id: str, key: str = "") -> None:
    """Drop a cached read after this process changed it (``"settings"`` or ``"sanctions"``)."""
    _cache(db).forget((kind, room_id, key))


async def load_settings(db: Database, room_id: str) -> RoomSettings:
    async with db.session() as session:
        found = await session.get(RoomSettings, room_id)
    return found if found is not None else RoomSettings(room_id=room_id)


async def settings_cached(db: Database, room_id: str) -> RoomSettings:
    async def load() -> RoomSettings:
        return await load_settings(db, room_id)

    result: RoomSettings = await _cache(db).get(("settings", room_id, ""), load)
    return result


def blocklist_words(settings: RoomSettings) -> list[str]:
    if settings.blocklist is None:
        return list(rules.DEFAULT_BLOCKLIST)
    words: list[str] = orjson.loads(settings.blocklist)
    return words


_compiled: dict[str | None, rules.Blocklist] = {}


def blocklist(settings: RoomSettings) -> rules.Blocklist:
    """The room's blocklist, compiled once per distinct list."""
    compiled = _compiled.get(settings.blocklist)
    if compiled is None:
        if len(_compiled) > 1000:
            _compiled.clear()
        compiled = _compiled[settings.blocklist] = rules.Blocklist.of(blocklist_words(settings))
    return compiled


async def sanction_cached(db: Database, room_id: str, viewer_id: str) -> Sanction | None:
    """The viewer's sanction in the room, from the room's sanctions read once per period."""

    async def load() -> dict[str, Sanction]:
        async with db.session() as session:
            rows = await session.exec(select(Sanction).where(Sanction.room_id == room_id))
            return {row.viewer_id: row for row in rows.all()}

    by_viewer: dict[str, Sanction] = await _cache(db).get(("sanctions", room_id, ""), load)
    return by_viewer.get(viewer_id)


# --- reads ------------------------------------------------------------------------------------------


async def load_item(db: Database, room_id: str, item_id: int) -> Item:
    async with db.session() as session:
        item = await session.get(Item, item_id)
    if item is None or item.room_id != room_id:
        raise NotFound("no such item in this room")
    return item


async def top_questions(db: Database, room_id: str) -> list[Item]:
    """The most-voted shown questions (and other feedback), best first."""
    async with db.session() as session:
        rows = await session.exec(
            select(Item)
            .where(
                Item.room_id == room_id,
                col(Item.kind) != "comment",
                col(Item.status).in_(rules.SHOWN),
            )
            .order_by(col(Item.votes).desc(), col(Item.id))
            .limit(TOP_QUESTIONS)
        )
        return list(rows.all())


async def sanctions_in_force(db: Database, room_id: str) -> list[Sanction]:
    """The room's bans and running mutes, by viewer id."""
    now = now_ms()
    async with db.session() as session:
        rows = await session.exec(
            select(Sanction).where(Sanction.room_id == room_id).order_by(col(Sanction.viewer_id))
        )
        return [s for s in rows.all() if rules.sanction_in_force(s.mute_until_ms, s.banned, now)]


# --- writes -----------------------------------------------------------------------------------------

# The columns a new item is inserted with (the rest take their defaults).
_NEW_ITEM_COLUMNS = ("room_id", "viewer_id", "author", "kind", "text", "product_id", "status",
                     "blocked_word", "created_ms", "votes")  # fmt: skip


async def insert_item(db: Database, item: NewItem) -> None:
    """Store a new item in the same INSERT as whatever others arrive at the same moment; sets its id."""
    values = {column: getattr(item, column) for column in _NEW_ITEM_COLUMNS}
    item.id = await shared_inserter(db, Item).add(values)


async def log_moderation(
    db: Database,
    principal: Principal,
    action_name: str,
    *,
    item_id: int | None = None,
    viewer_id: str | None = None,
    detail: str | None = None,
) -> None:
    """One line of the room's moderation log (exported with the items)."""
    async with db.session() as session:
        session.add(
            ModerationLog(
                room_id=principal.room_id,
                actor=principal.name or principal.role.value,
                action=action_name,
                item_id=item_id,
                viewer_id=viewer_id,
                detail=detail,
                created_ms=now_ms(),
            )
        )
        await session.commit()
