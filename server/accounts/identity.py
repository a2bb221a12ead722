"""Who is signed in to the studio, and what they may do in an organisation or a room.

The studio's cookie (``lw_studio``) carries the signed id of a stored ``StudioSession``; every request
reads the session (revoked, expired or a disabled account: signed out at once, in every process).
Organisation routes ask ``require_org(user, org_id, scope)``, room routes ``require_room``: the
member's role there (the room's override, else their organisation role) must hold the scope.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select
from starlette.requests import HTTPConnection
from starlette.responses import Response

from server.accounts import rules, store
from server.auth import MEMBER_SCOPES, MemberRole, Scope
from server.config import STUDIO_SESSION_SECS
from server.errors import Forbidden, Unauthorized
from server.services import Services
from server.storage.accounts import Account, Membership, RoomRole, StudioSession
from server.storage.models import Room

STUDIO_COOKIE = "lw_studio"


@dataclass(frozen=True, slots=True)
class StudioUser:
    """A signed-in person: their account, this browser's session, and their organisation roles."""

    account: Account
    session: StudioSession
    roles: dict[str, MemberRole]  # org id -> role

    @property
    def id(self) -> str:
        return self.account.id

    def role_in(self, org_id: str) -> MemberRole | None:
        return self.roles.get(org_id)


async def studio_user(services: Services, conn: HTTPConnection) -> StudioUser:
    """The signed-in person of this request, or Unauthorized (``signed_out``)."""
    token = conn.cookies.get(STUDIO_COOKIE)
    if not token:
        raise Unauthorized("sign in to the studio first", code="signed_out")
    session_id = services.tokens.check_studio(token)
    row, account = await store.live_session(services.db, session_id)
    async with services.db.session() as session:
        found = await session.exec(
            select(Membership.org_id, Membership.role).where(col(Membership.account_id) == account.id)
        )
        roles = {org: r for org, role in found.all() if (r := rules.effective_role(role, None)) is not None}
    return StudioUser(account, row, roles)


def require_org(user: StudioUser, org_id: str, scope: Scope) -> MemberRole:
    """The member's role in the organisation, if it holds ``scope``; Forbidden otherwise (a server
    admin who is not a member is treated as an owner)."""
    role = user.role_in(org_id)
    if role is None and user.account.admin:
        role = MemberRole.OWNER
    if role is None:
        raise Forbidden("you are not a member of this organisation")
    if scope not in MEMBER_SCOPES[role]:
        raise Forbidden(f"the {role} role may not do this (needs {scope})")
    return role


async def role_in_room(services: Services, user: StudioUser, room: Room) -> MemberRole | None:
    """The member's role in this room: the room's override, else their organisation role."""
    async with services.db.session() as session:
        override = await session.get(RoomRole, (room.id, user.id))
    role = rules.effective_role(user.roles.get(room.org_id), override.role if override is not None else None)
    if role is None and user.account.admin:
        role = MemberRole.OWNER
    return role


async def require_room(services: Services, user: StudioUser, room: Room, scope: Scope) -> MemberRole:
    """The member's role in the room, if it holds ``scope``; Forbidden otherwise."""
    role = await role_in_room(services, user, room)
    if role is None:
        raise Forbidden("you are not a member of this room's organisation")
    if scope not in MEMBER_SCOPES[role]:
        raise Forbidden(f"the {role} role may not do this in this room (needs {scope})")
    return role


def set_studio_cookie(services: Services, response: Response, session_id: str) -> None:
    response.set_cookie(
        STUDIO_COOKIE,
        services.tokens.studio(session_id),
        max_age=STUDIO_SESSION_SECS,
        httponly=True,
        samesite="lax",  # a one-time link from an email is a top-level navigation from another site
        secure=services.settings.secure_cookies,
        path="/",
    )


def clear_studio_cookie(response: Response) -> None:
    response.delete_cookie(STUDIO_COOKIE, path="/")
