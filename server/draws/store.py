"""Reading draws: a draw and its view, the room's open draw (cached), entries, a viewer's own draws,
history, the public record, and the facts entries are settled by (what viewers did in the room)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from server import text
from server.draws import rules, wire
from server.errors import NotFound
from server.storage import Database
from server.storage.batch import per_database
from server.storage.models import Claim, Draw, DrawEntry, DrawWinner, Follow, IntentEvent, Item, Viewer
from server.text import clean_id
from server.ttlcache import TtlCache

SAMPLE_NAMES = 60  # masked names the screen rolls through before landing on the winners
HISTORY = 50
# Keyword comments and auto-entries look up the room's open draw this often (one read a second).
OPEN_CACHE_SECS = 1.0


def _open(db: Database) -> TtlCache[str, Draw | None]:
    """The open draw of each room of ``db``, as this process last read it (one cache per database)."""
    return per_database(db, "open-draws", lambda: TtlCache(OPEN_CACHE_SECS, max_entries=10_000))


async def load_view(db: Database, d: Draw) -> wire.DrawView:
    async with db.session() as session:
        counted = select(func.count()).select_from(DrawEntry).where(DrawEntry.draw_id == d.id)
        if d.frozen_ms is not None:  # closed: the committed list (a draw cancelled while open: everyone)
            counted = counted.where(col(DrawEntry.frozen))
        entrants = (await session.exec(counted)).one()
        winners = (
            await session.exec(
                select(DrawWinner, DrawEntry.name)
                .join(
                    DrawEntry,
                    (col(DrawEntry.draw_id) == col(DrawWinner.draw_id))
                    & (col(DrawEntry.viewer_id) == col(DrawWinner.viewer_id)),
                )
                .where(DrawWinner.draw_id == d.id)
                .order_by(col(DrawWinner.place), col(DrawWinner.id))
            )
        ).all()
        sample: list[str] = []
        if d.status != "open":
            names = await session.exec(
                select(DrawEntry.name)
                .where(DrawEntry.draw_id == d.id, col(DrawEntry.frozen))
                .order_by(col(DrawEntry.entrant))
                .limit(SAMPLE_NAMES)
            )
            sample = [text.mask_name(n) for n in names.all()]
    return wire.DrawView(d, int(entrants), [(w, n) for w, n in winners], sample)


async def load_draw(db: Database, room_id: str, draw_id: object) -> Draw:
    async with db.session() as session:
        d = await session.get(Draw, clean_id(draw_id))
    if d is None or d.room_id != room_id:
        raise NotFound("no such draw in this room")
    return d


async def current_draw(db: Database, room_id: str) -> Draw | None:
    """The room's newest draw (any status)."""
    async with db.session() as session:
        return (
            await session.exec(select(Draw).where(Draw.room_id == room_id).order_by(col(Draw.id).desc()))
        ).first()


async def open_draw_cached(db: Database, room_id: str) -> Draw | None:
    async def load() -> Draw | None:
        d = await current_draw(db, room_id)
        return d if d is not None and d.status == "open" else None

    return await _open(db).get(room_id, load)


def forget_open(db: Database, room_id: str) -> None:
    """The room's open draw changed (set up, closed, cancelled)."""
    _open(db).forget(room_id)


async def entries(db: Database, d: Draw) -> list[DrawEntry]:
    """The committed entrant list of a closed draw."""
    async with db.session() as session:
        rows = await session.exec(select(DrawEntry).where(DrawEntry.draw_id == d.id, col(DrawEntry.frozen)))
        return list(rows.all())


async def entry(db: Database, draw_id: int | None, viewer_id: str) -> DrawEntry | None:
    async with db.session() as session:
        return await session.get(DrawEntry, (draw_id, viewer_id))


async def winner_at(db: Database, d: Draw, number: int) -> DrawWinner:
    async with db.session() as session:
        w = (
            await session.exec(
                select(DrawWinner).where(
                    DrawWinner.draw_id == d.id, DrawWinner.place == number, col(DrawWinner.status) != "absent"
                )
            )
        ).first()
    if w is None:
        raise NotFound("no winner at that place")
    return w


