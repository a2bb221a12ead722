"""Lucky draws: create (commit to a seed), enter, freeze the entrants (commit to them), draw (reveal),
confirm, re-draw an absent place, claim. One draw at a time per room; every step is a conditional
update, so a double click or two moderators never draw twice."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from server import text
from server.auth import Principal, Scope
from server.domain import ActionContext, ActionTable
from server.draws import jobs, rules
from server.draws.events import DrawChanged, EntrantsTick
from server.errors import Conflict, Forbidden, InvalidInput, NotFound, RateLimited
from server.followup import contacts as followup_contacts
from server.followup.contacts import queue_confirmation
from server.httputil import csv_cell
from server.i18n import DEFAULT_LOCALE, normalize, translate
from server.intents import log as intents
from server.intents.log import SalesBoard
from server.questions.rules import normalize_for_match
from server.realtime.hub import Hub
from server.realtime.protocol import direct_frame
from server.rooms.actions import display_name_cached, load_room
from server.services import Services
from server.storage import Database, now_ms
from server.storage.batch import shared_writer
from server.storage.models import Claim, Draw, DrawEntry, DrawWinner, Follow, IntentEvent, Item, Room, Viewer
from server.text import clean_id
from server.ticker import Ticker
from server.ttlcache import TtlCache

log = logging.getLogger("livewall.draws")

# Direct (unsequenced) frames this domain sends, with their one-line docs.
DIRECT_TYPES = {"draw.entry": "the viewer is in a draw (by joining, a keyword comment, or what they did)"}

ENTRANTS_TICK_SECS = 0.25  # the live entrant count on the screen: 4 updates a second at most
CLOCK_SECS = 0.25
# Phones gather shakes and send them at most this often (50 a message at most): 100 shakes a second
# is beyond any arm, so a script gains nothing by sending faster.
SHAKE_INTERVAL_MS = 400
SAMPLE_NAMES = 60  # masked names the screen rolls through before landing on the winners
HISTORY = 50
LIVE = ("open", "frozen")
# Keyword comments and auto-entries look up the room's open draw this often (one read a second).
OPEN_CACHE_SECS = 1.0
_open: TtlCache[str, Draw | None] = TtlCache(OPEN_CACHE_SECS, max_entries=10_000)


# --- shapes -------------------------------------------------------------------------------------


def _tiers(d: Draw) -> list[dict[str, Any]]:
    tiers: list[dict[str, Any]] = orjson.loads(d.tiers)
    return tiers


def winner_shape(w: DrawWinner, name: str | None, *, host: bool) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "place": w.place,
        "tier": w.tier,
        "entrant": w.entrant,
        "name": name if host else text.mask_name(name),
        "status": w.status,
    }
    if host:
        shape.update(
            viewer_id=w.viewer_id,
            claim_name=w.claim_name,
            claim_phone=w.claim_phone,
            claim_email=w.claim_email,
            consent=w.consent,
            claimed_ms=w.claimed_ms,
        )
    return shape


@dataclass(frozen=True)
class DrawView:
    """Everything the draw's shapes are made from, read once per change."""

    draw: Draw
    entrants: int
    winners: list[tuple[DrawWinner, str | None]]
    sample: list[str]

    def shape(self, *, host: bool) -> dict[str, Any]:
        d = self.draw
        drawn = d.status == "drawn"
        current = [winner_shape(w, n, host=host) for w, n in self.winners if w.status != "absent" or host]
        places = sum(t["count"] for t in _tiers(d))
        return {
            "id": d.id,
            "code": d.code,
            "title": d.title,
            "mode": d.mode,
            "keyword": d.keyword,
            "tiers": [
                {"name": t["name"], "count": t["count"], "image_url": t.get("image_url")} for t in _tiers(d)
            ],
            "status": d.status,
            "created_ms": d.created_ms,
            "closes_ms": d.closes_ms,
            "entrants": self.entrants,
            "seed_sha256": d.seed_sha256,
            "entrants_sha256": d.entrants_sha256,
            "seed": d.seed if drawn else None,
            "winners": current,
            "unfilled": max(0, places - sum(1 for w, _ in self.winners if w.status != "absent"))
            if drawn
            else 0,
            "sample": self.sample,
            "claim_until_ms": d.claim_until_ms,
            "frozen_ms": d.frozen_ms,
            "drawn_ms": d.drawn_ms,
            "verify_path": f"/d/{d.code}",
            **(self.setup() if host else {}),
        }

    def setup(self) -> dict[str, Any]:
        """How the draw was set up (hosts: the console shows it for past draws)."""
        d = self.draw
        return {
            "setup": {
                "tiers": _tiers(d),
                "tier_order_random": d.tier_order_random,
                "weights": orjson.loads(d.weights) if d.weights else {},
                "exclude_winners": d.exclude_winners,
                "max_wins": d.max_wins,
                "window_secs": d.window_secs,
                "claim_secs": d.claim_secs,
            }
        }


