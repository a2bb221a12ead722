"""Journeys: events in, instances through their steps, messages out.

Work is claimed from the database, so any number of processes (the server's embedded loop, or
``livewall worker`` processes) share it without doing anything twice:
- events are taken up once (``IntentEvent.routed``), rows claimed with SKIP LOCKED on PostgreSQL
  (SQLite has one writer at a time) and marked in the same transaction as what they caused;
- a due instance is leased while its steps run; a message for a step is inserted with the unique
  ``idem_key`` ``j<instance>:<step>`` in the same transaction that moves the instance on.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import orjson
from babel.numbers import format_currency
from sqlalchemy import func, literal_column, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.followup import contacts, defaults, rules
from server.products.rules import currency_digits
from server.storage import Database, now_ms
from server.storage.followup import (
    Campaign,
    Contact,
    ContactViewer,
    FollowupSettings,
    Journey,
    JourneyInstance,
    Message,
    PausedEntry,
    Template,
)
from server.storage.models import Claim, Draw, DrawWinner, Follow, IntentEvent, Product, Room, RoomViewer

log = logging.getLogger("livewall.followup")

EVENTS_PER_BATCH = 200
# A goal logged up to this long before its entry event still counts (events arrive out of order);
# older ones belong to an earlier visit.
GOAL_LOOKBACK_MS = 10 * 60 * 1000
INSTANCES_PER_BATCH = 100
# A worker holds a due instance this long while running its steps (a crash frees it after that).
INSTANCE_LEASE_MS = 30_000
# Campaign messages are created in chunks, each its own transaction (a crash resumes where it was).
CAMPAIGN_CHUNK = 500
SEGMENTS = ("attended", "clicked_not_paid", "claimed_not_redeemed", "winners", "followers", "contacts")


async def insert_ignore(session: AsyncSession, table: type[SQLModel], values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True if the row was inserted."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    maker = pg_insert if dialect == "postgresql" else sqlite_insert
    # RETURNING says whether a row went in: the driver's rowcount is -1 here on PostgreSQL (psycopg).
    statement: Any = maker(table).values(**values).on_conflict_do_nothing().returning(literal_column("1"))
    result = await session.exec(statement)
    return result.first() is not None


def new_message(t: int, **fields: Any) -> dict[str, Any]:
    """The column values of a message due now, for ``insert_ignore`` (core inserts get no defaults)."""
    return {
        "context": "{}",
        "transactional": False,
        "status": "scheduled",
        "attempts": 0,
        "next_ms": t,
        "lease_ms": 0,
        "created_ms": t,
        **fields,
    }


async def ensure_room(session: AsyncSession, room_id: str) -> FollowupSettings:
    """The room's follow-up settings, creating them with the ready-made journeys and templates."""
    found = await session.get(FollowupSettings, room_id)
    if found is not None:
        return found
    t = now_ms()
    for spec in defaults.JOURNEYS:
        clean = rules.clean_journey(spec)
        await insert_ignore(
            session,
            Journey,
            {
                "room_id": room_id,
                "key": clean["key"],
                "name": clean["name"],
                "entry": clean["entry"],
                "key_by": clean["key_by"],
                "goal": clean["goal"],
                "conditions": orjson.dumps(clean["conditions"]).decode(),
                "steps": orjson.dumps(clean["steps"]).decode(),
                "status": "active",
                "created_ms": t,
                "updated_ms": t,
            },
        )
    for (key, locale), (subject, body) in defaults.TEMPLATES.items():
        await insert_ignore(
            session,
            Template,
            {
                "room_id": room_id,
                "key": key,
                "channel": "*",
                "locale": locale,
                "subject": subject,
                "body": body,
                "updated_ms": t,
            },
        )
    await insert_ignore(session, FollowupSettings, FollowupSettings(room_id=room_id).model_dump())
    await session.flush()
    found = await session.get(FollowupSettings, room_id)
    assert found is not None
    return found


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


