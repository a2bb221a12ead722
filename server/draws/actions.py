"""Lucky draws: create (commit to a seed), enter, freeze the entrants (commit to them), draw (reveal),
confirm, re-draw an absent place (the winners' claims: ``claims``). One draw at a time per room; every
step is a conditional update, so a double click or two moderators never draw twice.

Every step takes a typed command (``wire``), reads what it needs (``store``), decides with the pure
``rules`` and writes; events are published after the commit."""

from __future__ import annotations

import contextlib
import secrets

import orjson
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from server.auth import Principal
from server.draws import jobs, rules, store, wire
from server.draws.engine import DrawEngine
from server.draws.events import DrawChanged
from server.errors import Conflict, Forbidden, InvalidInput, RateLimited
from server.intents import log as intents
from server.questions.rules import normalize_for_match
from server.realtime.hub import Hub
from server.realtime.protocol import direct_frame
from server.rooms.actions import display_name_cached, load_room
from server.services import Services
from server.storage import Database, now_ms
from server.storage.batch import shared_writer
from server.storage.models import Draw, DrawEntry, DrawWinner, Room

LIVE = ("open", "frozen")


def _engine(services: Services) -> DrawEngine:
    return services.engines.get(DrawEngine)


async def publish(db: Database, hub: Hub, d: Draw) -> wire.DrawView:
    view = await store.load_view(db, d)
    await hub.publish(d.room_id, DrawChanged(public=view.shape(host=False), host=view.shape(host=True)))
    return view


def _entry_frame(d: Draw, entrant: str) -> bytes:
    """Tells a phone its pseudonym in a draw."""
    return direct_frame("draw.entry", wire.Entry(d.id or 0, entrant).shape())


# --- host ---------------------------------------------------------------------------------------