async def load_view(db: Database, d: Draw) -> DrawView:
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
    return DrawView(d, int(entrants), [(w, n) for w, n in winners], sample)


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

    return await _open.get(room_id, load)


# --- the engine: entrant counts, shakes, the entry clock ----------------------------------------


class DrawEngine(Ticker):
    """Per process: coalesced entrant counts and shakes, and closing entry windows on time."""

    def __init__(self, db: Database, hub: Hub) -> None:
        super().__init__(ENTRANTS_TICK_SECS, "draw-entrants")
        self.db = db
        self.hub = hub
        self._dirty: dict[int, str] = {}  # draw id -> room id
        self._shakes: dict[tuple[int, str], int] = {}
        self._last_shake: dict[tuple[int, str], int] = {}
        self._clock_task: asyncio.Task[None] | None = None

    def entered(self, d: Draw) -> None:
        assert d.id is not None
        self._dirty[d.id] = d.room_id
        self.wake()

    def shake_allowed(self, d: Draw, viewer_id: str, t: int) -> bool:
        """At most one shake message per viewer per SHAKE_INTERVAL_MS (a script cannot out-shake phones)."""
        key = (d.id or 0, viewer_id)
        if t - self._last_shake.get(key, 0) < SHAKE_INTERVAL_MS:
            return False
        if len(self._last_shake) > 200_000:
            self._last_shake.clear()
        self._last_shake[key] = t
        return True

    def shake(self, d: Draw, viewer_id: str, n: int) -> None:
        assert d.id is not None
        key = (d.id, viewer_id)
        self._shakes[key] = self._shakes.get(key, 0) + n
        self.entered(d)

    async def flush(self) -> None:
        shakes, self._shakes = self._shakes, {}
        if shakes:
            async with self.db.session() as session:
                for (draw_id, viewer_id), n in shakes.items():
                    await session.exec(
                        update(DrawEntry)
                        .where(
                            col(DrawEntry.draw_id) == draw_id,
                            col(DrawEntry.viewer_id) == viewer_id,
                            col(DrawEntry.frozen).is_(False),  # shakes after the close do not count
                        )
                        .values(shakes=col(DrawEntry.shakes) + n)
                    )
                await session.commit()
        dirty, self._dirty = self._dirty, {}
        for draw_id, room_id in dirty.items():
            async with self.db.session() as session:
                n = (
                    await session.exec(
                        select(func.count()).select_from(DrawEntry).where(DrawEntry.draw_id == draw_id)
                    )
                ).one()
            await self.hub.publish(room_id, EntrantsTick(id=draw_id, entrants=int(n)))

    async def tick_clock(self, t: int) -> None:
        """Freeze the entrants of draws whose window has closed."""
        async with self.db.session() as session:
            due = (
                await session.exec(select(Draw).where(Draw.status == "open", col(Draw.closes_ms) <= t))
            ).all()
        for d in due:
            await self.flush()  # shakes and entries of the last tick count
            await freeze(self.db, self.hub, d, t)

    async def _clock(self) -> None:
        while True:
            await asyncio.sleep(CLOCK_SECS)
            try:
                await self.tick_clock(now_ms())
            except Exception:
                log.exception("draw clock failed")

    async def start(self) -> None:
        await super().start()
        self._clock_task = asyncio.create_task(self._clock(), name="livewall-draw-clock")

    async def stop(self) -> None:
        if self._clock_task is not None:
            self._clock_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock_task
        await super().stop()


def _engine(services: Services) -> DrawEngine:
    return services.engines.get(DrawEngine)


async def publish(db: Database, hub: Hub, d: Draw) -> DrawView:
    view = await load_view(db, d)
    await hub.publish(d.room_id, DrawChanged(public=view.shape(host=False), host=view.shape(host=True)))
    return view


# --- host ---------------------------------------------------------------------------------------


