"""What a message must pass before it is composed, in the order of docs/followup.md#delivery: the
journey still wants it (goal not reached, not paused), not stale, a reachable address with consent
(read now, not when the step was scheduled), quiet hours (held), the frequency cap (capped)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.followup import contacts, rules
from server.storage.followup import (
    Campaign,
    Consent,
    Contact,
    FollowupSettings,
    Journey,
    JourneyInstance,
    Message,
    PushSubscription,
)

# Held by a paused journey: look again this much later.
PAUSED_RECHECK_MS = 60_000


@dataclass(frozen=True)
class Go:
    """The message may go, on this channel (an ``auto`` message's pick), to this contact."""

    channel: str
    contact: Contact | None


@dataclass(frozen=True)
class Stop:
    """The message does not go now: a final status with its reason, or back to the queue until
    ``until_ms`` (held) without counting an attempt."""

    status: str
    reason: str | None
    until_ms: int | None = None


def address_of(contact: Contact | None, channel: str, viewer_id: str | None) -> str | None:
    if channel == "email":
        return contact.email if contact else None
    if channel == "sms":
        return contact.phone if contact else None
    if channel == "inapp":
        return viewer_id or (contact.id if contact else None)
    return None


async def permitted(
    session: AsyncSession, contact: Contact | None, channel: str, transactional: bool, confirming: bool
) -> str | None:
    """Why this channel may not be used for this contact now, or None if it may."""
    if channel in ("webhook", "inapp"):
        if channel == "inapp" and contact is not None:
            consent = await session.get(Consent, (contact.id, "inapp"))
            if consent is not None and consent.status in ("blocked", "withdrawn") and not transactional:
                return f"in-app messages {consent.status}"
        return None
    if contact is None:
        return "not a contact yet (no address left)"
    consent = await session.get(Consent, (contact.id, channel))
    if consent is not None and consent.status == "blocked":
        return f"do not contact ({channel}): {consent.reason or 'blocked'}"
    if confirming:
        return None  # the double opt-in email itself goes to a pending address
    if transactional:
        return (
            None
            if consent is None or consent.status != "withdrawn" or channel != "push"
            else "push withdrawn"
        )
    if consent is None or consent.status != "granted":
        state = "no consent" if consent is None else consent.status
        return f"{channel}: {state}"
    return None


async def pick_channel(
    session: AsyncSession, contact: Contact | None, message: Message, configured: Collection[str]
) -> tuple[str | None, str | None]:
    """(channel, why not) for an ``auto`` message: the first channel configured in this process that
    may carry it (an SMS consent on a server without an SMS gateway must not make it skip)."""
    reasons = []
    for channel in rules.AUTO_ORDER:
        if channel not in configured:
            reasons.append(f"{channel} is not configured on this server")
            continue
        if channel == "push":
            if contact is None or not await push_subs(session, contact.id):
                reasons.append("push: no subscription")
                continue
        elif channel != "inapp" and address_of(contact, channel, message.viewer_id) is None:
            reasons.append(f"{channel}: no address")
            continue
        why = await permitted(session, contact, channel, message.transactional, False)
        if why is None:
            return channel, None
        reasons.append(why)
    return None, "; ".join(reasons)


async def push_subs(session: AsyncSession, contact_id: str) -> list[PushSubscription]:
    return list(
        (
            await session.exec(
                select(PushSubscription)
                .where(PushSubscription.contact_id == contact_id)
                .order_by(col(PushSubscription.created_ms))
            )
        ).all()
    )


async def sent_since(session: AsyncSession, contact_id: str, since_ms: int) -> int:
    n = (
        await session.exec(
            select(func.count())
            .select_from(Message)
            .where(
                Message.contact_id == contact_id,
                col(Message.transactional).is_(False),
                col(Message.channel).not_in(["inapp", "webhook"]),
                col(Message.sent_ms) >= since_ms,
            )
        )
    ).one()
    return int(n)


async def check(
    session: AsyncSession, message: Message, settings: FollowupSettings, configured: Collection[str], t: int
) -> Go | Stop:
    """Whether ``message`` goes now, read afresh (consent, the journey's state, what was sent)."""
    if message.instance_id is not None:
        inst = await session.get(JourneyInstance, message.instance_id)
        if inst is not None and inst.status in ("goal", "cancelled"):
            return Stop("cancelled", f"journey ended: {inst.end_reason}")
        journey = await session.get(Journey, message.journey_id) if message.journey_id else None
        if journey is not None and journey.status != "active":
            return Stop("scheduled", "journey paused", t + PAUSED_RECHECK_MS)
    if message.campaign_id is not None:
        campaign = await session.get(Campaign, message.campaign_id)
        if campaign is not None and campaign.status == "cancelled":
            return Stop("cancelled", "campaign cancelled")
    if message.stale_ms is not None and t > message.stale_ms:
        return Stop("stale", "too late to be useful")
    contact = await contacts.live(session, message.contact_id) if message.contact_id else None
    if contact is None and message.viewer_id is not None:
        contact = await contacts.contact_of_viewer(session, message.viewer_id)
    confirming = message.idem_key.startswith("optin:")
    channel = message.channel
    if channel == "auto":
        picked, why = await pick_channel(session, contact, message, configured)
        if picked is None:
            return Stop("skipped", why)
        channel = picked
    else:
        why = await permitted(session, contact, channel, message.transactional, confirming)
        if why is not None:
            return Stop("skipped", why)
    # Quiet hours and caps protect people from being disturbed: in-app messages wait in the
    # app until opened and webhooks go to the shop's systems, so neither is held or counted.
    if not message.transactional and not confirming and channel not in ("webhook", "inapp"):
        hold = rules.quiet_hold(t, settings.quiet_start, settings.quiet_end, contact.tz if contact else None)
        if hold is not None:
            if message.stale_ms is not None and hold > message.stale_ms:
                return Stop("stale", "quiet hours last past its useful time")
            return Stop("scheduled", "quiet hours", hold)
        if contact is not None:
            day = await sent_since(session, contact.id, t - 24 * 3600 * 1000)
            week = await sent_since(session, contact.id, t - 7 * 24 * 3600 * 1000)
            why = rules.capped(day, week, settings.cap_per_day, settings.cap_per_week)
            if why is not None:
                return Stop("capped", why)
    return Go(channel, contact)
