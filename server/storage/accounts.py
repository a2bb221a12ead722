"""Tables of the people who run shows: organisations, accounts, memberships, studio sessions,
one-time links, the audit log, and what a room is prepared with (presets, reminders).

Every room belongs to an organisation; rooms made before accounts existed belong to ``default``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Text
from sqlmodel import Field, SQLModel

DEFAULT_ORG = "default"


class Organisation(SQLModel, table=True):
    """Owns rooms (and through them products, templates and contacts) and has members."""

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=120)
    created_ms: int = Field(sa_type=BigInteger)


class Account(SQLModel, table=True):
    """A person who signs in to the studio. ``email`` is stored lower-cased."""

    id: str = Field(primary_key=True, max_length=32)
    email: str = Field(max_length=254, unique=True, index=True)
    name: str = Field(max_length=80)
    password_hash: str | None = Field(default=None, max_length=200)  # None: one-time email links only
    admin: bool = False  # may create organisations and see every one (the first account)
    locale: str | None = Field(default=None, max_length=8)
    disabled: bool = False
    created_ms: int = Field(sa_type=BigInteger)


class Membership(SQLModel, table=True):
    """A member of an organisation and their role (server/auth.py, MEMBER_SCOPES)."""

    org_id: str = Field(primary_key=True, foreign_key="organisation.id", max_length=32)
    account_id: str = Field(primary_key=True, foreign_key="account.id", max_length=32, index=True)
    role: str = Field(max_length=16)
    created_ms: int = Field(sa_type=BigInteger)


class RoomRole(SQLModel, table=True):
    """A per-room override of a member's role (wider or narrower than their organisation role)."""

    room_id: str = Field(primary_key=True, foreign_key="room.id", max_length=32)
    account_id: str = Field(primary_key=True, foreign_key="account.id", max_length=32)
    role: str = Field(max_length=16)


class StudioSession(SQLModel, table=True):
    """A signed-in browser. The cookie carries a signed ``id``; revoking sets ``revoked_ms`` and
    closes the consoles opened with it (server/rooms/access.py sweep)."""

    id: str = Field(primary_key=True, max_length=32)
    account_id: str = Field(foreign_key="account.id", max_length=32, index=True)
    created_ms: int = Field(sa_type=BigInteger)
    last_seen_ms: int = Field(sa_type=BigInteger)
    expires_ms: int = Field(sa_type=BigInteger)
    revoked_ms: int | None = Field(default=None, sa_type=BigInteger)
    user_agent: str | None = Field(default=None, max_length=300)
    address: str | None = Field(default=None, max_length=64)
    how: str = Field(default="password", max_length=16)  # password | link


class OneTimeLink(SQLModel, table=True):
    """A one-time sign-in or password-reset link; ``id`` is the hash of the token in the link."""

    id: str = Field(primary_key=True, max_length=64)
    account_id: str = Field(foreign_key="account.id", max_length=32, index=True)
    purpose: str = Field(max_length=16)  # signin | reset
    expires_ms: int = Field(sa_type=BigInteger)
    used_ms: int | None = Field(default=None, sa_type=BigInteger)


class AuditEntry(SQLModel, table=True):
    """Who did what, when, from which session: one row per action that changes something."""

    __table_args__ = (Index("ix_auditentry_org_at", "org_id", "at_ms"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(max_length=32)
    room_id: str | None = Field(default=None, max_length=32, index=True)
    account_id: str | None = Field(default=None, max_length=32)
    session_id: str | None = Field(default=None, max_length=32)
    actor: str = Field(max_length=254)  # the account's email, or "host key" / "cli"
    action: str = Field(max_length=64)  # the message type or route ("discount.launch", "member.role")
    category: str = Field(
        max_length=16
    )  # moderation | deals | draws | products | show | campaigns | settings | roles | access
    target: str | None = Field(default=None, max_length=200)
    detail: str = Field(default="{}", sa_type=Text)  # JSON, bounded
    at_ms: int = Field(sa_type=BigInteger)


class Preset(SQLModel, table=True):
    """A discount or draw set up before the show, launched with one click during it. ``payload``
    is the data of the ``discount.launch`` or ``draw.create`` message it becomes."""

    id: int | None = Field(default=None, primary_key=True)
    room_id: str = Field(foreign_key="room.id", max_length=32, index=True)
    kind: str = Field(max_length=16)  # discount | draw
    label: str = Field(max_length=120)
    payload: str = Field(sa_type=Text)
    created_ms: int = Field(sa_type=BigInteger)
    launched_ms: int | None = Field(default=None, sa_type=BigInteger)


class Reminder(SQLModel, table=True):
    """A viewer who tapped "remind me" (预约直播) on a scheduled room's page."""

    room_id: str = Field(primary_key=True, foreign_key="room.id", max_length=32)
    viewer_id: str = Field(primary_key=True, foreign_key="viewer.id", max_length=32)
    created_ms: int = Field(sa_type=BigInteger)
    sent_ms: int | None = Field(default=None, sa_type=BigInteger)