async def do_create(services: Services, principal: Principal, data: dict[str, Any]) -> dict[str, Any]:
    """Set up a draw and commit to its seed (the SHA-256 is public from now on)."""
    spec = rules.clean_create(data)
    await load_room(services.db, principal.room_id)
    t = now_ms()
    seed = rules.new_seed()
    d = Draw(
        room_id=principal.room_id,
        code=secrets.token_hex(5),
        title=spec.title,
        mode=spec.mode,
        keyword=spec.keyword,
        tiers=orjson.dumps([vars(tier) for tier in spec.tiers]).decode(),
        tier_order_random=spec.tier_order_random,
        weights=orjson.dumps(spec.weights).decode() if spec.weights else None,
        exclude_winners=spec.exclude_winners,
        max_wins=spec.max_wins,
        window_secs=spec.window_secs,
        claim_secs=spec.claim_secs,
        status="open",
        seed=seed.hex(),
        seed_sha256=rules.sha256_hex(seed),
        created_ms=t,
        closes_ms=t + spec.window_secs * 1000,
    )
    async with services.db.session() as session:
        # Lock the room row first, so two moderators creating at the same moment queue here.
        await session.exec(
            update(Room).where(col(Room.id) == principal.room_id).values(title=col(Room.title))
        )
        busy = (
            await session.exec(
                select(Draw.id).where(Draw.room_id == principal.room_id, col(Draw.status).in_(LIVE))
            )
        ).first()
        if busy is not None:
            raise Conflict(
                "a draw is already running in this room: draw or cancel it first", code="bad_state"
            )
        session.add(d)
        await session.commit()
        await session.refresh(d)
    _open.forget(principal.room_id)
    if spec.mode not in rules.WINDOW_MODES:
        await freeze(services.db, services.hub, d, t)  # the entrants are who did it already
        return (await load_view(services.db, d)).shape(host=True)
    return (await publish(services.db, services.hub, d)).shape(host=True)


async def _pool(session: Any, d: Draw) -> set[str]:
    """Entrants of the modes decided by what viewers did in the room."""
    if d.mode == "askers":
        rows = await session.exec(
            select(Item.viewer_id).where(Item.room_id == d.room_id, col(Item.kind) != "comment").distinct()
        )
    elif d.mode == "claimers":
        rows = await session.exec(
            select(Claim.viewer_id)
            .where(Claim.room_id == d.room_id, col(Claim.status).in_(("reserved", "redeemed")))
            .distinct()
        )
    else:  # buyers: a paid order reported by the shop
        rows = await session.exec(
            select(IntentEvent.viewer_id)
            .where(
                IntentEvent.room_id == d.room_id,
                IntentEvent.kind == "order.paid",
                col(IntentEvent.viewer_id).is_not(None),
            )
            .distinct()
        )
    return {v for v in rows.all() if v}


async def _did(session: Any, room_id: str, what: str, viewers: set[str]) -> set[str]:
    """Which of ``viewers`` did ``what`` in the room (for weights and tier eligibility)."""
    if not viewers or what == "all":
        return set(viewers)
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
        q = select(IntentEvent.viewer_id).where(  # type: ignore[assignment]
            IntentEvent.room_id == room_id, IntentEvent.kind == kind
        )
    rows = await session.exec(q.distinct())
    return {v for v in rows.all() if v in viewers}