async def my_draws(db: Database, room_id: str, viewer_id: str) -> wire.MyDraws:
    """A viewer's entries and wins in the room's recent draws (winners who reload still see their prize)."""
    async with db.session() as session:
        entered = (
            await session.exec(
                select(DrawEntry.draw_id, DrawEntry.entrant)
                .join(Draw, col(Draw.id) == col(DrawEntry.draw_id))
                .where(
                    Draw.room_id == room_id,
                    DrawEntry.viewer_id == viewer_id,
                    col(DrawEntry.frozen) | (col(Draw.status) == "open"),
                )
                .order_by(col(DrawEntry.draw_id).desc())
                .limit(HISTORY)
            )
        ).all()
        wins = (
            await session.exec(
                select(DrawWinner)
                .join(Draw, col(Draw.id) == col(DrawWinner.draw_id))
                .where(Draw.room_id == room_id, DrawWinner.viewer_id == viewer_id)
            )
        ).all()
    return wire.MyDraws([(draw_id, entrant) for draw_id, entrant in entered], list(wins))


async def history(db: Database, room_id: str) -> list[wire.DrawView]:
    """The room's recent draws, oldest first."""
    async with db.session() as session:
        draws = (
            await session.exec(
                select(Draw).where(Draw.room_id == room_id).order_by(col(Draw.id).desc()).limit(HISTORY)
            )
        ).all()
    return [await load_view(db, d) for d in reversed(draws)]


async def record(db: Database, d: Draw) -> wire.Record:
    """What the public record of a draw is made of."""
    return wire.Record(d, await entries(db, d), await load_view(db, d))


def as_entrant(e: DrawEntry) -> rules.Entrant:
    """A stored entry as the winner function sees it."""
    tiers = tuple(orjson.loads(e.tiers)) if e.tiers else None
    return rules.Entrant(e.entrant, e.weight, e.shakes, tiers)


def draw_spec(d: Draw, seed: bytes) -> rules.DrawSpec:
    """What decides a stored draw's winners besides the seed and the entrants."""
    tiers = wire.tiers_of(d)
    order = rules.tier_order(seed, len(tiers), d.tier_order_random)
    return rules.DrawSpec(
        tier_counts=tuple(t["count"] for t in tiers),
        tier_order=order,
        shake_race=d.mode == "shake",
        absent=tuple(orjson.loads(d.absent)),
    )


# --- the facts entries are settled by --------------------------------------------------------------


async def pool(db: Database, d: Draw) -> dict[str, str | None]:
    """Entrants of the modes decided by what viewers did in the room, with their names."""
    async with db.session() as session:
        viewers = await _did(session, d.room_id, d.mode)  # askers, claimers, buyers (a paid order)
        names = await session.exec(select(Viewer.id, Viewer.display_name).where(col(Viewer.id).in_(viewers)))
        return {v: name for v, name in names.all()}


def _did_query(room_id: str, what: str) -> SelectOfScalar[Any]:
    """The viewers who did ``what`` in the room (entrants of the modes decided by what viewers did,
    extra chances, tier eligibility)."""
    q: SelectOfScalar[Any]
    if what in ("asked", "askers"):
        q = select(Item.viewer_id).where(Item.room_id == room_id, col(Item.kind) != "comment")
    elif what in ("claimed", "claimers"):
        q = select(Claim.viewer_id).where(
            Claim.room_id == room_id, col(Claim.status).in_(("reserved", "redeemed"))
        )
    elif what in ("followed", "followers"):
        q = select(Follow.viewer_id).where(Follow.room_id == room_id)
    else:
        kind = "order.delivered" if what == "delivered" else "order.paid"
        q = select(IntentEvent.viewer_id).where(IntentEvent.room_id == room_id, IntentEvent.kind == kind)
    return q.distinct()


async def _did(session: AsyncSession, room_id: str, what: str) -> frozenset[str]:
    rows = await session.exec(_did_query(room_id, what))
    return frozenset(v for v in rows.all() if v)


async def settle_facts(db: Database, d: Draw) -> rules.SettleFacts:
    """Earlier wins in the room and what its viewers did, for settling the entrants of ``d``."""
    weights: dict[str, int] = orjson.loads(d.weights) if d.weights else {}
    eligible: Sequence[str] = [t["eligible"] for t in wire.tiers_of(d)]
    async with db.session() as session:
        won = await session.exec(
            select(DrawWinner.viewer_id, func.count())
            .join(Draw, col(Draw.id) == col(DrawWinner.draw_id))
            .where(Draw.room_id == d.room_id, col(DrawWinner.status) != "absent", col(Draw.id) != d.id)
            .group_by(col(DrawWinner.viewer_id))
        )
        wins = {v: int(n) for v, n in won.all()}
        did = {what: await _did(session, d.room_id, what) for what in {*weights, *eligible} - {"all"}}
    return rules.SettleFacts(
        exclude_winners=d.exclude_winners,
        max_wins=d.max_wins,
        weights=weights,
        tier_eligible=tuple(eligible),
        wins=wins,
        did=did,
    )
