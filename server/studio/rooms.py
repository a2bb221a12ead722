"""The studio's rooms: listed by status and searched, created, scheduled (start time, description,
cover), cloned with their products and presets, and their host keys turned on or off.

Who may do what (docs/studio.md): any member of a room's organisation (or with a role in the room)
sees it; creating, scheduling, cloning and the host key need ``room:admin`` there. A room the person
has no role in is answered as not found, so the studio never tells who else has which rooms.
Every change is written to the audit log (category ``settings``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, or_, update
from sqlmodel import col, select

from server.accounts.audit import Actor, AuditLog
from server.accounts.identity import StudioUser, require_org, role_in_room
from server.auth import MEMBER_SCOPES, MemberRole, Scope
from server.errors import Forbidden, NotFound
from server.media import ImageIntake
from server.rooms import actions as room_actions
from server.rooms.access import Access
from server.rooms.rules import TITLE_MAX_CHARS
from server.services import Services
from server.storage import now_ms
from server.storage.accounts import DEFAULT_ORG, Preset, Reminder, RoomRole
from server.storage.models import Product, Room
from server.studio import rooms_wire as wire

PAGE_SIZE = 20
COPY_SUFFIX = " (copy)"
# Covers are shown on a phone page and a poster: no need for more than this.
COVER_SIDE_PX = 1600


class Covers:
    """The studio's image intake for room covers (a bounded number processed at once)."""

    def __init__(self, services: Services) -> None:
        self.intake = ImageIntake(services.settings.data_dir, at_once=1, waiting=4, max_side=COVER_SIDE_PX)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


@dataclass(frozen=True)
class RoomPage:
    """One page of the rooms list."""

    rooms: list[Room]
    total: int
    page: int
    pages: int


def actor(user: StudioUser) -> Actor:
    return Actor(label=user.account.email, account_id=user.id, session_id=user.session.id)