async def freeze(db: Database, hub: Hub, d: Draw, t: int) -> None:
    """Close entries: settle exclusions, weights and tier eligibility, commit to the entrant list.

    The status change comes first: it takes the write lock (SQLite) or the row lock (PostgreSQL), and
    marking the entries frozen locks theirs, so an entry or shake that arrives from now on is left out
    of the list (``frozen`` stays false), instead of changing it after its hash was published.
    """
    pool: dict[str, str | None] = {}
    if d.mode not in rules.WINDOW_MODES:  # read before taking the lock: who did it, and their names
        async with db.session() as session:
            viewers = await _pool(session, d)
            rows = await session.exec(
                select(Viewer.id, Viewer.display_name).where(col(Viewer.id).in_(viewers))
            )
            pool = {v: name for v, name in rows.all()}
    async with db.session() as session:
        result = await session.exec(
            update(Draw)
            .where(col(Draw.id) == d.id, col(Draw.status) == "open")
            .values(status="frozen", frozen_ms=t)
        )
        if result.rowcount != 1:
            await session.rollback()
            return  # frozen already (another process, or the host closed it)
        won = await session.exec(
            select(DrawWinner.viewer_id, func.count())
            .join(Draw, col(Draw.id) == col(DrawWinner.draw_id))
            .where(Draw.room_id == d.room_id, col(DrawWinner.status) != "absent", col(Draw.id) != d.id)
            .group_by(col(DrawWinner.viewer_id))
        )
        wins = {v: int(n) for v, n in won.all()}
        if pool:
            session.add_all(
                DrawEntry(
                    draw_id=d.id or 0, viewer_id=v, entrant=secrets.token_hex(5), name=name, created_ms=t
                )
                for v, name in pool.items()
            )
            await session.flush()
        await session.exec(update(DrawEntry).where(col(DrawEntry.draw_id) == d.id).values(frozen=True))
        entries = list(
            (
                await session.exec(select(DrawEntry).where(DrawEntry.draw_id == d.id, col(DrawEntry.frozen)))
            ).all()
        )
        viewers = {e.viewer_id for e in entries}
        out = set()
        if d.exclude_winners:
            out |= {v for v in viewers if wins.get(v)}
        if d.max_wins is not None:
            out |= {v for v in viewers if wins.get(v, 0) >= d.max_wins}
        weights: dict[str, int] = orjson.loads(d.weights) if d.weights else {}
        extra = {action: await _did(session, d.room_id, action, viewers) for action in weights}
        tiers = _tiers(d)
        allowed = {t["eligible"]: await _did(session, d.room_id, t["eligible"], viewers) for t in tiers}
        for e in entries:
            if e.viewer_id in out:
                await session.delete(e)
                continue
            e.weight = 1 + sum(n for action, n in weights.items() if e.viewer_id in extra[action])
            eligible = [i for i, tier in enumerate(tiers) if e.viewer_id in allowed[tier["eligible"]]]
            e.tiers = None if len(eligible) == len(tiers) else orjson.dumps(eligible).decode()
            session.add(e)
        kept = [e for e in entries if e.viewer_id not in out]
        digest = rules.entrants_digest([_entrant(e) for e in kept])
        await session.exec(update(Draw).where(col(Draw.id) == d.id).values(entrants_sha256=digest))
        await session.commit()
    d.status, d.frozen_ms, d.entrants_sha256 = "frozen", t, digest
    _open.forget(d.room_id)
    await publish(db, hub, d)
    for e in kept:
        if e.viewer_id in pool:  # entered by what they did: tell each phone its pseudonym
            frame = direct_frame("draw.entry", {"id": d.id, "entrant": e.entrant})
            await hub.send_private(d.room_id, e.viewer_id, frame)


def _entrant(e: DrawEntry) -> rules.Entrant:
    tiers = tuple(orjson.loads(e.tiers)) if e.tiers else None
    return rules.Entrant(e.entrant, e.weight, e.shakes, tiers)


async def _entries(db: Database, d: Draw) -> list[DrawEntry]:
    async with db.session() as session:
        rows = await session.exec(select(DrawEntry).where(DrawEntry.draw_id == d.id, col(DrawEntry.frozen)))
        return list(rows.all())


async def _pick(
    services: Services, seed: bytes, entries: list[DrawEntry], spec: rules.DrawSpec
) -> list[rules.Place]:
    """The winner function in a worker process: 10,000 weighted entrants take about a second of
    pure-Python CPU, which in a thread would hold the GIL the event loop needs during the show."""
    return await jobs.pick(services.sandbox, seed, [_entrant(e) for e in entries], spec)


def _spec(d: Draw, seed: bytes) -> rules.DrawSpec:
    tiers = _tiers(d)
    order = rules.tier_order(seed, len(tiers), d.tier_order_random)
    return rules.DrawSpec(
        tier_counts=tuple(t["count"] for t in tiers),
        tier_order=order,
        shake_race=d.mode == "shake",
        absent=tuple(orjson.loads(d.absent)),
    )


async def do_close(services: Services, principal: Principal, draw_id: object) -> dict[str, Any]:
    """Close the entry window now."""
    d = await load_draw(services.db, principal.room_id, draw_id)
    if d.status != "open":
        raise Conflict(f"this draw is {d.status}, not taking entries", code="bad_state")
    await _engine(services).flush()
    await freeze(services.db, services.hub, d, now_ms())
    d = await load_draw(services.db, principal.room_id, draw_id)
    return (await load_view(services.db, d)).shape(host=True)


