"""An organisation's members and their roles: adding people by email, changing and removing roles
(never the last owner), and per-room overrides. Every change is an audit entry (category "roles").

A member whose role changes keeps their open consoles only if the role in that room is unchanged:
the rooms' revocation sweep closes the others within REVOCATION_SWEEP_SECS (they reconnect with the
new scopes; a removed member cannot).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete
from sqlmodel import col, func, select

from server.accounts import actions, rules
from server.accounts.audit import AuditLog
from server.accounts.engine import Accounts
from server.accounts.identity import StudioUser
from server.auth import MemberRole
from server.errors import Conflict, InvalidInput, NotFound
from server.services import Services
from server.storage import Database
from server.storage.accounts import Account, Membership, Organisation, RoomRole
from server.storage.models import Room


@dataclass(frozen=True, slots=True)
class MemberView:
    account_id: str
    email: str
    name: str
    role: str
    has_password: bool


@dataclass(frozen=True, slots=True)
class Team:
    """An organisation as its team page shows it."""

    org: Organisation
    members: list[MemberView]
    rooms: list[tuple[str, str]]  # (id, title), newest first
    overrides: list[tuple[str, str, str]]  # (room id, account id, role)


@dataclass(frozen=True, slots=True)
class Added:
    member: MemberView
    created: bool  # a new account (no password yet)
    link: str | None  # the one-time link to pass on (mail is off); None: mailed, or not needed


async def team_of(db: Database, org_id: str) -> Team:
    async with db.session() as session:
        org = await session.get(Organisation, org_id)
        if org is None:
            raise NotFound("no such organisation")
        found = await session.exec(
            select(Membership, Account)
            .join(Account, col(Account.id) == col(Membership.account_id))
            .where(col(Membership.org_id) == org_id)
            .order_by(col(Account.email))
        )
        members = [
            MemberView(a.id, a.email, a.name, m.role, a.password_hash is not None) for m, a in found.all()
        ]
        rooms = await session.exec(
            select(Room.id, Room.title)
            .where(col(Room.org_id) == org_id)
            .order_by(col(Room.created_ms).desc())
        )
        room_list = [(rid, title) for rid, title in rooms.all()]
        overrides = await session.exec(
            select(RoomRole.room_id, RoomRole.account_id, RoomRole.role)
            .join(Room, col(Room.id) == col(RoomRole.room_id))
            .where(col(Room.org_id) == org_id)
        )
        override_list = [(r, a, role) for r, a, role in overrides.all()]
    return Team(org, members, room_list, override_list)


def _record(
    services: Services,
    user: StudioUser,
    action: str,
    org_id: str,
    target: str,
    detail: dict[str, object],
    room_id: str | None = None,
) -> None:
    services.engines.get(AuditLog).record(
        actions.actor_of(user.account, user.session.id),
        action,
        "roles",
        org_id=org_id,
        room_id=room_id,
        target=target,
        detail=detail,
    )


async def _member(db: Database, org_id: str, account_id: str) -> tuple[Membership, Account]:
    async with db.session() as session:
        membership = await session.get(Membership, (org_id, account_id))
        account = await session.get(Account, account_id)
    if membership is None or account is None:
        raise NotFound("no such member")
    return membership, account


async def _owners(db: Database, org_id: str) -> int:
    async with db.session() as session:
        found = await session.exec(
            select(func.count())
            .select_from(Membership)
            .where(col(Membership.org_id) == org_id, col(Membership.role) == MemberRole.OWNER.value)
        )
        return int(found.one())


async def do_add_member(
    services: Services, user: StudioUser, org_id: str, email: object, name: object, role: object, base: str
) -> Added:
    """Add a person by email with a role. Without an account, one is made without a password, and
    its owner gets a one-time link to set one: by mail, or (mail off) shown to who added them."""
    chosen = rules.parse_role(role)
    clean = rules.clean_email(email)
    account = await actions.account_by_email(services.db, clean)
    created = account is None
    if account is None:
        account = await actions.create_account(services.db, clean, name)
    async with services.db.session() as session:
        if await session.get(Membership, (org_id, account.id)) is not None:
            raise Conflict("this person is already a member", code="member_exists")
    await actions.set_membership(services.db, org_id, account.id, chosen)
    link = None
    if account.password_hash is None:
        url = f"{base}/studio/reset/{await actions.issue_link(services.db, account.id, 'reset')}"
        if services.engines.get(Accounts).mail_on:
            async with services.db.session() as session:
                org = await session.get(Organisation, org_id)
            actions.mail_link(
                services, account, "invite", url, user.account.locale or "en", org.name if org else org_id
            )
        else:
            link = url
    _record(services, user, "member.add", org_id, account.email, {"old": None, "new": chosen.value})
    view = MemberView(
        account.id, account.email, account.name, chosen.value, account.password_hash is not None
    )
    return Added(view, created, link)


async def do_change_role(
    services: Services, user: StudioUser, org_id: str, account_id: str, role: object
) -> str:
    """Change a member's organisation role; Conflict (``last_owner``) for the last owner. The old role."""
    chosen = rules.parse_role(role)
    membership, account = await _member(services.db, org_id, account_id)
    if (
        membership.role == MemberRole.OWNER
        and chosen is not MemberRole.OWNER
        and await _owners(services.db, org_id) <= 1
    ):
        raise Conflict("an organisation keeps at least one owner", code="last_owner")
    old = await actions.set_membership(services.db, org_id, account_id, chosen)
    _record(services, user, "member.role", org_id, account.email, {"old": old, "new": chosen.value})
    return old or ""


async def do_remove_member(services: Services, user: StudioUser, org_id: str, account_id: str) -> None:
    """Remove a member (and their room overrides in this organisation); never the last owner."""
    membership, account = await _member(services.db, org_id, account_id)
    if membership.role == MemberRole.OWNER and await _owners(services.db, org_id) <= 1:
        raise Conflict("an organisation keeps at least one owner", code="last_owner")
    async with services.db.session() as session:
        rooms = select(Room.id).where(col(Room.org_id) == org_id)
        await session.exec(
            delete(RoomRole).where(col(RoomRole.account_id) == account_id, col(RoomRole.room_id).in_(rooms))
        )
        await session.exec(
            delete(Membership).where(
                col(Membership.org_id) == org_id, col(Membership.account_id) == account_id
            )
        )
        await session.commit()
    _record(services, user, "member.remove", org_id, account.email, {"old": membership.role, "new": None})


async def do_set_room_role(
    services: Services, user: StudioUser, org_id: str, account_id: str, room_id: str, role: object
) -> None:
    """Set (a role) or clear (``None``: the organisation role counts again) a member's role in one
    room of the organisation."""
    chosen = None if role is None or role == "" else rules.parse_role(role)
    _membership, account = await _member(services.db, org_id, account_id)
    async with services.db.session() as session:
        room = await session.get(Room, room_id)
        if room is None or room.org_id != org_id:
            raise InvalidInput("room: a room of this organisation", code="bad_room")
        found = await session.get(RoomRole, (room_id, account_id))
        old = found.role if found is not None else None
        if chosen is None:
            if found is not None:
                await session.delete(found)
        elif found is None:
            session.add(RoomRole(room_id=room_id, account_id=account_id, role=chosen.value))
        else:
            found.role = chosen.value
            session.add(found)
        await session.commit()
    new = chosen.value if chosen is not None else None
    _record(
        services,
        user,
        "member.room_role",
        org_id,
        account.email,
        {"room": room_id, "old": old, "new": new},
        room_id,
    )