async def _claim_due_instances(session: AsyncSession, t: int) -> list[JourneyInstance]:
    """Lease due instances; each is taken by a conditional UPDATE (one worker wins, as for messages)."""
    ids = (
        await session.exec(
            select(JourneyInstance.id)
            .where(
                JourneyInstance.status == "active",
                col(JourneyInstance.wake_ms) <= t,
                col(JourneyInstance.lease_ms) < t,
            )
            .order_by(col(JourneyInstance.wake_ms))
            .limit(INSTANCES_PER_BATCH)
            .with_for_update(skip_locked=True)
        )
    ).all()
    mine: list[int] = []
    for instance_id in ids:
        taken = await session.exec(
            update(JourneyInstance)
            .where(
                col(JourneyInstance.id) == instance_id,
                col(JourneyInstance.status) == "active",
                col(JourneyInstance.wake_ms) <= t,
                col(JourneyInstance.lease_ms) < t,
            )
            .values(lease_ms=t + INSTANCE_LEASE_MS)
        )
        if taken.rowcount:
            mine.append(instance_id)  # type: ignore[arg-type]
    await session.commit()
    if not mine:
        return []
    return list((await session.exec(select(JourneyInstance).where(col(JourneyInstance.id).in_(mine)))).all())


async def advance_instances(db: Database, *, time_scale: float = 1.0) -> int:
    """Run the due steps of journey instances: waits set the next wake-up, sends become messages."""
    t = now_ms()
    async with db.session() as session:
        due = await _claim_due_instances(session, t)
    for inst in due:
        async with db.session() as session:
            await _advance(session, inst, t, time_scale)
    return len(due)


async def _advance(session: AsyncSession, inst: JourneyInstance, t: int, time_scale: float) -> None:
    current = await session.get(JourneyInstance, inst.id)
    journey = await session.get(Journey, inst.journey_id)
    if current is None or journey is None or current.status != "active" or current.lease_ms != inst.lease_ms:
        return
    if journey.status != "active":
        # A paused journey holds its people where they are; they go on when it is resumed.
        await _move_on(session, inst, step=current.step, wake_ms=t + 60_000)
        return
    steps: list[dict[str, Any]] = orjson.loads(journey.steps)
    contact = await contacts.subject_contact(session, current.subject)
    context = orjson.loads(current.context)
    step_no, wake_ms = current.step, current.wake_ms
    while step_no < len(steps):
        step = steps[step_no]
        if "wait" in step:
            wake_ms = rules.wait_until(step, t, contact.tz if contact else None, time_scale)
            step_no += 1
            break
        send = step["send"]
        stale = send.get("stale_minutes")
        await insert_ignore(
            session,
            Message,
            new_message(
                t,
                idem_key=f"j{current.id}:{step_no}",
                room_id=current.room_id,
                journey_id=journey.id,
                instance_id=current.id,
                step=step_no,
                contact_id=contact.id if contact is not None else None,
                viewer_id=current.viewer_id,
                channel=send["channel"],
                template=send["template"],
                transactional=send.get("transactional", False),
                context=orjson.dumps({**context, "coupon": send.get("coupon")}).decode(),
                stale_ms=t + int(stale * 60_000 * time_scale) if stale else None,
            ),
        )
        step_no += 1
    else:
        await _move_on(session, inst, step=step_no, wake_ms=wake_ms, done_ms=t)
        return
    await _move_on(session, inst, step=step_no, wake_ms=wake_ms)


async def _move_on(
    session: AsyncSession, inst: JourneyInstance, *, step: int, wake_ms: int, done_ms: int | None = None
) -> None:
    """Commit the instance's progress (with the messages inserted for it) only if this worker still
    holds it and no goal ended it meanwhile; otherwise nothing of this pass is kept."""
    values: dict[str, Any] = {"step": step, "wake_ms": wake_ms, "lease_ms": 0}
    if done_ms is not None:
        values.update(status="done", end_reason="completed", ended_ms=done_ms)
    result = await session.exec(
        update(JourneyInstance)
        .where(
            col(JourneyInstance.id) == inst.id,
            col(JourneyInstance.status) == "active",
            col(JourneyInstance.lease_ms) == inst.lease_ms,
        )
        .values(**values)
    )
    if result.rowcount:
        await session.commit()
    else:
        await session.rollback()