async def do_run(services: Services, principal: Principal, draw_id: object) -> dict[str, Any]:
    """Draw: reveal the seed and compute the winners. Only a frozen draw, only once."""
    d = await load_draw(services.db, principal.room_id, draw_id)
    if d.status == "open":
        with contextlib.suppress(Conflict):  # the clock may close the entries at this very moment
            await do_close(services, principal, draw_id)
        d = await load_draw(services.db, principal.room_id, draw_id)
    if d.status != "frozen":
        raise Conflict(f"this draw is {d.status}", code="bad_state")
    seed = bytes.fromhex(d.seed)
    spec = _spec(d, seed)
    entries = await _entries(services.db, d)
    by_entrant = {e.entrant: e for e in entries}
    winners = await _pick(services, seed, entries, spec)
    t = now_ms()
    async with services.db.session() as session:
        result = await session.exec(
            update(Draw)
            .where(col(Draw.id) == d.id, col(Draw.status) == "frozen")
            .values(
                status="drawn",
                drawn_ms=t,
                tier_order=orjson.dumps(list(spec.tier_order)).decode(),
                claim_until_ms=t + d.claim_secs * 1000,
            )
        )
        if result.rowcount != 1:
            raise Conflict("this draw was drawn just now", code="bad_state")
        for w in winners:
            session.add(
                DrawWinner(
                    draw_id=d.id or 0,
                    place=w.place,
                    tier=w.tier,
                    viewer_id=by_entrant[w.entrant].viewer_id,
                    entrant=w.entrant,
                    created_ms=t,
                )
            )
        await session.commit()
    for w in winners:
        await intents.record(
            services.db, room_id=d.room_id, viewer_id=by_entrant[w.entrant].viewer_id, kind="draw.won",
            event_id=f"draw:{d.id}:won:{w.entrant}", data={"draw": d.code, "place": w.place, "tier": w.tier},
        )  # fmt: skip
    d = await load_draw(services.db, principal.room_id, draw_id)
    return (await publish(services.db, services.hub, d)).shape(host=True)


async def _winner_at(db: Database, d: Draw, place: object) -> DrawWinner:
    number = clean_id(place, "place")
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


async def do_confirm(services: Services, principal: Principal, data: dict[str, Any]) -> dict[str, Any]:
    """The host confirms a winner (present, or reached)."""
    d = await load_draw(services.db, principal.room_id, data.get("id"))
    w = await _winner_at(services.db, d, data.get("place"))
    if w.status == "won":
        async with services.db.session() as session:
            await session.exec(
                update(DrawWinner).where(col(DrawWinner.id) == w.id).values(status="confirmed")
            )
            await session.commit()
    return (await publish(services.db, services.hub, d)).shape(host=True)


async def do_absent(services: Services, principal: Principal, data: dict[str, Any]) -> dict[str, Any]:
    """Mark a winner absent and draw that place again (only that place: the next in the ranking)."""
    d = await load_draw(services.db, principal.room_id, data.get("id"))
    if d.status != "drawn":
        raise Conflict("only a drawn draw has winners", code="bad_state")
    w = await _winner_at(services.db, d, data.get("place"))
    if w.status == "claimed":
        raise Conflict("this winner has claimed the prize", code="bad_state")
    before = d.absent
    absent = [*orjson.loads(before), w.place]
    seed = bytes.fromhex(d.seed)
    d.absent = orjson.dumps(absent).decode()
    entries = await _entries(services.db, d)
    winners = await _pick(services, seed, entries, _spec(d, seed))
    replacement = next((p for p in winners if p.place == w.place), None)
    t = now_ms()
    async with services.db.session() as session:
        # The re-draw is computed from the absent list it extends: if another moderator changed the
        # list meanwhile, this one is refused rather than giving one entrant two places.
        moved = await session.exec(
            update(Draw).where(col(Draw.id) == d.id, col(Draw.absent) == before).values(absent=d.absent)
        )
        if moved.rowcount != 1:
            raise Conflict("another place was re-drawn just now; look again", code="bad_state")
        result = await session.exec(
            update(DrawWinner)
            .where(col(DrawWinner.id) == w.id, col(DrawWinner.status).in_(("won", "confirmed")))
            .values(status="absent")
        )
        if result.rowcount != 1:
            await session.rollback()
            raise Conflict("this place was changed just now", code="bad_state")
        if replacement is not None:
            viewer = next(e.viewer_id for e in entries if e.entrant == replacement.entrant)
            session.add(
                DrawWinner(
                    draw_id=d.id or 0, place=w.place, tier=w.tier, viewer_id=viewer,
                    entrant=replacement.entrant, created_ms=t,
                )
            )  # fmt: skip
        await session.commit()
    view = await publish(services.db, services.hub, d)
    shape = view.shape(host=True)
    shape["replaced"] = replacement is not None
    return shape


