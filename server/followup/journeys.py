"""Journeys: events in, instances started, ended by their goal, or held while their journey is paused.

Events are taken up once (``IntentEvent.routed``), read with SKIP LOCKED on PostgreSQL (SQLite has one
writer at a time) and marked in the same transaction as what they caused. Instances then go through
their steps in instances.py.
"""

from __future__ import annotations

import logging

import orjson
from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.followup import contacts, rules
from server.followup.store import ensure_room, insert_ignore
from server.storage import Database, now_ms
from server.storage.followup import (
    Contact,
    ContactViewer,
    Journey,
    JourneyInstance,
    Message,
    PausedEntry,
)
from server.storage.models import IntentEvent

log = logging.getLogger("livewall.followup")

EVENTS_PER_BATCH = 200
# A goal logged up to this long before its entry event still counts (events arrive out of order);
# older ones belong to an earlier visit.
GOAL_LOOKBACK_MS = 10 * 60 * 1000


def _facts(event: IntentEvent) -> rules.EventFacts:
    return rules.EventFacts(event.kind, event.source, event.product_id, event.order_id, event.discount_id)


async def _viewer_of(session: AsyncSession, event: IntentEvent) -> str | None:
    """The viewer an event is about; a shop event naming only an order inherits the viewer of an
    earlier event of the same order (placed with a coupon code or a tagged buy link)."""
    if event.viewer_id is not None or event.order_id is None:
        return event.viewer_id
    return (
        await session.exec(
            select(IntentEvent.viewer_id).where(
                IntentEvent.room_id == event.room_id,
                IntentEvent.order_id == event.order_id,
                col(IntentEvent.viewer_id).is_not(None),
            )
        )
    ).first()


async def _person(session: AsyncSession, viewer_id: str) -> tuple[Contact | None, str, list[str]]:
    """(contact, subject, every viewer id of the person) of a viewer."""
    contact = await contacts.contact_of_viewer(session, viewer_id)
    if contact is None:
        return None, f"v:{viewer_id}", [viewer_id]
    rows = await session.exec(select(ContactViewer.viewer_id).where(ContactViewer.contact_id == contact.id))
    return contact, f"c:{contact.id}", sorted({viewer_id, *rows.all()})


def _takes(journey: Journey, facts: rules.EventFacts) -> str | None:
    """The instance key if this event enters the journey (its entry, conditions and key), else None."""
    if journey.entry != facts.kind or not rules.matches_entry(orjson.loads(journey.conditions), facts):
        return None
    return rules.entry_key(journey.key_by, facts)


async def _start(
    session: AsyncSession,
    journey: Journey,
    event: IntentEvent,
    viewer_id: str,
    subject: str,
    key: str,
    t: int,
) -> bool:
    """A new instance of the journey for this person and key, due now; False if they had one."""
    context = {
        "product_id": event.product_id,
        "order_id": event.order_id,
        "discount_id": event.discount_id,
        "claim_id": event.claim_id,
        "event": event.kind,
    }
    return await insert_ignore(
        session,
        JourneyInstance,
        {
            "journey_id": journey.id,
            "room_id": event.room_id,
            "subject": subject,
            "viewer_id": viewer_id,
            "entry_key": key,
            "context": orjson.dumps(context).decode(),
            "status": "active",
            "step": 0,
            "wake_ms": t,
            "lease_ms": 0,
            "created_ms": t,
        },
    )


async def _route(session: AsyncSession, event: IntentEvent, journeys: list[Journey]) -> None:
    viewer_id = await _viewer_of(session, event)
    if viewer_id is None:
        return
    contact, subject, viewer_ids = await _person(session, viewer_id)
    subjects = [f"v:{viewer_id}"] + ([subject] if contact is not None else [])
    facts = _facts(event)
    t = now_ms()
    for journey in journeys:
        if journey.goal == event.kind:
            running = (
                await session.exec(
                    select(JourneyInstance).where(
                        JourneyInstance.journey_id == journey.id,
                        col(JourneyInstance.subject).in_(subjects),
                        # A finished instance may still have a message waiting (quiet hours, a
                        # retry): the goal stops that too.
                        col(JourneyInstance.status).in_(["active", "done"]),
                    )
                )
            ).all()
            for inst in running:
                if rules.goal_reached(journey.key_by, inst.entry_key, facts):
                    inst.status, inst.end_reason, inst.ended_ms = "goal", event.kind, t
                    session.add(inst)
                    await session.exec(
                        update(Message)
                        .where(col(Message.instance_id) == inst.id, col(Message.status) == "scheduled")
                        .values(status="cancelled", reason=f"goal reached: {event.kind}")
                    )
        key = _takes(journey, facts)
        if key is None or await _goal_came_first(session, journey, key, event, viewer_ids):
            continue
        if journey.status == "active":
            await _start(session, journey, event, viewer_id, subject, key, t)
        else:
            await _keep_while_paused(session, journey, event, viewer_id, t)
    if event.kind == "order.paid":
        await _convert(session, event.room_id, viewer_id, contact.id if contact is not None else None, t)


