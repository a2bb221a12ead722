"""Delivery: due messages are claimed, checked, rendered and handed to their channel.

The checks (checks.py) go in the order of docs/followup.md#delivery: the journey still wants it (goal
not reached, not paused), not stale, a reachable address with consent (read now, not when the step was
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
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, case, or_, update
from sqlmodel import col, select

from server.errors import InvalidInput
from server.followup import aftermath, checks, rules
from server.followup.channels import (
    NO_PROVIDER_DEDUPE,
    Channel,
    DeliveryError,
    Outgoing,
    Permanent,
    Retryable,
)
from server.followup.compose import compose
from server.followup.links import Links
from server.followup.store import ensure_room
from server.sandbox import Sandbox
from server.storage import Database, now_ms
from server.storage.followup import (
    FollowupSettings,
    Message,
)

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
# See Settings.followup_uncertain_grace_secs.
UNCERTAIN_GRACE_MS = 60_000


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
            settings = await ensure_room(session, message.room_id)
            await session.commit()
            passed = await checks.check(session, message, settings, self.channels, t)
            if isinstance(passed, checks.Stop):
                if passed.until_ms is not None:
                    await _hold(self.db, message, passed.until_ms, passed.reason or "")
                else:
                    await _finish(self.db, message, Outcome(passed.status, passed.reason))
                return
            channel, contact = passed.channel, passed.contact
            outgoing = await compose(
                session, message, channel, contact, settings, links=self.links, sandbox=self.sandbox
            )
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
            await aftermath.show_now(self.db, self.on_inapp, message, outgoing, contact)
        if recorded and outcome.gone and contact is not None and channel in ("email", "sms", "push"):
            await aftermath.forget_address(self.db, contact, channel, outgoing, outcome.reason)
        if recorded and outcome.status in ("sent", "failed", "dead") and message.journey_id is not None:
            await self._breaker(message.journey_id, message.room_id, settings)

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

    async def _breaker(self, journey_id: int, room_id: str, settings: FollowupSettings) -> None:
        text = await aftermath.breaker(self.db, journey_id, room_id, settings)
        if text is None:
            return
        log.warning("%s", text)
        if self.on_alert is not None:
            await self.on_alert(room_id, text)