async def do_cancel(services: Services, principal: Principal, draw_id: object) -> dict[str, Any]:
    d = await load_draw(services.db, principal.room_id, draw_id)
    async with services.db.session() as session:
        result = await session.exec(
            update(Draw).where(col(Draw.id) == d.id, col(Draw.status).in_(LIVE)).values(status="cancelled")
        )
        await session.commit()
    if result.rowcount != 1:
        raise Conflict(f"a {d.status} draw cannot be cancelled", code="bad_state")
    d.status = "cancelled"
    _open.forget(d.room_id)
    return (await publish(services.db, services.hub, d)).shape(host=True)


# --- viewers ------------------------------------------------------------------------------------


async def enter(services: Services, d: Draw, viewer_id: str, t: int) -> str:
    """Put a viewer in an open draw (once); returns their entrant pseudonym."""
    if d.status != "open" or t >= d.closes_ms:
        raise Conflict("entries are closed", code="draw_closed")
    async with services.db.session() as session:
        existing = await session.get(DrawEntry, (d.id, viewer_id))
    if existing is not None:
        return existing.entrant
    entry = DrawEntry(
        draw_id=d.id or 0,
        viewer_id=viewer_id,
        entrant=secrets.token_hex(5),
        name=await display_name_cached(services.db, viewer_id),
        created_ms=t,
    )
    try:
        # Entries arriving together (an "everyone" draw: every phone at once) share a transaction.
        await shared_writer(services.db, DrawEntry).add(entry)
    except IntegrityError:  # entered at the same moment from another device or process
        async with services.db.session() as session:
            again = await session.get(DrawEntry, (d.id, viewer_id))
        if again is None:
            raise
        return again.entrant
    _engine(services).entered(d)
    entry_frame = direct_frame("draw.entry", {"id": d.id, "entrant": entry.entrant})
    await services.hub.send_private(d.room_id, viewer_id, entry_frame)
    await intents.record(
        services.db, room_id=d.room_id, viewer_id=viewer_id, kind="draw.entered",
        event_id=f"draw:{d.id}:entered:{viewer_id}", data={"draw": d.code},
    )  # fmt: skip
    return entry.entrant


async def do_enter(services: Services, principal: Principal, draw_id: object) -> dict[str, Any]:
    """A viewer presses "join" (or the phone joins for them in an everyone draw)."""
    assert principal.viewer_id is not None
    d = await load_draw(services.db, principal.room_id, draw_id)
    if d.mode not in ("join", "everyone", "shake"):
        raise Forbidden(f"this draw is entered by {d.mode}, not by joining", code="not_eligible")
    return {"id": d.id, "entrant": await enter(services, d, principal.viewer_id, now_ms())}


async def do_shake(services: Services, principal: Principal, data: dict[str, Any]) -> dict[str, Any]:
    """Shakes a phone counted in a shake race (aggregated by the phone; at most 50 per message)."""
    assert principal.viewer_id is not None
    d = await load_draw(services.db, principal.room_id, data.get("id"))
    if d.mode != "shake":
        raise InvalidInput("this draw is not a shake race")
    n = data.get("count")
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= rules.SHAKES_PER_MESSAGE:
        raise InvalidInput(f"count must be 1 to {rules.SHAKES_PER_MESSAGE}")
    t = now_ms()
    engine = _engine(services)
    if not engine.shake_allowed(d, principal.viewer_id, t):
        raise RateLimited("one shake message every 500 ms: gather the shakes on the phone")
    entrant = await enter(services, d, principal.viewer_id, t)
    engine.shake(d, principal.viewer_id, n)
    return {"id": d.id, "entrant": entrant}


async def on_item(services: Services, room_id: str, viewer_id: str, text: str) -> None:
    """A comment during a keyword draw's window that contains the keyword enters its author."""
    d = await open_draw_cached(services.db, room_id)
    if d is None or d.mode != "keyword" or not d.keyword:
        return
    if normalize_for_match(d.keyword) in normalize_for_match(text):
        with contextlib.suppress(Conflict):
            await enter(services, d, viewer_id, now_ms())