async def do_create(services: Services, principal: Principal, spec: wire.CreateDraw) -> wire.DrawView:
    """Set up a draw and commit to its seed (the SHA-256 is public from now on)."""
    await load_room(services.db, principal.room_id)
    t = now_ms()
    seed = rules.new_seed()
    d = Draw(
        room_id=principal.room_id,
        code=secrets.token_hex(5),
        title=spec.title,
        mode=spec.mode,
        keyword=spec.keyword,
        tiers=wire.tiers_json(spec.tiers),
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
    store.forget_open(services.db, principal.room_id)
    if spec.mode not in rules.WINDOW_MODES:
        await freeze(services.db, services.hub, d, t)  # the entrants are who did it already
        # Read back: the draw clock may have frozen it first (its window is already over), and then
        # this freeze left ``d`` as it was.
        d = await store.load_draw(services.db, principal.room_id, d.id)
        return await store.load_view(services.db, d)
    return await publish(services.db, services.hub, d)


async def freeze(db: Database, hub: Hub, d: Draw, t: int) -> None:
    """Close entries: settle exclusions, weights and tier eligibility, commit to the entrant list.

    The facts are read first (earlier wins and what viewers did in the room; for the modes decided
    by what viewers did, who they are), and ``rules.settle_entrants`` decides. The transaction reads
    only the entry list itself, which must be the one it locks: the status change comes first and
    takes the write lock (SQLite) or the row lock (PostgreSQL), and marking the entries frozen locks
    theirs, so an entry or shake that arrives from now on is left out of the list (``frozen`` stays
    false), instead of changing it after its hash was published.
    """
    pool = await store.pool(db, d) if d.mode not in rules.WINDOW_MODES else {}
    facts = await store.settle_facts(db, d)
    async with db.session() as session:
        result = await session.exec(
            update(Draw)
            .where(col(Draw.id) == d.id, col(Draw.status) == "open")
            .values(status="frozen", frozen_ms=t)
        )
        if result.rowcount != 1:
            await session.rollback()
            return  # frozen already (another process, or the host closed it)
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
        settled = rules.settle_entrants(
            [rules.Candidate(e.viewer_id, e.entrant, e.shakes) for e in entries], facts
        )
        told = [
            (e.viewer_id, e.entrant)
            for e in entries
            if e.viewer_id in pool and e.viewer_id in settled.entrants
        ]
        for e in entries:
            kept = settled.entrants.get(e.viewer_id)
            if kept is None:
                await session.delete(e)
                continue
            e.weight = kept.weight
            e.tiers = None if kept.tiers is None else orjson.dumps(list(kept.tiers)).decode()
            session.add(e)
        await session.exec(update(Draw).where(col(Draw.id) == d.id).values(entrants_sha256=settled.digest))
        await session.commit()
    d.status, d.frozen_ms, d.entrants_sha256 = "frozen", t, settled.digest
    store.forget_open(db, d.room_id)
    await publish(db, hub, d)
    for viewer_id, entrant in told:  # entered by what they did: tell each phone its pseudonym
        await hub.send_private(d.room_id, viewer_id, _entry_frame(d, entrant))


async def _pick(
    services: Services, seed: bytes, entries: list[DrawEntry], spec: rules.DrawSpec
) -> list[rules.Place]:
    """The winner function in a worker process: 10,000 weighted entrants take about a second of
    pure-Python CPU, which in a thread would hold the GIL the event loop needs during the show."""
    return await jobs.pick(services.sandbox, seed, [store.as_entrant(e) for e in entries], spec)


async def do_close(services: Services, principal: Principal, ref: wire.DrawRef) -> wire.DrawView:
    """Close the entry window now."""
    d = await store.load_draw(services.db, principal.room_id, ref.id)
    if d.status != "open":
        raise Conflict(f"this draw is {d.status}, not taking entries", code="bad_state")
    await _engine(services).flush()
    await freeze(services.db, services.hub, d, now_ms())
    d = await store.load_draw(services.db, principal.room_id, ref.id)
    return await store.load_view(services.db, d)


async def do_run(services: Services, principal: Principal, ref: wire.DrawRef) -> wire.DrawView:
    """Draw: reveal the seed and compute the winners. Only a frozen draw, only once."""
    d = await store.load_draw(services.db, principal.room_id, ref.id)
    if d.status == "open":
        with contextlib.suppress(Conflict):  # the clock may close the entries at this very moment
            await do_close(services, principal, ref)
        d = await store.load_draw(services.db, principal.room_id, ref.id)
    if d.status != "frozen":
        raise Conflict(f"this draw is {d.status}", code="bad_state")
    seed = bytes.fromhex(d.seed)
    spec = store.draw_spec(d, seed)
    entries = await store.entries(services.db, d)
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
    d = await store.load_draw(services.db, principal.room_id, ref.id)
    return await publish(services.db, services.hub, d)


async def do_confirm(services: Services, principal: Principal, ref: wire.PlaceRef) -> wire.DrawView:
    """The host confirms a winner (present, or reached)."""
    d = await store.load_draw(services.db, principal.room_id, ref.id)
    w = await store.winner_at(services.db, d, wire.checked(ref.place))
    if w.status == "won":
        async with services.db.session() as session:
            await session.exec(
                update(DrawWinner).where(col(DrawWinner.id) == w.id).values(status="confirmed")
            )
            await session.commit()
    return await publish(services.db, services.hub, d)


async def do_absent(
    services: Services, principal: Principal, ref: wire.PlaceRef
) -> tuple[wire.DrawView, bool]:
    """Mark a winner absent and draw that place again (only that place: the next in the ranking);
    the draw, and whether somebody took the place."""
    d = await store.load_draw(services.db, principal.room_id, ref.id)
    if d.status != "drawn":
        raise Conflict("only a drawn draw has winners", code="bad_state")
    w = await store.winner_at(services.db, d, wire.checked(ref.place))
    if w.status == "claimed":
        raise Conflict("this winner has claimed the prize", code="bad_state")
    before = d.absent
    absent = [*orjson.loads(before), w.place]
    seed = bytes.fromhex(d.seed)
    d.absent = orjson.dumps(absent).decode()
    entries = await store.entries(services.db, d)
    winners = await _pick(services, seed, entries, store.draw_spec(d, seed))
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
    return await publish(services.db, services.hub, d), replacement is not None


async def do_cancel(services: Services, principal: Principal, ref: wire.DrawRef) -> wire.DrawView:
    d = await store.load_draw(services.db, principal.room_id, ref.id)
    async with services.db.session() as session:
        result = await session.exec(
            update(Draw).where(col(Draw.id) == d.id, col(Draw.status).in_(LIVE)).values(status="cancelled")
        )
        await session.commit()
    if result.rowcount != 1:
        raise Conflict(f"a {d.status} draw cannot be cancelled", code="bad_state")
    d.status = "cancelled"
    store.forget_open(services.db, d.room_id)
    return await publish(services.db, services.hub, d)


# --- viewers ------------------------------------------------------------------------------------


async def enter(services: Services, d: Draw, viewer_id: str, t: int) -> str:
    """Put a viewer in an open draw (once); returns their entrant pseudonym."""
    if d.status != "open" or t >= d.closes_ms:
        raise Conflict("entries are closed", code="draw_closed")
    existing = await store.entry(services.db, d.id, viewer_id)
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
        again = await store.entry(services.db, d.id, viewer_id)
        if again is None:
            raise
        return again.entrant
    _engine(services).entered(d)
    await services.hub.send_private(d.room_id, viewer_id, _entry_frame(d, entry.entrant))
    await intents.record(
        services.db, room_id=d.room_id, viewer_id=viewer_id, kind="draw.entered",
        event_id=f"draw:{d.id}:entered:{viewer_id}", data={"draw": d.code},
    )  # fmt: skip
    return entry.entrant


async def do_enter(services: Services, principal: Principal, ref: wire.DrawRef) -> wire.Entry:
    """A viewer presses "join" (or the phone joins for them in an everyone draw)."""
    assert principal.viewer_id is not None
    d = await store.load_draw(services.db, principal.room_id, ref.id)
    if d.mode not in ("join", "everyone", "shake"):
        raise Forbidden(f"this draw is entered by {d.mode}, not by joining", code="not_eligible")
    return wire.Entry(d.id or 0, await enter(services, d, principal.viewer_id, now_ms()))


async def do_shake(services: Services, principal: Principal, shake: wire.Shake) -> wire.Entry:
    """Shakes a phone counted in a shake race (aggregated by the phone; at most 50 per message)."""
    assert principal.viewer_id is not None
    d = await store.load_draw(services.db, principal.room_id, shake.id)
    if d.mode != "shake":
        raise InvalidInput("this draw is not a shake race")
    n = wire.checked(shake.count)
    t = now_ms()
    engine = _engine(services)
    if not engine.shake_allowed(d, principal.viewer_id, t):
        raise RateLimited("one shake message every 500 ms: gather the shakes on the phone")
    entrant = await enter(services, d, principal.viewer_id, t)
    engine.shake(d, principal.viewer_id, n)
    return wire.Entry(d.id or 0, entrant)


async def on_item(services: Services, room_id: str, viewer_id: str, text: str) -> None:
    """A comment during a keyword draw's window that contains the keyword enters its author."""
    d = await store.open_draw_cached(services.db, room_id)
    if d is None or d.mode != "keyword" or not d.keyword:
        return
    if normalize_for_match(d.keyword) in normalize_for_match(text):
        with contextlib.suppress(Conflict):
            await enter(services, d, viewer_id, now_ms())
