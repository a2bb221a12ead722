"""Journey instances through their steps: waits set the next wake-up, sends become messages.

A due instance is leased while its steps run (any number of workers share them); a message for a step
is inserted with the unique ``idem_key`` ``j<instance>:<step>`` in the same transaction that moves the
instance on, so a crash repeats the step at most into a no-op.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.followup import contacts, rules
from server.followup.store import insert_ignore, new_message
from server.storage import Database, now_ms
from server.storage.followup import (
    Journey,
    JourneyInstance,
    Message,
)

INSTANCES_PER_BATCH = 100
# A worker holds a due instance this long while running its steps (a crash frees it after that).
INSTANCE_LEASE_MS = 30_000


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