async def do_claim(services: Services, principal: Principal, data: dict[str, Any]) -> dict[str, Any]:
    """A winner leaves a name and a phone or email (and their consent to follow-up), in time."""
    assert principal.viewer_id is not None
    d = await load_draw(services.db, principal.room_id, data.get("id"))
    lang = normalize(data.get("lang")) if isinstance(data.get("lang"), str) else None
    # The consent is kept with the words the winner saw (follow-up messaging checks it).
    consent_text = translate(lang or DEFAULT_LOCALE, "lucky.claim.consent")
    t = now_ms()
    if d.claim_until_ms is None or t >= d.claim_until_ms:
        raise Conflict("the time to claim this prize is over", code="claim_closed")
    async with services.db.session() as session:
        mine = (
            await session.exec(
                select(DrawWinner).where(
                    DrawWinner.draw_id == d.id,
                    DrawWinner.viewer_id == principal.viewer_id,
                    col(DrawWinner.status).in_(("won", "confirmed", "claimed")),
                )
            )
        ).first()
        if mine is None:
            raise Forbidden("only a winner can claim this prize", code="not_a_winner")
        contact = rules.clean_contact(data)
        # Conditional: a place marked absent a moment ago is not claimed back.
        result = await session.exec(
            update(DrawWinner)
            .where(col(DrawWinner.id) == mine.id, col(DrawWinner.status).in_(("won", "confirmed", "claimed")))
            .values(
                claim_name=contact.name,
                claim_phone=contact.phone,
                claim_email=contact.email,
                consent=contact.consent,
                consent_text=consent_text if contact.consent else None,
                claimed_ms=t,
                status="claimed",
            )
        )
        await session.commit()
        if result.rowcount != 1:
            raise Forbidden("only a winner can claim this prize", code="not_a_winner")
        await session.refresh(mine)
    await intents.record(
        services.db, room_id=d.room_id, viewer_id=principal.viewer_id, kind="draw.claimed",
        event_id=f"draw:{d.id}:claimed:{principal.viewer_id}",
        data={"draw": d.code, "consent": contact.consent, "consent_text": mine.consent_text},
        board=services.engines.find(SalesBoard),
    )  # fmt: skip
    await _remember_contact(
        services, d.room_id, principal.viewer_id, contact, mine.consent_text, lang or DEFAULT_LOCALE
    )
    await publish(services.db, services.hub, d)
    return {"id": d.id, "place": mine.place, "status": mine.status}


async def _remember_contact(
    services: Services,
    room_id: str,
    viewer_id: str,
    contact: rules.Contact,
    wording: str | None,
    lang: str,
) -> None:
    """A prize claim makes the winner a contact; with consent, a channel for follow-up messages
    (email still needs the double opt-in)."""
    says = []
    if contact.consent:
        if contact.email:
            says.append(
                followup_contacts.Say("email", "pending", "draw claim", wording, lang, room_id=room_id)
            )
        if contact.phone:
            says.append(followup_contacts.Say("sms", "granted", "draw claim", wording, lang, room_id=room_id))
    found, pending = await followup_contacts.identify(
        services.db,
        viewer_id=viewer_id,
        name=contact.name,
        email=contact.email,
        phone=contact.phone,
        says=says,
    )
    if "email" in pending:
        await queue_confirmation(services.db, room_id, found, found.pending_email or found.email)


