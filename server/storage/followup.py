"""SQLModel tables of follow-up messaging: contacts, consent, journeys, messages, campaigns.

A person is a ``Contact``; the anonymous viewer ids that turned out to be that person point at it
(``ContactViewer``). Consent is kept per contact and channel, with an append-only history of who
said what, when, where and in which words. A ``Message`` is one send: its ``idem_key`` is unique,
so one journey step or one campaign recipient can never produce two messages.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Text, UniqueConstraint, true
from sqlmodel import Field, SQLModel


class Contact(SQLModel, table=True):
    """A person who can be reached; merged contacts point at the one that absorbed them."""

    id: str = Field(primary_key=True, max_length=32)
    name: str | None = Field(default=None, max_length=80)
    email: str | None = Field(default=None, max_length=254, index=True)  # normalised, lower-case
    pending_email: str | None = Field(default=None, max_length=254)  # typed, waiting for its confirmation
    email_verified_ms: int | None = Field(default=None, sa_type=BigInteger)  # its confirmation link opened
    phone: str | None = Field(default=None, max_length=32, index=True)  # E.164
    tz: str = Field(default="Asia/Shanghai", max_length=64)  # IANA zone for quiet hours and local waits
    locale: str = Field(default="zh-CN", max_length=8)  # en | zh-CN
    merged_into: str | None = Field(default=None, max_length=32, index=True)
    created_ms: int = Field(sa_type=BigInteger)
    updated_ms: int = Field(sa_type=BigInteger)


class ContactViewer(SQLModel, table=True):
    """An anonymous viewer id known to be this contact (a phone, a browser, another room)."""

    viewer_id: str = Field(primary_key=True, max_length=32)
    contact_id: str = Field(foreign_key="contact.id", index=True, max_length=32)
    created_ms: int = Field(sa_type=BigInteger)


class Consent(SQLModel, table=True):
    """The current say of one contact on one channel. ``status``: pending (email awaiting double
    opt-in) | granted | withdrawn | blocked (do-not-contact; ``reason`` says why)."""

    contact_id: str = Field(primary_key=True, foreign_key="contact.id", max_length=32)
    channel: str = Field(primary_key=True, max_length=8)  # email | sms | push | inapp
    status: str = Field(max_length=12)
    reason: str | None = Field(default=None, max_length=32)  # unsubscribed | stop | bounced | manual ...
    source: str = Field(max_length=40)  # opt-in box, draw claim, unsubscribe link, SMS STOP ...
    wording: str | None = Field(default=None, max_length=500)
    lang: str | None = Field(default=None, max_length=8)
    updated_ms: int = Field(sa_type=BigInteger)


class ConsentLog(SQLModel, table=True):
    """Every change of consent, kept for audits and disputes (append-only)."""

    id: int | None = Field(default=None, primary_key=True)
    contact_id: str = Field(foreign_key="contact.id", index=True, max_length=32)
    channel: str = Field(max_length=8)
    status: str = Field(max_length=12)
    reason: str | None = Field(default=None, max_length=32)
    source: str = Field(max_length=40)
    wording: str | None = Field(default=None, max_length=500)
    lang: str | None = Field(default=None, max_length=8)
    room_id: str | None = Field(default=None, max_length=32)
    created_ms: int = Field(sa_type=BigInteger)


class PushSubscription(SQLModel, table=True):
    """A browser's Web Push subscription (endpoint and keys), owned by a contact."""

    endpoint: str = Field(primary_key=True, max_length=1000)
    contact_id: str = Field(foreign_key="contact.id", index=True, max_length=32)
    p256dh: str = Field(max_length=200)
    auth: str = Field(max_length=100)
    created_ms: int = Field(sa_type=BigInteger)


class FollowupSettings(SQLModel, table=True):
    """A room's (a shop's) follow-up rules: quiet hours, frequency caps, outbound webhook."""

    room_id: str = Field(primary_key=True, foreign_key="room.id", max_length=32)
    quiet_start: str = Field(default="21:00", max_length=5)  # contact's local time, HH:MM
    quiet_end: str = Field(default="09:00", max_length=5)
    cap_per_day: int = 2  # marketing messages per contact per rolling 24 h, across all journeys
    cap_per_week: int = 5
    failure_pause_ratio: float = 0.2  # a journey pauses itself above this failure rate ...
    failure_min_sends: int = 10  # ... once it has at least this many recent outcomes
    webhook_url: str | None = Field(default=None, max_length=1000)
    sender_name: str | None = Field(default=None, max_length=80)
    # UTM parameters on the tracked links of messages (docs/revenue.md): on by default.
    utm: bool = Field(default=True, sa_column_kwargs={"server_default": true()})
    utm_source: str | None = Field(default=None, max_length=40)  # None: "livewall"