async def segment_people(session: AsyncSession, room_id: str, segment: str) -> list[tuple[str, str | None]]:
    """(viewer id, contact id or None) of a room's audience segment, one row per person."""
    ev = IntentEvent
    viewers: Any
    if segment == "attended":
        viewers = select(RoomViewer.viewer_id).where(RoomViewer.room_id == room_id)
    elif segment == "clicked_not_paid":
        # A payment names its viewer, or only its order: then the viewer of the order's other events.
        order = aliased(IntentEvent)
        paid_orders = select(ev.order_id).where(
            ev.room_id == room_id, ev.kind == "order.paid", col(ev.order_id).is_not(None)
        )
        paid = (
            select(ev.viewer_id)
            .where(ev.room_id == room_id, ev.kind == "order.paid", col(ev.viewer_id).is_not(None))
            .union(
                select(order.viewer_id).where(
                    order.room_id == room_id,
                    col(order.order_id).in_(paid_orders),
                    col(order.viewer_id).is_not(None),
                )
            )
        )
        viewers = select(ev.viewer_id).where(
            ev.room_id == room_id, ev.kind == "product.buy", col(ev.viewer_id).not_in(paid)
        )
    elif segment == "claimed_not_redeemed":
        viewers = select(Claim.viewer_id).where(
            Claim.room_id == room_id, col(Claim.status).in_(["reserved", "expired", "released"])
        )
    elif segment == "winners":
        viewers = (
            select(DrawWinner.viewer_id)
            .join(Draw, col(Draw.id) == col(DrawWinner.draw_id))
            .where(Draw.room_id == room_id, DrawWinner.status != "absent")
        )
    elif segment == "followers":
        viewers = select(Follow.viewer_id).where(Follow.room_id == room_id)
    elif segment == "contacts":
        viewers = select(RoomViewer.viewer_id).where(
            RoomViewer.room_id == room_id,
            col(RoomViewer.viewer_id).in_(select(ContactViewer.viewer_id)),
        )
    else:
        raise ValueError(segment)
    viewer_ids = sorted({v for v in (await session.exec(viewers)).all() if v is not None})
    links: dict[str, str] = {}
    for i in range(0, len(viewer_ids), 500):
        chunk = viewer_ids[i : i + 500]
        for link in (
            await session.exec(select(ContactViewer).where(col(ContactViewer.viewer_id).in_(chunk)))
        ).all():
            links[link.viewer_id] = link.contact_id
    rows = [(v, links.get(v)) for v in viewer_ids]
    people: dict[str, tuple[str, str | None]] = {}
    for viewer_id, contact_id in rows:
        # Links always name a live contact: a merge moves them to the survivor.
        person = f"c:{contact_id}" if contact_id else f"v:{viewer_id}"
        people.setdefault(person, (viewer_id, contact_id))
    return list(people.values())


# A worker filling a campaign holds it this long; a crash lets another worker resume the filling.
CAMPAIGN_LEASE_MS = 120_000


def _fillable(t: int) -> Any:
    """Campaigns to fill now: due ones, and those whose filler died before finishing."""
    return or_(
        (col(Campaign.status) == "scheduled") & (col(Campaign.send_ms) <= t),
        (col(Campaign.status) == "sending")
        & col(Campaign.populated).is_(False)
        & (col(Campaign.lease_ms) < t),
    )


async def start_campaigns(db: Database) -> int:
    """Due campaigns: their segment becomes messages (one per person, idempotent by campaign, so a
    filler that crashed is resumed by the next without duplicates)."""
    t = now_ms()
    async with db.session() as session:
        ids = (
            await session.exec(select(Campaign.id).where(_fillable(t)).with_for_update(skip_locked=True))
        ).all()
        mine = []
        for campaign_id in ids:
            taken = await session.exec(
                update(Campaign)
                .where(col(Campaign.id) == campaign_id, _fillable(t))
                .values(status="sending", lease_ms=t + CAMPAIGN_LEASE_MS)
            )
            if taken.rowcount:
                mine.append(campaign_id)
        await session.commit()
        due = (
            list((await session.exec(select(Campaign).where(col(Campaign.id).in_(mine)))).all())
            if mine
            else []
        )
    for campaign in due:
        async with db.session() as session:
            people = await segment_people(session, campaign.room_id, campaign.segment)
        for i in range(0, len(people), CAMPAIGN_CHUNK):
            async with db.session() as session:
                for viewer_id, contact_id in people[i : i + CAMPAIGN_CHUNK]:
                    await insert_ignore(
                        session,
                        Message,
                        new_message(
                            t,
                            idem_key=f"k{campaign.id}:{contact_id or viewer_id}",
                            room_id=campaign.room_id,
                            campaign_id=campaign.id,
                            contact_id=contact_id,
                            viewer_id=viewer_id,
                            channel=campaign.channel,
                            template=campaign.template,
                        ),
                    )
                await session.commit()
        async with db.session() as session:
            await session.exec(
                update(Campaign)
                .where(col(Campaign.id) == campaign.id)
                .values(total=len(people), populated=True, lease_ms=0)
            )
            # Cancelled while it was being filled: what was just created does not go out either.
            await session.exec(
                update(Message)
                .where(
                    col(Message.campaign_id) == campaign.id,
                    col(Message.status) == "scheduled",
                    col(Message.campaign_id).in_(select(Campaign.id).where(Campaign.status == "cancelled")),
                )
                .values(status="cancelled", reason="campaign cancelled")
            )
            await session.commit()
    return len(due)