async def my_draws(db: Database, room_id: str, viewer_id: str) -> dict[str, Any]:
    """A viewer's entries and wins in the room's recent draws (winners who reload still see their prize)."""
    async with db.session() as session:
        entries = (
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
    out: dict[str, Any] = {str(draw_id): {"entrant": entrant, "wins": []} for draw_id, entrant in entries}
    for w in wins:
        out.setdefault(str(w.draw_id), {"entrant": w.entrant, "wins": []})["wins"].append(
            {"place": w.place, "tier": w.tier, "status": w.status}
        )
    return out


# --- records, history, export -------------------------------------------------------------------


async def record(db: Database, d: Draw) -> dict[str, Any]:
    """The public record of a draw: everything needed to recompute its winners (no viewer ids)."""
    entries = await _entries(db, d)
    view = await load_view(db, d)
    drawn = d.status == "drawn"
    return {
        "algorithm": rules.ALGORITHM,
        "draw": d.code,
        "title": d.title,
        "mode": d.mode,
        "status": d.status,
        "tiers": [{"name": t["name"], "count": t["count"]} for t in _tiers(d)],
        "tier_order_random": d.tier_order_random,
        "tier_order": orjson.loads(d.tier_order) if d.tier_order else None,
        "shake_race": d.mode == "shake",
        "seed_sha256": d.seed_sha256,
        "entrants_sha256": d.entrants_sha256,
        "seed": d.seed if drawn else None,
        "entrants": [
            {
                "id": e.entrant,
                "name": text.mask_name(e.name),
                "weight": e.weight,
                "shakes": e.shakes,
                "tiers": orjson.loads(e.tiers) if e.tiers else None,
            }
            for e in sorted(entries, key=lambda e: e.entrant)
        ]
        if d.status != "open"
        else [],
        "absent": orjson.loads(d.absent),
        "winners": [
            {"place": w.place, "tier": w.tier, "entrant": w.entrant, "name": text.mask_name(n)}
            for w, n in view.winners
            if w.status != "absent"
        ],
        "created_ms": d.created_ms,
        "frozen_ms": d.frozen_ms,
        "drawn_ms": d.drawn_ms,
    }


async def history(db: Database, room_id: str) -> list[dict[str, Any]]:
    async with db.session() as session:
        draws = (
            await session.exec(
                select(Draw).where(Draw.room_id == room_id).order_by(col(Draw.id).desc()).limit(HISTORY)
            )
        ).all()
    return [(await load_view(db, d)).shape(host=True) for d in reversed(draws)]


EXPORT_COLUMNS = ("draw", "title", "drawn_ms", "entrants", "place", "tier", "prize", "name", "viewer_id",
                  "status", "claim_name", "claim_phone", "claim_email", "consent", "claimed_ms")  # fmt: skip


def export_csv(draws: list[dict[str, Any]]) -> str:
    """Every winner of every draw, one row each (spreadsheet-safe)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for d in draws:
        drawn = d["status"] == "drawn"
        for w in d["winners"] if drawn else []:
            row = {"draw": d["code"], "title": d["title"], "drawn_ms": d["drawn_ms"],
                   "entrants": d["entrants"], "prize": d["tiers"][w["tier"]]["name"], **w}  # fmt: skip
            writer.writerow([csv_cell(row.get(c)) for c in EXPORT_COLUMNS])
    return out.getvalue()


# --- WebSocket actions --------------------------------------------------------------------------


# The client actions this domain handles (declared to the app in its domain.py).
ACTIONS = ActionTable()


@ACTIONS.action("draw.create", scope=Scope.CONTROL, doc="host: set up a draw (commits to its seed)")
async def _ws_create(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return await do_create(ctx.services, ctx.principal, data)


@ACTIONS.action(
    "draw.close", scope=Scope.CONTROL, doc="host: close the entry window now (commits to the entrants)"
)
async def _ws_close(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return await do_close(ctx.services, ctx.principal, data.get("id"))


@ACTIONS.action("draw.run", scope=Scope.CONTROL, doc="host: draw the winners (reveals the seed); only once")
async def _ws_run(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return await do_run(ctx.services, ctx.principal, data.get("id"))


@ACTIONS.action("draw.confirm", scope=Scope.CONTROL, doc="host: confirm the winner of a place")
async def _ws_confirm(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return await do_confirm(ctx.services, ctx.principal, data)


@ACTIONS.action(
    "draw.absent", scope=Scope.CONTROL, doc="host: mark a winner absent and re-draw only that place"
)
async def _ws_absent(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return await do_absent(ctx.services, ctx.principal, data)


@ACTIONS.action("draw.cancel", scope=Scope.CONTROL, doc="host: cancel a draw that has not been drawn")
async def _ws_cancel(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return await do_cancel(ctx.services, ctx.principal, data.get("id"))


@ACTIONS.action("draw.enter", scope=Scope.PARTICIPATE, doc="viewer: join a draw during its entry window")
async def _ws_enter(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return await do_enter(ctx.services, ctx.principal, data.get("id"))


@ACTIONS.action("draw.shake", scope=Scope.PARTICIPATE, doc="viewer: shakes counted in a shake race")
async def _ws_shake(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return await do_shake(ctx.services, ctx.principal, data)


@ACTIONS.action(
    "draw.claim", scope=Scope.PARTICIPATE, doc="viewer (a winner): leave contact details to get the prize"
)
async def _ws_claim(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return await do_claim(ctx.services, ctx.principal, data)