class Template(SQLModel, table=True):
    """A message text per channel and locale (Jinja2, sandboxed). ``key`` names it in journeys."""

    __table_args__ = (UniqueConstraint("room_id", "key", "channel", "locale"),)

    id: int | None = Field(default=None, primary_key=True)
    room_id: str = Field(foreign_key="room.id", index=True, max_length=32)
    key: str = Field(max_length=40)
    channel: str = Field(max_length=8)
    locale: str = Field(max_length=8)
    subject: str | None = Field(default=None, max_length=200)
    body: str = Field(sa_type=Text)
    updated_ms: int = Field(sa_type=BigInteger)


class Journey(SQLModel, table=True):
    """An automated follow-up: entry event, conditions, steps (waits and sends) and a goal."""

    __table_args__ = (UniqueConstraint("room_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    room_id: str = Field(foreign_key="room.id", index=True, max_length=32)
    key: str = Field(max_length=40)  # slug, unique per room
    name: str = Field(max_length=120)
    status: str = Field(default="active", max_length=12)  # active | paused
    paused_reason: str | None = Field(default=None, max_length=200)
    # What an entry event does while the journey is paused: hold (it enters on resume) | skip.
    while_paused: str = Field(default="hold", max_length=8, sa_column_kwargs={"server_default": "hold"})
    resumed_ms: int = Field(default=0, sa_type=BigInteger)  # the breaker counts outcomes after this
    entry: str = Field(max_length=32)  # event kind that starts an instance
    key_by: str | None = Field(default=None, max_length=16)  # order_id | product_id | None
    conditions: str = Field(default="{}", max_length=2000)  # JSON, see followup/rules.py
    steps: str = Field(sa_type=Text)  # JSON list of {"wait": ...} and {"send": ...}
    goal: str | None = Field(default=None, max_length=32)  # event kind that ends an instance at once
    created_ms: int = Field(sa_type=BigInteger)
    updated_ms: int = Field(sa_type=BigInteger)


class JourneyInstance(SQLModel, table=True):
    """One person going through one journey for one key (one order runs one instance)."""

    __table_args__ = (
        UniqueConstraint("journey_id", "subject", "entry_key"),
        Index("ix_journeyinstance_due", "status", "wake_ms"),
    )

    id: int | None = Field(default=None, primary_key=True)
    journey_id: int = Field(foreign_key="journey.id", index=True)
    room_id: str = Field(max_length=32, index=True)
    subject: str = Field(max_length=34)  # c:<contact id> when known, else v:<viewer id>
    viewer_id: str | None = Field(default=None, max_length=32)
    entry_key: str = Field(default="", max_length=80)
    context: str = Field(default="{}", sa_type=Text)  # JSON: product, order, discount of the entry event
    status: str = Field(default="active", max_length=12)  # active | done | goal | cancelled
    end_reason: str | None = Field(default=None, max_length=40)
    step: int = 0  # the next step to run
    wake_ms: int = Field(sa_type=BigInteger)  # when the next step is due
    lease_ms: int = Field(default=0, sa_type=BigInteger)  # claimed by a worker until then
    created_ms: int = Field(sa_type=BigInteger)
    ended_ms: int | None = Field(default=None, sa_type=BigInteger)


class PausedEntry(SQLModel, table=True):
    """An entry event that reached a paused journey. ``status``: held (it enters when the journey
    resumes) | entered | goal (the person reached the goal meanwhile) | skipped (``reason`` says why:
    the journey skips entries while paused, or no longer takes this one)."""

    __table_args__ = (
        UniqueConstraint("journey_id", "event_id"),  # one record per event, however many workers route it
        Index("ix_pausedentry_held", "status", "journey_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    journey_id: int = Field(foreign_key="journey.id")
    room_id: str = Field(max_length=32)
    event_id: int = Field(foreign_key="intentevent.id")
    viewer_id: str = Field(max_length=32)
    status: str = Field(max_length=12)
    reason: str | None = Field(default=None, max_length=200)
    created_ms: int = Field(sa_type=BigInteger)
    ended_ms: int | None = Field(default=None, sa_type=BigInteger)  # entered, prevented or skipped


class FollowupProcess(SQLModel, table=True):
    """A process that delivers follow-up (a server's loop or a worker) and the channels configured in
    it, refreshed while it runs: the channels heard of lately are the ones phones are offered."""

    id: str = Field(primary_key=True, max_length=32)
    channels: str = Field(max_length=200)  # comma-separated channel names
    seen_ms: int = Field(sa_type=BigInteger, index=True)


class Campaign(SQLModel, table=True):
    """A post-stream send to a segment of a room's audience."""

    id: int | None = Field(default=None, primary_key=True)
    room_id: str = Field(foreign_key="room.id", index=True, max_length=32)
    name: str = Field(max_length=120)
    segment: str = Field(max_length=24)  # attended | clicked_not_paid | claimed_not_redeemed | winners ...
    channel: str = Field(max_length=8)
    template: str = Field(max_length=40)
    send_ms: int = Field(sa_type=BigInteger)
    status: str = Field(default="scheduled", max_length=12)  # scheduled | sending | done | cancelled
    total: int = 0
    populated: bool = False  # all its messages exist; until then a crashed filler is resumed
    lease_ms: int = Field(default=0, sa_type=BigInteger)  # a worker is creating its messages until then
    created_ms: int = Field(sa_type=BigInteger)


class Message(SQLModel, table=True):
    """One send on one channel to one contact. ``idem_key`` (journey instance + step, or campaign +
    contact) is unique, so a step can never yield two messages, whatever crashes or retries."""

    __table_args__ = (
        Index("ix_message_due", "status", "next_ms"),
        Index("ix_message_provider", "provider_id"),  # delivery receipts name the provider's id
    )

    id: int | None = Field(default=None, primary_key=True)
    idem_key: str = Field(unique=True, max_length=80)
    room_id: str = Field(max_length=32, index=True)
    journey_id: int | None = Field(default=None, index=True)
    instance_id: int | None = Field(default=None, index=True)
    step: int | None = None
    campaign_id: int | None = Field(default=None, index=True)
    contact_id: str | None = Field(default=None, max_length=32, index=True)
    viewer_id: str | None = Field(default=None, max_length=32, index=True)
    channel: str = Field(max_length=8)
    template: str = Field(max_length=40)
    transactional: bool = False
    context: str = Field(default="{}", sa_type=Text)  # JSON for the template
    # scheduled | claimed | sending | sent | delivered | opened | clicked | failed | dead | skipped |
    # capped | stale | cancelled. ``claimed``: a worker holds it (checks, render); ``sending``: that
    # worker is contacting the provider, so a lapsed ``sending`` lease means "maybe sent".
    status: str = Field(default="scheduled", max_length=12)
    reason: str | None = Field(default=None, max_length=200)  # why skipped, capped, failed ...
    attempts: int = 0
    next_ms: int = Field(sa_type=BigInteger)  # due (or retry) time
    stale_ms: int | None = Field(default=None, sa_type=BigInteger)  # not sent by then: cancelled as stale
    lease_ms: int = Field(default=0, sa_type=BigInteger)  # a worker is sending it until then
    # The attempt that last contacted the provider (set, with ``sending``, before the provider is).
    attempt_id: str | None = Field(default=None, max_length=32)
    # Times it went out again after a worker died while contacting the provider (same idempotency key).
    uncertain_resends: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    provider_id: str | None = Field(default=None, max_length=200)
    subject: str | None = Field(default=None, max_length=200)  # as rendered, for the record
    body: str | None = Field(default=None, sa_type=Text)
    created_ms: int = Field(sa_type=BigInteger)
    sent_ms: int | None = Field(default=None, sa_type=BigInteger)
    delivered_ms: int | None = Field(default=None, sa_type=BigInteger)
    opened_ms: int | None = Field(default=None, sa_type=BigInteger)
    clicked_ms: int | None = Field(default=None, sa_type=BigInteger)
    converted_ms: int | None = Field(default=None, sa_type=BigInteger)


class Alert(SQLModel, table=True):
    """Something the host must know about follow-up (a journey paused itself, dead letters)."""

    id: int | None = Field(default=None, primary_key=True)
    room_id: str = Field(foreign_key="room.id", index=True, max_length=32)
    kind: str = Field(max_length=24)
    text: str = Field(max_length=500)
    created_ms: int = Field(sa_type=BigInteger)
