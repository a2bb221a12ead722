"""Reads of accounts the rest of the server needs: a studio session, a member's role in a room."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import col, select

from server.accounts import rules
from server.auth import MemberRole
from server.errors import Forbidden, Unauthorized
from server.storage import Database, now_ms
from server.storage.accounts import Account, Membership, RoomRole, StudioSession

# A session's last use is written at most this often (a console reconnecting does not write).
TOUCH_EVERY_MS = 60_000


@dataclass(frozen=True, slots=True)
class Member:
    """A signed-in person acting in one room: their account, session and role there."""

    account_id: str
    session_id: str
    email: str
    name: str
    role: MemberRole


async def live_session(db: Database, session_id: str) -> tuple[StudioSession, Account]:
    """The session and its account, or Unauthorized (``revoked``) when it was revoked, expired or
    its account disabled. Moves the session's idle expiry on (written at most once a minute)."""
    now = now_ms()
    async with db.session() as session:
        row = await session.get(StudioSession, session_id)
        account = await session.get(Account, row.account_id) if row is not None else None
        if row is None or account is None or row.revoked_ms is not None or row.expires_ms <= now:
            raise Unauthorized("this studio session ended: sign in again", code="revoked")
        if account.disabled:
            raise Unauthorized("this account is disabled", code="revoked")
        if now - row.last_seen_ms >= TOUCH_EVERY_MS:
            limit = row.created_ms + rules.SESSION_MAX_SECS * 1000
            expires = min(limit, now + rules.SESSION_IDLE_SECS * 1000)
            await session.exec(
                update(StudioSession)
                .where(col(StudioSession.id) == session_id)
                .values(last_seen_ms=now, expires_ms=expires)
            )
            await session.commit()
    return row, account


async def role_in_room(db: Database, account_id: str, org_id: str, room_id: str) -> MemberRole | None:
    """The member's role in this room (its override, else their organisation role), or None."""
    async with db.session() as session:
        membership = await session.get(Membership, (org_id, account_id))
        override = await session.get(RoomRole, (room_id, account_id))
    return rules.effective_role(
        membership.role if membership is not None else None, override.role if override else None
    )


async def member_in_room(db: Database, session_id: str, org_id: str, room_id: str) -> Member:
    """Who opened a console with a studio session: Unauthorized when the session ended, Forbidden
    when the account has no role in the room."""
    row, account = await live_session(db, session_id)
    role = await role_in_room(db, account.id, org_id, room_id)
    if role is None:
        raise Forbidden("you are not a member of this room's organisation")
    return Member(account.id, row.id, account.email, account.name, role)


async def ended_sessions(db: Database, session_ids: list[str]) -> set[str]:
    """Which of these sessions were revoked or expired, or belong to a disabled account (for the
    revocation sweep: what ``live_session`` refuses)."""
    if not session_ids:
        return set()
    now = now_ms()
    async with db.session() as session:
        rows = await session.exec(
            select(StudioSession.id)
            .join(Account, col(Account.id) == col(StudioSession.account_id))
            .where(
                col(StudioSession.id).in_(sorted(set(session_ids))),
                col(StudioSession.revoked_ms).is_(None),
                col(StudioSession.expires_ms) > now,
                col(Account.disabled).is_(False),
            )
        )
        live = set(rows.all())
    return {sid for sid in session_ids if sid not in live}
