"""What follows a recorded outcome: an in-app message shown at once, an address that is gone blocked
(a push subscription deleted), and the journey's circuit breaker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import col, select

from server.followup import contacts, rules
from server.followup.channels import (
    Outgoing,
)
from server.storage import Database, now_ms
from server.storage.followup import (
    Alert,
    Contact,
    ContactViewer,
    FollowupSettings,
    Journey,
    Message,
    PushSubscription,
)

DELIVERED = ("sent", "delivered", "opened", "clicked")


async def show_now(
    db: Database,
    on_inapp: Callable[[str, list[str], dict[str, Any]], Awaitable[None]],
    message: Message,
    outgoing: Outgoing,
    contact: Contact | None,
) -> None:
    """An in-app message reaches the person's phones that have the room open right away."""
    viewers = {message.viewer_id} if message.viewer_id else set()
    if contact is not None:
        async with db.session() as session:
            rows = await session.exec(
                select(ContactViewer.viewer_id).where(ContactViewer.contact_id == contact.id)
            )
            viewers.update(rows.all())
    item = {"id": message.id, "subject": outgoing.subject, "text": outgoing.text, "sent_ms": now_ms()}
    await on_inapp(message.room_id, sorted(v for v in viewers if v), item)


async def forget_address(
    db: Database, contact: Contact, channel: str, outgoing: Outgoing, reason: str | None
) -> None:
    """The address no longer exists: block that channel (a push subscription is deleted)."""
    if channel == "push":
        async with db.session() as session:
            await session.exec(delete(PushSubscription).where(col(PushSubscription.endpoint) == outgoing.to))
            await session.commit()
        return
    await contacts.say(
        db,
        contact.id,
        contacts.Say(channel, "blocked", source="provider", reason="bounced", wording=reason),
    )


async def breaker(db: Database, journey_id: int, room_id: str, settings: FollowupSettings) -> str | None:
    """The circuit breaker: a journey whose recent outcomes failed too often pauses itself and stores
    an alert; returns the alert's text (None when it did not trip, or another send tripped it)."""
    async with db.session() as session:
        recent = (
            await session.exec(
                select(Message.status)
                .join(Journey, col(Journey.id) == col(Message.journey_id))
                .where(
                    Message.journey_id == journey_id,
                    col(Message.status).in_([*DELIVERED, "failed", "dead"]),
                    # Outcomes from before the host last resumed the journey do not count again.
                    col(Message.created_ms) >= col(Journey.resumed_ms),
                )
                .order_by(col(Message.id).desc())
                .limit(rules.BREAKER_WINDOW)
            )
        ).all()
        outcomes = [s in ("failed", "dead") for s in recent]
        if not rules.breaker_trips(outcomes, settings.failure_pause_ratio, settings.failure_min_sends):
            return None
        journey = await session.get(Journey, journey_id)
        if journey is None or journey.status != "active":
            return None
        text = (
            f"Journey “{journey.name}” paused itself: {sum(outcomes)} of its last {len(outcomes)} "
            f"messages failed (threshold {settings.failure_pause_ratio:.0%})."
        )
        # Conditional: of two sends that trip the breaker together, one pauses and alerts.
        paused = await session.exec(
            update(Journey)
            .where(col(Journey.id) == journey_id, col(Journey.status) == "active")
            .values(status="paused", paused_reason=text)
        )
        if not paused.rowcount:
            return None
        session.add(Alert(room_id=room_id, kind="journey.paused", text=text, created_ms=now_ms()))
        await session.commit()
    return text