async def _keep_while_paused(
    session: AsyncSession, journey: Journey, event: IntentEvent, viewer_id: str, t: int
) -> None:
    """An entry reaching a paused journey is held until it resumes, or recorded as skipped when the
    journey skips entries while paused (its ``while_paused``, read as the event is taken up)."""
    skip = journey.while_paused == "skip"
    await insert_ignore(
        session,
        PausedEntry,
        {
            "journey_id": journey.id,
            "room_id": event.room_id,
            "event_id": event.id,
            "viewer_id": viewer_id,
            "status": "skipped" if skip else "held",
            "reason": "skipped while paused" if skip else None,
            "created_ms": t,
            "ended_ms": t if skip else None,
        },
    )


async def release_held(db: Database, journey_id: int | None = None) -> int:
    """Entries held by journeys that are active again go in (of one journey, if given), oldest event
    first, a batch at a time. Each is decided in a transaction of its own by a conditional UPDATE
    (of two workers, one releases it), and what it starts is unique per person, journey and key, so
    nobody enters twice."""
    active = select(Journey.id).where(Journey.status == "active")
    if journey_id is not None:
        active = active.where(col(Journey.id) == journey_id)
    async with db.session() as session:
        ids = (
            await session.exec(
                select(PausedEntry.id)
                .where(PausedEntry.status == "held", col(PausedEntry.journey_id).in_(active))
                .order_by(col(PausedEntry.event_id))
                .limit(EVENTS_PER_BATCH)
                .with_for_update(skip_locked=True)
            )
        ).all()
        await session.commit()
    released = 0
    for entry_id in ids:
        t = now_ms()
        async with db.session() as session:
            entry = (
                await session.exec(
                    select(PausedEntry)
                    .where(col(PausedEntry.id) == entry_id, PausedEntry.status == "held")
                    .with_for_update()
                )
            ).first()
            decided = await _release(session, entry, t) if entry is not None else None
            if decided is None:
                continue  # released by another worker, or its journey was paused again meanwhile
            status, reason = decided
            taken = await session.exec(
                update(PausedEntry)
                .where(col(PausedEntry.id) == entry_id, col(PausedEntry.status) == "held")
                .values(status=status, reason=reason, ended_ms=t)
            )
            if taken.rowcount:
                await session.commit()
                released += 1
            else:
                await session.rollback()
    return released


async def _release(session: AsyncSession, entry: PausedEntry, t: int) -> tuple[str, str | None] | None:
    """What becomes of a held entry now that its journey is active (None: it stays held): checked as
    at its arrival, with the journey as it is now and every goal logged since (paid while paused: no
    reminder). Its waits count from now, the resume: nobody gets a "30 minutes later" reminder at
    once for a click of hours ago."""
    event = await session.get(IntentEvent, entry.event_id)
    journey = await session.get(Journey, entry.journey_id)
    if journey is not None and journey.status != "active":
        return None
    if event is None or journey is None:
        return "skipped", "the journey or the event is gone"
    key = _takes(journey, _facts(event))
    if key is None:
        return "skipped", "the journey no longer takes this event (edited while paused)"
    _contact, subject, viewer_ids = await _person(session, entry.viewer_id)
    if await _goal_came_first(session, journey, key, event, viewer_ids):
        return "goal", f"goal reached while paused: {journey.goal}"
    if not await _start(session, journey, event, entry.viewer_id, subject, key, t):
        return "skipped", "already in this journey (one instance per person and key)"
    return "entered", None


async def _goal_came_first(
    session: AsyncSession, journey: Journey, key: str, event: IntentEvent, viewer_ids: list[str]
) -> bool:
    """Whether the journey's goal was already logged for this person and key, shortly before the
    entry event or after it (shop webhooks arrive out of order: an order paid before it was placed)."""
    if journey.goal is None:
        return False
    goals = (
        await session.exec(
            select(IntentEvent).where(
                IntentEvent.room_id == event.room_id,
                IntentEvent.kind == journey.goal,
                col(IntentEvent.viewer_id).in_(viewer_ids),
                col(IntentEvent.created_ms) >= event.created_ms - GOAL_LOOKBACK_MS,
            )
        )
    ).all()
    return any(rules.goal_reached(journey.key_by, key, _facts(g)) for g in goals)


async def _convert(
    session: AsyncSession, room_id: str, viewer_id: str, contact_id: str | None, t: int
) -> None:
    """Attribute a payment to the last message the person got within the conversion window."""
    who = col(Message.viewer_id) == viewer_id
    if contact_id is not None:
        who = or_(who, col(Message.contact_id) == contact_id)
    last = (
        await session.exec(
            select(Message)
            .where(who, Message.room_id == room_id, col(Message.sent_ms) >= t - rules.CONVERSION_WINDOW_MS)
            .order_by(col(Message.sent_ms).desc())
        )
    ).first()
    if last is not None and last.converted_ms is None:
        last.converted_ms = t
        session.add(last)


async def route_events(db: Database) -> int:
    """Take up new events: goals end instances, entries start them, payments convert messages."""
    async with db.session() as session:
        events = (
            await session.exec(
                select(IntentEvent)
                .where(col(IntentEvent.routed).is_(False))
                .order_by(col(IntentEvent.id))
                .limit(EVENTS_PER_BATCH)
                .with_for_update(skip_locked=True)
            )
        ).all()
        by_room: dict[str, list[Journey]] = {}
        for event in events:
            if event.room_id not in by_room:
                await ensure_room(session, event.room_id)
                by_room[event.room_id] = list(
                    (await session.exec(select(Journey).where(Journey.room_id == event.room_id))).all()
                )
            await _route(session, event, by_room[event.room_id])
            event.routed = True
            session.add(event)
        await session.commit()
    return len(events)