async def finish_campaigns(db: Database) -> None:
    """A sending campaign is done once all its messages exist and none of them waits any more."""
    async with db.session() as session:
        sending = (
            await session.exec(
                select(Campaign).where(Campaign.status == "sending", col(Campaign.populated).is_(True))
            )
        ).all()
        for campaign in sending:
            waiting = (
                await session.exec(
                    select(func.count())
                    .select_from(Message)
                    .where(
                        Message.campaign_id == campaign.id,
                        col(Message.status).in_(["scheduled", "claimed", "sending", "uncertain"]),
                    )
                )
            ).one()
            if waiting == 0:
                await session.exec(
                    update(Campaign)
                    .where(col(Campaign.id) == campaign.id, col(Campaign.status) == "sending")
                    .values(status="done")
                )
        await session.commit()


async def template_context(
    session: AsyncSession, message: Message, *, base_url: str, contact_name: str | None
) -> dict[str, Any]:
    """The variables of a message's template (docs/followup.md#templates)."""
    data: dict[str, Any] = orjson.loads(message.context or "{}")
    room = await session.get(Room, message.room_id)
    product = await session.get(Product, data["product_id"]) if data.get("product_id") else None
    coupon = data.get("coupon")
    if data.get("claim_id"):
        claim = await session.get(Claim, data["claim_id"])
        coupon = claim.code if claim is not None else coupon
    ctx: dict[str, Any] = {
        "contact": {"name": contact_name},
        "room": {"title": room.title if room else "", "url": f"{base_url}/r/{message.room_id}"},
        "coupon": coupon,
        "order_id": data.get("order_id"),
        "product": None,
    }
    if product is not None:
        ctx["product"] = {
            "name": product.name,
            "price": format_currency(
                product.price_minor / 10 ** _digits(product.currency), product.currency, locale="en"
            ),
            "url": f"{base_url}/r/{message.room_id}/buy/{product.id}",
            "image_url": product.image_url,
        }
    return ctx


def _digits(currency: str) -> int:
    return currency_digits(currency)


# Confirmation emails per contact and address a day, and per address across contacts: the opt-in
# box must not become a way to mail-bomb someone from the shop's domain.
CONFIRMATIONS_PER_DAY = 3


async def queue_confirmation(db: Database, room_id: str, contact: Contact, address: str | None) -> bool:
    """The double opt-in email to ``address``: at most one per contact, address and day (whatever the
    retries), and a few per address a day in all. False when the limit held it back."""
    if address is None:
        return False
    t = now_ms()
    digest = hashlib.sha256(address.encode()).hexdigest()[:16]
    day = t // 86_400_000
    async with db.session() as session:
        recent = (
            await session.exec(
                select(func.count())
                .select_from(Message)
                .where(
                    col(Message.idem_key).like(f"optin:%:{digest}:%"),
                    col(Message.created_ms) >= t - 86_400_000,
                )
            )
        ).one()
        if recent >= CONFIRMATIONS_PER_DAY:
            return False
        await insert_ignore(
            session,
            Message,
            new_message(
                t,
                idem_key=f"optin:{contact.id}:{digest}:{day}",
                room_id=room_id,
                contact_id=contact.id,
                channel="email",
                template="confirm-email",
                transactional=True,
                context=orjson.dumps({"address": address}).decode(),
            ),
        )
        await session.commit()
    return True
