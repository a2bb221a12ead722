"""Who is asking, at follow-up's HTTP edge: the room's host (the console), a viewer who joined the room
(the phone), the SMS gateway (its shared token). Identity itself is decided in server/rooms/identity.py."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from server.accounts.audit import audit_http
from server.auth import Principal, Scope
from server.errors import NotFound, Unauthorized
from server.followup.links import Links
from server.followup.runner import Runner
from server.httputil import bearer, check_origin
from server.rooms.actions import load_room
from server.rooms.identity import require_host, viewer_from_cookie
from server.services import Services
from server.storage.models import RoomViewer


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def links(services: Services) -> Links:
    return services.engines.get(Runner).links


async def host_room(request: Request) -> tuple[Services, str]:
    """The console's request: (services, the host's room id)."""
    services = services_of(request)
    principal = await require_host(
        request, Scope.FOLLOWUP, cookie=True
    )  # on the session cookie: same-origin only
    request.state.console = principal
    return services, principal.room_id


def audit(request: Request, action: str, detail: object = None, target: str | None = None) -> None:
    """Record a console's follow-up change in the audit log (after ``host_room`` and the change)."""
    principal: Principal = request.state.console
    data = detail if isinstance(detail, dict) else None
    audit_http(services_of(request), principal, action, "campaigns", data, target)


def viewer(request: Request) -> str:
    viewer_id = viewer_from_cookie(services_of(request), request)
    if viewer_id is None:
        raise Unauthorized("join the room first")
    return viewer_id


async def from_phone(request: Request) -> tuple[Services, str, str]:
    """A viewer's request in a room they joined: (services, room id, viewer id)."""
    services = services_of(request)
    check_origin(request, services.settings.allowed_origins, services.settings.public_url)
    room_id = request.path_params["room_id"]
    viewer_id = viewer(request)
    await load_room(services.db, room_id)
    async with services.db.session() as session:
        if await session.get(RoomViewer, (room_id, viewer_id)) is None:
            raise Unauthorized("join the room first")
    return services, room_id, viewer_id


def gateway(request: Request) -> Services:
    """The SMS gateway calling back, proven by the shared token."""
    services = services_of(request)
    token = bearer(request)
    expected = services.settings.sms_token
    if not expected or token is None or not hmac.compare_digest(token, expected):
        raise Unauthorized("send the SMS gateway token as 'Authorization: Bearer ...'")
    return services


def int_param(request: Request, name: str) -> int:
    """A numeric path parameter (``message_id``); anything else names nothing (404)."""
    raw = request.path_params[name]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise NotFound(f"no such {name.removesuffix('_id')}")
    return int(raw)
