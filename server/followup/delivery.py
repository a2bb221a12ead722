"""Delivery: due messages are claimed, checked, rendered and handed to their channel.

The order of checks is the order of docs/followup.md#delivery: the journey still wants it (goal not
reached, not paused), not stale, a reachable address with consent (read now, not when the step was
scheduled), quiet hours (hold), the frequency cap (recorded as capped), then the send. A message
is marked ``sent`` only after the provider accepted it; retryable errors come back with backoff,
permanent ones fail, exhausted retries go to the dead-letter list.

Exactly once, as far as the providers allow (docs/followup.md#exactly-once): a claimed message is
``claimed`` while it is checked and rendered, then marked ``sending`` with a fresh attempt id (and
its lease renewed) in a committed write before the provider is contacted, and recorded ``sent`` in
the very next write after the provider accepts, nothing else awaited in between. A ``claimed`` lease
that lapses is taken up again as new; a ``sending`` one means "maybe sent": the message becomes
``uncertain`` and goes again with the same idempotency key, at once where the provider drops
repeats, after a grace time for SMTP, which has no such key. A report from the attempt that
contacted the provider wins over the uncertain re-send as long as that has not contacted it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import orjson
from itsdangerous import URLSafeSerializer
from sqlalchemy import bindparam, case, delete, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.errors import InvalidInput
from server.followup import contacts, engine, rules, templates
from server.followup.channels import (
    NO_PROVIDER_DEDUPE,
    Channel,
    DeliveryError,
    Outgoing,
    Permanent,
    Retryable,
)
from server.sandbox import Sandbox
from server.storage import Database, now_ms
from server.storage.followup import (
    Alert,
    Campaign,
    Consent,
    Contact,
    ContactViewer,
    FollowupSettings,
    Journey,
    JourneyInstance,
    Message,
    PushSubscription,
)
from server.storage.models import Product, Viewer

log = logging.getLogger("livewall.followup.delivery")
sent_log = logging.getLogger("livewall.followup.sent")

MESSAGES_PER_BATCH = 50
# See Settings.followup_lease_secs.
SEND_LEASE_MS = 120_000
SENDS_IN_PARALLEL = 20
FINAL = (
    "sent",
    "delivered",
    "opened",
    "clicked",
    "failed",
    "dead",
    "skipped",
    "capped",
    "stale",
    "cancelled",
)
DELIVERED = ("sent", "delivered", "opened", "clicked")
# Held by a paused journey: look again this much later.
PAUSED_RECHECK_MS = 60_000
# See Settings.followup_uncertain_grace_secs.
UNCERTAIN_GRACE_MS = 60_000


def webhook_secret(secret_key: str, room_id: str) -> str:
    """The room's outbound webhook signing secret, derived from the server's key (nothing to store)."""
    raw = hmac.new(secret_key.encode(), f"followup-webhook:{room_id}".encode(), hashlib.sha256)
    return "whsec_" + base64.b64encode(raw.digest()).decode()


class Links:
    """Signed links: click tracking, open pixel, unsubscribe, email confirmation."""

    def __init__(self, secret_key: str, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.secret_key = secret_key
        self._track = URLSafeSerializer(secret_key, salt="livewall.track")
        self._contact = URLSafeSerializer(secret_key, salt="livewall.contact")

    def click(self, message_id: int, url: str) -> str:
        return f"{self.base_url}/t/{self._track.dumps([message_id, url])}"

    def pixel(self, message_id: int) -> str:
        return f"{self.base_url}/t/o/{self._track.dumps([message_id])}"

    def unsubscribe(self, contact_id: str, channel: str) -> str:
        return f"{self.base_url}/u/{self._contact.dumps([contact_id, channel])}"

    def confirm(self, contact_id: str, email: str) -> str:
        return f"{self.base_url}/optin/{self._contact.dumps([contact_id, 'confirm', email])}"

    def read_track(self, token: str) -> list[Any]:
        value = self._track.loads(token)
        if not isinstance(value, list) or not value or not isinstance(value[0], int):
            raise ValueError("malformed tracking token")
        return value

    def read_contact(self, token: str) -> list[Any]:
        value = self._contact.loads(token)
        if not isinstance(value, list) or len(value) < 2 or not all(isinstance(v, str) for v in value):
            raise ValueError("malformed contact token")
        return value


@dataclass
class Outcome:
    status: str
    reason: str | None = None
    next_ms: int | None = None
    provider_id: str | None = None
    subject: str | None = None
    body: str | None = None
    gone: bool = False
    channel: str | None = None  # the channel an ``auto`` message went out on


def _due(t: int) -> Any:
    return or_(
        (col(Message.status).in_(["scheduled", "uncertain"])) & (col(Message.next_ms) <= t),
        (col(Message.status) == "claimed") & (col(Message.lease_ms) < t),
    )


async def settle_lapsed(db: Database, *, grace_ms: int) -> int:
    """Messages whose worker stopped while the provider had them become ``uncertain``: due again at
    once where the provider drops repeats of the idempotency key, after ``grace_ms`` otherwise
    (SMTP). Returns how many."""
    t = now_ms()
    lapsed = (col(Message.status) == "sending") & (col(Message.lease_ms) < t)
    reason = "uncertain: its worker stopped while the provider had it"
    async with db.session() as session:
        no_key = col(Message.channel).in_(sorted(NO_PROVIDER_DEDUPE))
        held = await session.exec(
            update(Message)
            .where(lapsed, no_key)
            .values(status="uncertain", next_ms=t + grace_ms, lease_ms=0, reason=reason)
        )
        keyed = await session.exec(
            update(Message)
            .where(lapsed, ~no_key)
            .values(status="uncertain", next_ms=t, lease_ms=0, reason=reason)
        )
        await session.commit()
    return int(held.rowcount or 0) + int(keyed.rowcount or 0)


async def claim_due(db: Database, *, lease_ms: int = SEND_LEASE_MS) -> list[Message]:
    """Lease due messages to this worker (see ``claim``)."""
    return (await claim(db, lease_ms=lease_ms))[0]


async def claim(db: Database, *, lease_ms: int = SEND_LEASE_MS) -> tuple[list[Message], set[int]]:
    """Lease due messages (and those whose worker stopped before contacting the provider) to this
    worker, as ``claimed``, and the ids of those taken up ``uncertain`` (each counts one more
    ``uncertain_resends``).

    Candidates are read (skipping rows other workers have locked, on PostgreSQL), then each is taken
    by a conditional UPDATE that re-checks it is still due: of two workers that read the same row
    (SQLite has no row locks), exactly one takes it."""
    t = now_ms()
    async with db.session() as session:
        found = (
            await session.exec(
                select(Message.id, Message.status)
                .where(_due(t))
                .order_by(col(Message.next_ms))
                .limit(MESSAGES_PER_BATCH)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not found:
            return [], set()
        resends = case(
            (col(Message.status) == "uncertain", Message.uncertain_resends + 1),
            else_=Message.uncertain_resends,
        )
        # One statement for the whole batch (the write lock is held for one statement, not one
        # round trip per row); each row is re-checked to be still due by its WHERE.
        taken = await session.exec(
            update(Message)
            .where(col(Message.id).in_([message_id for message_id, _ in found]), _due(t))
            .values(
                status="claimed",
                lease_ms=t + lease_ms,
                attempts=Message.attempts + 1,
                uncertain_resends=resends,
            )
            .returning(col(Message.id))
        )
        mine = {int(message_id) for (message_id,) in taken.all()}
        await session.commit()
        if not mine:
            return [], set()
        rows = (await session.exec(select(Message).where(col(Message.id).in_(mine)))).all()
    uncertain = {message_id for message_id, status in found if status == "uncertain" and message_id in mine}
    return sorted(rows, key=lambda m: m.next_ms), uncertain


async def mark_sending(db: Database, message: Message, channel: str, lease_ms: int) -> bool:
    """Committed before the provider is contacted: ``sending``, a fresh attempt id, the channel it
    goes on and a renewed lease. False if this worker lost the message (then it must not send)."""
    until = now_ms() + lease_ms
    attempt = uuid.uuid4().hex
    taken = await db.write_now(
        update(Message)
        .where(
            col(Message.id) == message.id,
            col(Message.status) == "claimed",
            col(Message.lease_ms) == message.lease_ms,
        )
        .values(status="sending", attempt_id=attempt, lease_ms=until, channel=channel)
    )
    if taken:
        message.status, message.attempt_id, message.lease_ms = "sending", attempt, until
    return bool(taken)


def _clip(text: str | None, limit: int) -> str | None:
    return None if text is None else text[:limit]


# The record of a send the provider accepted, by the attempt that contacted it (see ``_finish``). One
# shape for every message, so that on SQLite the records that arrive together go in one trip.
_RECORD_SENT = (
    update(Message)
    .where(
        col(Message.id) == bindparam("b_id"),
        col(Message.attempt_id) == bindparam("b_attempt"),
        or_(
            col(Message.status) == "sending",
            col(Message.status) == "uncertain",
            col(Message.status) == "claimed",
        ),
    )
    .values(
        status="sent",
        reason=None,
        lease_ms=0,
        sent_ms=bindparam("b_sent_ms"),
        provider_id=bindparam("b_provider_id"),
        channel=bindparam("b_channel"),
        subject=bindparam("b_subject"),
        body=bindparam("b_body"),
    )
)


async def _record_sent(db: Database, message: Message, outcome: Outcome) -> bool:
    """Committed at once: no other await before it, nothing batched behind it."""
    params = {
        "b_id": message.id,
        "b_attempt": message.attempt_id,
        "b_sent_ms": now_ms(),
        "b_provider_id": _clip(outcome.provider_id, 200),
        "b_channel": outcome.channel or message.channel,
        "b_subject": _clip(outcome.subject, 200),
        "b_body": outcome.body,
    }
    recorded = await db.write_urgent(_RECORD_SENT, params)
    if recorded is not None:
        return recorded
    async with db.session() as session:  # its group had a row that was not recorded: was it this one?
        row = (
            await session.exec(
                select(Message.status, Message.attempt_id).where(col(Message.id) == message.id)
            )
        ).first()
    return row is not None and row[0] == "sent" and row[1] == message.attempt_id


async def _finish(db: Database, message: Message, outcome: Outcome) -> bool:
    """Record what happened, if this worker still holds the message's lease."""
    if message.status == "sending" and outcome.status == "sent" and outcome.reason is None:
        return await _record_sent(db, message, outcome)
    t = now_ms()
    # Clipped to the columns: a long subject or bounce text must never fail the write of a send the
    # provider already accepted (the message would go out again).
    values: dict[str, Any] = {"status": outcome.status, "reason": _clip(outcome.reason, 200), "lease_ms": 0}
    if outcome.status == "scheduled":
        values["next_ms"] = outcome.next_ms or t
    if outcome.status == "sent":
        values.update(sent_ms=t, provider_id=_clip(outcome.provider_id, 200))
    if outcome.channel is not None:
        values["channel"] = outcome.channel
    if outcome.subject is not None or outcome.body is not None:
        values.update(subject=_clip(outcome.subject, 200), body=outcome.body)
    if message.status == "sending":
        # This attempt contacted the provider: its report stands unless another attempt has since
        # contacted it too (a lapsed lease may have made it ``uncertain`` or ``claimed`` meanwhile).
        mine = (col(Message.attempt_id) == message.attempt_id) & col(Message.status).in_(
            ["sending", "uncertain", "claimed"]
        )
    else:
        mine = (col(Message.status) == "claimed") & (col(Message.lease_ms) == message.lease_ms)
    # One autocommitted statement: the record of an accepted send is durable as soon as it runs.
    return bool(
        await db.write_now(
            update(Message).where(col(Message.id) == message.id, mine).values(**values),
            urgent=message.status == "sending",
        )
    )


