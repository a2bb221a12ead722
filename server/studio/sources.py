"""Sources (docs/revenue.md): a room's named entry links, one per channel (a poster's QR code, a
WeChat group, a partner KOL, an offline store), made in the studio by whoever holds room:admin or
followup:manage. ``/api/studio/rooms/{room}/sources``: list and create; ``.../{code}``: archive."""

from __future__ import annotations

import secrets
from typing import Any

from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.accounts.identity import StudioUser
from server.auth import MEMBER_SCOPES, MemberRole, Scope
from server.errors import Conflict, Forbidden, InvalidInput, NotFound
from server.httputil import json_body
from server.rooms import sources as entry
from server.services import Services
from server.storage import now_ms
from server.storage.models import Room
from server.storage.revenue import SourceCode
from server.studio import rooms
from server.studio.rooms_http import public_base, signed_in
from server.text import clean_text

CHANNELS = ("poster", "wechat_group", "miniprogram", "web", "app", "kol", "store", "other")
LABEL_MAX_CHARS = 80
# Enough for every poster, group and partner of one show; a list a host can still read.
MAX_SOURCES = 200
SCOPES = (Scope.ROOM_ADMIN, Scope.FOLLOWUP)


def new_code() -> str:
    """8 URL-safe characters (48 random bits): short in a QR code, not guessable from another's."""
    return secrets.token_urlsafe(6)


def parse_source(body: dict[str, Any]) -> tuple[str, str]:
    """The label (1 to 80 characters) and the channel (one of ``CHANNELS``) of a new source."""
    label = clean_text(body.get("label"), field="label", max_chars=LABEL_MAX_CHARS)
    assert label is not None
    channel = body.get("channel")
    if channel not in CHANNELS:
        raise InvalidInput(f"channel must be one of {', '.join(CHANNELS)}")
    return label, str(channel)


def source_shape(source: SourceCode, base: str) -> dict[str, Any]:
    link = f"{base}/r/{source.room_id}?src={source.code}"
    return {
        "code": source.code,
        "label": source.label,
        "channel": source.channel,
        "link": link,
        "qr": f"/r/{source.room_id}/qr.svg?src={source.code}",
        "created_ms": source.created_ms,
        "archived": source.archived,
    }


def check_scope(role: MemberRole) -> None:
    if not any(scope in MEMBER_SCOPES[role] for scope in SCOPES):
        raise Forbidden(f"the {role} role may not manage this room's sources (needs {' or '.join(SCOPES)})")


async def list_sources(services: Services, room_id: str) -> list[SourceCode]:
    async with services.db.session() as session:
        found = await session.exec(
            select(SourceCode).where(SourceCode.room_id == room_id).order_by(col(SourceCode.created_ms))
        )
        return list(found.all())


async def do_create(services: Services, user: StudioUser, room: Room, body: dict[str, Any]) -> SourceCode:
    """A new source of the room, with a fresh code (audited)."""
    label, channel = parse_source(body)
    if len(await list_sources(services, room.id)) >= MAX_SOURCES:
        raise Conflict(f"a room holds at most {MAX_SOURCES} sources")
    source = SourceCode(code=new_code(), room_id=room.id, label=label, channel=channel, created_ms=now_ms())
    async with services.db.session() as session:
        session.add(source)
        await session.commit()
        await session.refresh(source)
    entry.forget_source(services.db, source.code)  # a miss cached before it existed
    detail = {"label": label, "channel": channel}
    rooms.audit(services, user, "source.create", room, target=f"src={source.code}", detail=detail)
    return source


async def do_archive(services: Services, user: StudioUser, room: Room, code: str) -> SourceCode:
    """The code stops counting: later scans of its link are ordinary visits (audited)."""
    async with services.db.session() as session:
        source = await session.get(SourceCode, code)
        if source is None or source.room_id != room.id:
            raise NotFound("no such source in this room")
        source.archived = True
        session.add(source)
        await session.commit()
        await session.refresh(source)
    entry.forget_source(services.db, code)
    rooms.audit(services, user, "source.archive", room, target=f"src={code}", detail={"label": source.label})
    return source


async def _room(request: Request, *, write: bool) -> tuple[Services, StudioUser, Room]:
    services: Services = request.app.state.services
    user = await signed_in(request, write=write)
    room, role = await rooms.room_role(services, user, request.path_params["room_id"])
    check_scope(role)
    return services, user, room


async def api_sources(request: Request) -> JSONResponse:
    """GET /api/studio/rooms/{room}/sources: the room's sources; POST {label, channel}: a new one."""
    services, user, room = await _room(request, write=request.method == "POST")
    base = public_base(request)
    if request.method == "POST":
        source = await do_create(services, user, room, await json_body(request))
        return JSONResponse(source_shape(source, base), status_code=201)
    found = await list_sources(services, room.id)
    return JSONResponse({"sources": [source_shape(s, base) for s in found], "channels": list(CHANNELS)})


async def api_source(request: Request) -> JSONResponse:
    """DELETE /api/studio/rooms/{room}/sources/{code}: archive it (its orders keep naming it)."""
    services, user, room = await _room(request, write=True)
    source = await do_archive(services, user, room, request.path_params["code"])
    return JSONResponse(source_shape(source, public_base(request)))


routes = [
    Route("/api/studio/rooms/{room_id}/sources", api_sources, methods=["GET", "POST"]),
    Route("/api/studio/rooms/{room_id}/sources/{code}", api_source, methods=["DELETE"]),
]