def audit(
    services: Services,
    user: StudioUser,
    action: str,
    room: Room,
    *,
    category: str = "settings",
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    services.engines.get(AuditLog).record(
        actor(user),
        action,
        category,
        room_id=room.id,
        org_id=room.org_id,
        target=target or f"room={room.id}",
        detail=detail,
    )


# --- reading ----------------------------------------------------------------------------------------


async def list_rooms(services: Services, user: StudioUser, listing: wire.Listing) -> RoomPage:
    """The rooms of the person's organisations (and those they hold a role in), newest first; the
    scheduled tab by start time, soonest first."""
    where: list[Any] = []
    if not user.account.admin:
        overrides = select(RoomRole.room_id).where(col(RoomRole.account_id) == user.id)
        where.append(or_(col(Room.org_id).in_(sorted(user.roles)), col(Room.id).in_(overrides)))
    if listing.status is not None:
        where.append(col(Room.status) == listing.status)
    if listing.query is not None:
        where.append(func.lower(col(Room.title)).like(wire.like_pattern(listing.query), escape="\\"))
    if listing.status == "scheduled":
        order: list[Any] = [func.coalesce(col(Room.scheduled_ms), 2**62), col(Room.created_ms).desc()]
    elif listing.status == "ended":
        order = [func.coalesce(col(Room.ended_ms), col(Room.created_ms)).desc()]
    else:
        order = [col(Room.created_ms).desc()]
    async with services.db.session() as session:
        total = (await session.exec(select(func.count()).select_from(Room).where(*where))).one()
        found = await session.exec(
            select(Room)
            .where(*where)
            .order_by(*order, col(Room.id))
            .offset((listing.page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        )
        rooms = list(found.all())
    return RoomPage(rooms, int(total), listing.page, max(1, -(-int(total) // PAGE_SIZE)))


async def studio_room(services: Services, user: StudioUser, room_id: str, scope: Scope) -> Room:
    """The room, if the person has a role in it holding ``scope``: NotFound without any role (its
    existence is not told), Forbidden for a role without the scope."""
    role = await room_role(services, user, room_id)
    if scope not in MEMBER_SCOPES[role[1]]:
        raise Forbidden(f"the {role[1]} role may not do this in this room (needs {scope})")
    return role[0]


async def room_role(services: Services, user: StudioUser, room_id: str) -> tuple[Room, MemberRole]:
    """The room and the person's role in it; NotFound when they have none."""
    room = await room_actions.load_room(services.db, room_id)
    role = await role_in_room(services, user, room)
    if role is None:
        raise NotFound("no such room")
    return room, role


async def reminders(services: Services, room_id: str) -> int:
    """How many viewers asked to be reminded when the room goes live."""
    async with services.db.session() as session:
        found = await session.exec(
            select(func.count()).select_from(Reminder).where(col(Reminder.room_id) == room_id)
        )
        return int(found.one())


def creation_org(user: StudioUser, org_id: object) -> str:
    """The organisation a new room goes to: the one asked for (the person must hold room:admin
    there), else the first where they do."""
    if isinstance(org_id, str) and org_id:
        require_org(user, org_id, Scope.ROOM_ADMIN)
        return org_id
    mine = sorted(o for o, r in user.roles.items() if Scope.ROOM_ADMIN in MEMBER_SCOPES[r])
    if mine:
        return mine[0]
    if user.account.admin:
        return DEFAULT_ORG
    raise Forbidden("your role may not create rooms (needs room:admin)")


# --- changing ---------------------------------------------------------------------------------------


async def do_create(services: Services, user: StudioUser, data: Mapping[str, Any]) -> Room:
    """A new scheduled room (its host key is not shown: members open the console from the studio)."""
    org_id = creation_org(user, data.get("org_id"))
    fields = wire.parse_room(data, now=now_ms())
    room, _key = await room_actions.create_room(
        services.db,
        title=fields.title,
        org_id=org_id,
        scheduled_ms=fields.scheduled_ms,
        description=fields.description,
    )
    audit(services, user, "room.create", room, detail={"title": room.title})
    return room


async def _set(services: Services, room_id: str, **values: Any) -> Room:
    async with services.db.session() as session:
        await session.exec(update(Room).where(col(Room.id) == room_id).values(**values))
        await session.commit()
    room_actions.forget_room_cached(services.db, room_id)
    return await room_actions.load_room(services.db, room_id)


async def do_update(services: Services, user: StudioUser, room: Room, data: Mapping[str, Any]) -> Room:
    """Change the title, start time or description (a field left out keeps its value)."""
    fields = wire.parse_room(data, now=now_ms(), current=room)
    room = await _set(
        services,
        room.id,
        title=fields.title,
        scheduled_ms=fields.scheduled_ms,
        description=fields.description,
    )
    audit(
        services,
        user,
        "room.schedule",
        room,
        detail={"title": fields.title, "scheduled_ms": fields.scheduled_ms},
    )
    return room


async def do_cover(
    services: Services, user: StudioUser, room: Room, intake: ImageIntake, data: bytes | None
) -> Room:
    """Store an uploaded cover (stripped and re-encoded by server/media.py), or remove it (None)."""
    name = None
    if data is not None:
        name = (await intake.store(data)).name
    room = await _set(services, room.id, cover=name)
    audit(services, user, "room.cover", room, detail={"cover": name})
    return room


async def do_host_key(services: Services, user: StudioUser, room: Room, enabled: bool) -> Room:
    """Allow or refuse signing in with the room's host key; refusing closes its consoles at once
    (in this process now, in others within their revocation sweep)."""
    room = await _set(services, room.id, host_key_enabled=enabled)
    await services.engines.get(Access).sweep([room.id])
    audit(services, user, "room.host_key", room, detail={"enabled": enabled})
    return room


async def do_clone(services: Services, user: StudioUser, source: Room) -> Room:
    """A new scheduled room like ``source``: its title + " (copy)", description, cover, the products on
    its shelf (new ids) and its presets (a discount preset names the copy of its product). Not its
    viewers, questions, claims or draws."""
    title = source.title
    if len(title) + len(COPY_SUFFIX) > TITLE_MAX_CHARS:
        title = title[: TITLE_MAX_CHARS - len(COPY_SUFFIX)]
    room, _key = await room_actions.create_room(
        services.db,
        title=title + COPY_SUFFIX,
        org_id=source.org_id,
        description=source.description,
        cover=source.cover,
        cloned_from=source.id,
    )
    now = now_ms()
    async with services.db.session() as session:
        found = await session.exec(
            select(Product)
            .where(col(Product.room_id) == source.id, col(Product.archived).is_(False))
            .order_by(col(Product.id))
        )
        ids: dict[int, int] = {}
        for old in found.all():
            fields = old.model_dump(exclude={"id", "room_id", "created_ms", "archived"})
            new = Product(room_id=room.id, created_ms=now, **fields)
            session.add(new)
            await session.flush()
            assert old.id is not None and new.id is not None
            ids[old.id] = new.id
        presets = await session.exec(
            select(Preset).where(col(Preset.room_id) == source.id).order_by(col(Preset.id))
        )
        copied = 0
        for preset in presets.all():
            payload = wire.preset_payload(preset)
            if preset.kind == "discount":
                product = payload.get("product_id")
                if not isinstance(product, int) or product not in ids:
                    continue  # its product was archived: the preset could not launch
                payload["product_id"] = ids[product]
            session.add(
                Preset(
                    room_id=room.id,
                    kind=preset.kind,
                    label=preset.label,
                    payload=orjson.dumps(payload).decode(),
                    created_ms=now,
                )
            )
            copied += 1
        await session.commit()
    audit(
        services,
        user,
        "room.clone",
        room,
        detail={"from": source.id, "products": len(ids), "presets": copied},
    )
    return room