async def _hold(db: Database, message: Message, until_ms: int, reason: str) -> None:
    """Back to the queue without counting an attempt (quiet hours, paused journey)."""
    await db.write_now(
        update(Message)
        .where(
            col(Message.id) == message.id,
            col(Message.status) == "claimed",
            col(Message.lease_ms) == message.lease_ms,
        )
        .values(
            status="scheduled", next_ms=until_ms, lease_ms=0, reason=reason, attempts=message.attempts - 1
        )
    )


def _address(contact: Contact | None, channel: str, viewer_id: str | None) -> str | None:
    if channel == "email":
        return contact.email if contact else None
    if channel == "sms":
        return contact.phone if contact else None
    if channel == "inapp":
        return viewer_id or (contact.id if contact else None)
    return None


async def _permitted(
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


async def _pick_channel(
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
            if contact is None or not await _push_subs(session, contact.id):
                reasons.append("push: no subscription")
                continue
        elif channel != "inapp" and _address(contact, channel, message.viewer_id) is None:
            reasons.append(f"{channel}: no address")
            continue
        why = await _permitted(session, contact, channel, message.transactional, False)
        if why is None:
            return channel, None
        reasons.append(why)
    return None, "; ".join(reasons)


# The language of a message to a viewer whose own is unknown (joined before it was kept).
FALLBACK_LOCALE = "zh-CN"


async def _viewer_locale(session: AsyncSession, viewer_id: str | None) -> str:
    """The language a viewer without a contact reads: the one their phone shows the room in."""
    viewer = await session.get(Viewer, viewer_id) if viewer_id is not None else None
    return viewer.locale if viewer is not None and viewer.locale else FALLBACK_LOCALE


async def _push_subs(session: AsyncSession, contact_id: str) -> list[PushSubscription]:
    return list(
        (
            await session.exec(
                select(PushSubscription)
                .where(PushSubscription.contact_id == contact_id)
                .order_by(col(PushSubscription.created_ms))
            )
        ).all()
    )


async def _sent_since(session: AsyncSession, contact_id: str, since_ms: int) -> int:
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


async def _link_hosts(session: AsyncSession, room_id: str, base_url: str) -> set[str]:
    hosts = {urlsplit(base_url).hostname or ""}
    urls = await session.exec(
        select(Product.shop_url).where(Product.room_id == room_id, col(Product.shop_url).is_not(None))
    )
    hosts.update(urlsplit(u).hostname or "" for u in urls.all() if u)
    return hosts - {""}


class Deliverer:
    """Sends leased messages through the configured channels."""

    def __init__(
        self,
        db: Database,
        channels: dict[str, Channel],
        links: Links,
        *,
        sandbox: Sandbox,
        time_scale: float = 1.0,
        lease_ms: int = SEND_LEASE_MS,
        on_alert: Callable[[str, str], Awaitable[None]] | None = None,
        on_inapp: Callable[[str, list[str], dict[str, Any]], Awaitable[None]] | None = None,
        uncertain_grace_ms: int = UNCERTAIN_GRACE_MS,
        on_uncertain: Callable[[str], None] | None = None,
    ) -> None:
        self.db = db
        self.channels = channels
        self.links = links
        self.sandbox = sandbox  # templates render in its worker processes, under its limits
        self.secret_key = links.secret_key
        self.time_scale = time_scale
        self.lease_ms = lease_ms
        self.on_alert = on_alert
        self.on_inapp = on_inapp
        self.uncertain_grace_ms = uncertain_grace_ms
        self.on_uncertain = on_uncertain
        self.uncertain_resends = 0  # by this process, for its log and metrics
        self._resending: set[int] = set()  # taken up as uncertain, not yet handed to the provider
        self._gate = asyncio.Semaphore(SENDS_IN_PARALLEL)

    async def run_once(self) -> list[Message]:
        """Deliver what is due; returns the messages taken up."""
        await settle_lapsed(self.db, grace_ms=self.uncertain_grace_ms)
        due, uncertain = await claim(self.db, lease_ms=self.lease_ms)
        self._resending |= uncertain
        # One person's messages go one after another, so the frequency cap counts each send before
        # deciding the next; different people's go in parallel.
        people: dict[str, list[Message]] = {}
        for message in due:
            people.setdefault(message.contact_id or message.viewer_id or f"m{message.id}", []).append(message)
        try:
            await asyncio.gather(*(self._in_turn(batch) for batch in people.values()))
        finally:
            self._resending -= uncertain
        return due

    async def _in_turn(self, batch: list[Message]) -> None:
        for message in batch:
            await self._guarded(message)

    async def _guarded(self, message: Message) -> None:
        async with self._gate:
            # Records of accepted sends first: the window they close is what a crash can duplicate.
            await self.db.urgent_settled()
            try:
                await self.deliver(message)
            except InvalidInput as exc:  # a template that does not render will not render later
                await _finish(self.db, message, Outcome("failed", exc.message))
            except Exception as exc:
                log.exception("delivering message %s failed", message.id)
                if message.attempts >= rules.MAX_ATTEMPTS:
                    await _finish(self.db, message, Outcome("dead", f"internal error: {exc!r}"[:200]))
                    return
                retry = now_ms() + int(rules.retry_delay_secs(message.attempts) * 1000 * self.time_scale)
                await _finish(self.db, message, Outcome("scheduled", "internal error", next_ms=retry))

    async def deliver(self, message: Message) -> None:
        t = now_ms()
        async with self.db.session() as session:
            settings = await engine.ensure_room(session, message.room_id)
            await session.commit()
            if message.instance_id is not None:
                inst = await session.get(JourneyInstance, message.instance_id)
                if inst is not None and inst.status in ("goal", "cancelled"):
                    await _finish(self.db, message, Outcome("cancelled", f"journey ended: {inst.end_reason}"))
                    return
                journey = await session.get(Journey, message.journey_id) if message.journey_id else None
                if journey is not None and journey.status != "active":
                    await _hold(self.db, message, t + PAUSED_RECHECK_MS, "journey paused")
                    return
            if message.campaign_id is not None:
                campaign = await session.get(Campaign, message.campaign_id)
                if campaign is not None and campaign.status == "cancelled":
                    await _finish(self.db, message, Outcome("cancelled", "campaign cancelled"))
                    return
            if message.stale_ms is not None and t > message.stale_ms:
                await _finish(self.db, message, Outcome("stale", "too late to be useful"))
                return
            contact = await contacts.live(session, message.contact_id) if message.contact_id else None
            if contact is None and message.viewer_id is not None:
                contact = await contacts.contact_of_viewer(session, message.viewer_id)
            confirming = message.idem_key.startswith("optin:")
            channel = message.channel
            if channel == "auto":
                picked, why = await _pick_channel(session, contact, message, self.channels)
                if picked is None:
                    await _finish(self.db, message, Outcome("skipped", why))
                    return
                channel = picked
            else:
                why = await _permitted(session, contact, channel, message.transactional, confirming)
                if why is not None:
                    await _finish(self.db, message, Outcome("skipped", why))
                    return
            # Quiet hours and caps protect people from being disturbed: in-app messages wait in the
            # app until opened and webhooks go to the shop's systems, so neither is held or counted.
            if not message.transactional and not confirming and channel not in ("webhook", "inapp"):
                hold = rules.quiet_hold(
                    t, settings.quiet_start, settings.quiet_end, contact.tz if contact else None
                )
                if hold is not None:
                    if message.stale_ms is not None and hold > message.stale_ms:
                        await _finish(
                            self.db, message, Outcome("stale", "quiet hours last past its useful time")
                        )
                    else:
                        await _hold(self.db, message, hold, "quiet hours")
                    return
                if contact is not None:
                    day = await _sent_since(session, contact.id, t - 24 * 3600 * 1000)
                    week = await _sent_since(session, contact.id, t - 7 * 24 * 3600 * 1000)
                    why = rules.capped(day, week, settings.cap_per_day, settings.cap_per_week)
                    if why is not None:
                        await _finish(self.db, message, Outcome("capped", why))
                        return
            outgoing = await self._compose(session, message, channel, contact, settings)
        if outgoing is None:
            await _finish(self.db, message, Outcome("skipped", f"{channel}: no address"))
            return
        sender = self.channels.get(channel)
        if sender is None:
            await _finish(self.db, message, Outcome("skipped", f"{channel} is not configured on this server"))
            return
        if not await mark_sending(self.db, message, channel, self.lease_ms):
            return  # another worker took it up after this one's lease ran out: it sends, not us
        if message.id in self._resending:
            self.uncertain_resends += 1
            if self.on_uncertain is not None:
                self.on_uncertain(channel)
            log.warning("message %s: sent again after its worker stopped mid-send (same key)", message.id)
        # Nothing but the send between the committed ``sending`` and the committed outcome.
        outcome = await self._send(sender, message, outgoing)
        answered_ms = time.time() * 1000
        if channel != message.channel and outcome.status != "scheduled":
            outcome.channel = channel
        try:
            recorded = await _finish(self.db, message, outcome)
        except Exception:
            if outcome.status != "sent":
                raise
            log.exception("recording message %s as sent failed; recording it plainly", message.id)
            recorded = await _finish(self.db, message, Outcome("sent", "sent (details not recorded)"))
        if recorded and outcome.status == "sent":
            # One line per sent message, when its record became durable (bench/followup_crash.py
            # measures the unsafe window from the provider's acceptance to this moment).
            sent_log.info(
                "sent",
                extra={
                    "message_id": message.id,
                    "channel": channel,
                    "answered_ms": round(answered_ms, 2),
                    "recorded_ms": round(time.time() * 1000, 2),
                },
            )
        if recorded and channel == "inapp" and outcome.status == "sent" and self.on_inapp is not None:
            await self._show_now(message, outgoing, contact)
        if recorded and outcome.gone and contact is not None and channel in ("email", "sms", "push"):
            await self._gone(contact, channel, outgoing, outcome.reason)
        if recorded and outcome.status in ("sent", "failed", "dead") and message.journey_id is not None:
            await self._breaker(message.journey_id, message.room_id, settings)

    async def _show_now(self, message: Message, outgoing: Outgoing, contact: Contact | None) -> None:
        """An in-app message reaches the person's phones that have the room open right away."""
        viewers = {message.viewer_id} if message.viewer_id else set()
        if contact is not None:
            async with self.db.session() as session:
                rows = await session.exec(
                    select(ContactViewer.viewer_id).where(ContactViewer.contact_id == contact.id)
                )
                viewers.update(rows.all())
        item = {"id": message.id, "subject": outgoing.subject, "text": outgoing.text, "sent_ms": now_ms()}
        assert self.on_inapp is not None
        await self.on_inapp(message.room_id, sorted(v for v in viewers if v), item)

    async def _compose(
        self,
        session: AsyncSession,
        message: Message,
        channel: str,
        contact: Contact | None,
        settings: FollowupSettings,
    ) -> Outgoing | None:
        locale = contact.locale if contact is not None else await _viewer_locale(session, message.viewer_id)
        ctx = await engine.template_context(
            session, message, base_url=self.links.base_url, contact_name=contact.name if contact else None
        )
        unsubscribe = self.links.unsubscribe(contact.id, channel) if contact is not None else None
        ctx["unsubscribe_url"] = unsubscribe
        address = None
        if message.idem_key.startswith("optin:") and contact is not None:
            address = orjson.loads(message.context or "{}").get("address")
            ctx["confirm_url"] = self.links.confirm(contact.id, address) if address else None
        found = await templates.find(session, message.room_id, message.template, channel, locale)
        if found is None:
            raise InvalidInput(f"no template {message.template!r}", code="unknown_template")
        # Past a limit this is InvalidInput (bad_template): the message fails with the reason, once.
        rendered = await templates.render_isolated(self.sandbox, found.subject, found.body, ctx)
        assert message.id is not None
        mid = message.id
        text = rendered.text
        if not message.idem_key.startswith("optin:"):
            # Only links to this server and to the room's shop are tracked (signed redirects); a link
            # typed into a viewer's own name stays plain text, never a redirect on the shop's domain.
            own = await _link_hosts(session, message.room_id, self.links.base_url)
            text = templates.rewrite_links(text, lambda url: self.links.click(mid, url), own)
        base = Outgoing(idem_key=message.idem_key, to="", subject=rendered.subject, text=text)
        marketing = not message.transactional
        if channel == "email":
            to = address or (contact.email if contact is not None else None)
            if contact is None or to is None:
                return None
            footer = f"\n\n--\n{unsubscribe}" if marketing and unsubscribe else ""
            return replace(
                base,
                to=to,
                text=text + footer,
                html=templates.to_html(text + footer, self.links.pixel(mid)),
                marketing=marketing,
                unsubscribe_url=unsubscribe if marketing else None,
            )
        if channel == "sms":
            if contact is None or contact.phone is None:
                return None
            stop = (" Reply STOP to opt out." if locale == "en" else " 回复TD退订") if marketing else ""
            return replace(base, to=contact.phone, text=text + stop)
        if channel == "push":
            subs = await _push_subs(session, contact.id) if contact is not None else []
            if not subs:
                return None
            sub = subs[-1]
            url = ctx["product"]["url"] if ctx.get("product") else ctx["room"]["url"]
            return replace(
                base,
                to=sub.endpoint,
                push_keys={"p256dh": sub.p256dh, "auth": sub.auth},
                data={"url": self.links.click(mid, url)},
            )
        if channel == "webhook":
            if not settings.webhook_url:
                return None
            return replace(
                base,
                to=settings.webhook_url,
                secret=webhook_secret(self.secret_key, message.room_id),
                data={
                    "type": "followup.message",
                    "message_id": mid,
                    "template": message.template,
                    "contact": {
                        "id": contact.id if contact else None,
                        "email": contact.email if contact else None,
                        "phone": contact.phone if contact else None,
                    },
                    "subject": rendered.subject,
                    "text": text,
                },
            )
        # In-app: the row is the inbox entry; the phone shows it when it next opens a room.
        to = _address(contact, "inapp", message.viewer_id)
        return None if to is None else replace(base, to=to)

    async def _send(self, sender: Channel, message: Message, outgoing: Outgoing) -> Outcome:
        try:
            sent = await sender.send(outgoing)
        except Retryable as exc:
            if message.attempts >= rules.MAX_ATTEMPTS:
                return Outcome("dead", f"gave up after {message.attempts} attempts: {exc.reason}")
            delay = rules.retry_delay_secs(message.attempts, retry_after=exc.retry_after_secs)
            return Outcome(
                "scheduled", f"retrying: {exc.reason}", next_ms=now_ms() + int(delay * 1000 * self.time_scale)
            )
        except Permanent as exc:
            return Outcome("failed", exc.reason, gone=exc.gone)
        except DeliveryError as exc:  # unclassified: retried like a passing error, within the same limit
            if message.attempts >= rules.MAX_ATTEMPTS:
                return Outcome("dead", f"gave up after {message.attempts} attempts: {exc.reason}")
            delay = rules.retry_delay_secs(message.attempts)
            return Outcome(
                "scheduled", f"retrying: {exc.reason}", next_ms=now_ms() + int(delay * 1000 * self.time_scale)
            )
        return Outcome(
            "sent", None, provider_id=sent.provider_id, subject=outgoing.subject, body=outgoing.text
        )

    async def _gone(self, contact: Contact, channel: str, outgoing: Outgoing, reason: str | None) -> None:
        """The address no longer exists: block that channel (a push subscription is deleted)."""
        if channel == "push":
            async with self.db.session() as session:
                await session.exec(
                    delete(PushSubscription).where(col(PushSubscription.endpoint) == outgoing.to)
                )
                await session.commit()
            return
        await contacts.say(
            self.db,
            contact.id,
            contacts.Say(channel, "blocked", source="provider", reason="bounced", wording=reason),
        )

    async def _breaker(self, journey_id: int, room_id: str, settings: FollowupSettings) -> None:
        async with self.db.session() as session:
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
                return
            journey = await session.get(Journey, journey_id)
            if journey is None or journey.status != "active":
                return
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
                return
            session.add(Alert(room_id=room_id, kind="journey.paused", text=text, created_ms=now_ms()))
            await session.commit()
        log.warning("%s", text)
        if self.on_alert is not None:
            await self.on_alert(room_id, text)
