"""Who is on the other end of a WebSocket: the hello's credentials -> Principal (through
server/rooms/identity.py, as every HTTP route), and the welcome facts."""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.websockets import WebSocket

from server.auth import Principal, Role
from server.rooms import snapshot
from server.rooms.identity import VIEWER_COOKIE, host_cookie, identify
from server.rooms.rules import clean_display_name
from server.services import Services


async def authenticate(
    services: Services, websocket: WebSocket, role: Role, room_id: str, data: dict[str, Any]
) -> Principal:
    """Check the hello's credentials for ``role`` in ``room_id`` (raises Unauthorized or NotFound):
    ``token`` (else the viewer's or the console's cookie), or a screen's ``key``."""
    field = "key" if role is Role.SCREEN else "token"
    value = data.get(field)
    if value is None and role is not Role.SCREEN:
        value = websocket.cookies.get(VIEWER_COOKIE if role is Role.VIEWER else host_cookie(room_id))
    token = value if isinstance(value, str) and value else None
    missing = f'missing credentials: send "{field}" in hello'
    principal = await identify(services, role, room_id, token, missing=missing, cached=True)
    if role is Role.HOST and principal.account_id is None:
        # Co-hosts on the host key name themselves so that others see who took an item (a member
        # is named by their account).
        principal = dataclasses.replace(principal, name=clean_display_name(data.get("name")) or "Host")
    return principal


async def welcome(services: Services, principal: Principal) -> dict[str, Any]:
    out: dict[str, Any] = {"role": principal.role.value, "room_id": principal.room_id}
    if principal.viewer_id is not None:
        out["viewer_id"] = principal.viewer_id
        out["personal"] = await snapshot.personal(services, principal)
    if principal.name is not None:
        out["name"] = principal.name
    if principal.role is Role.HOST:
        # What this console may do: it hides what it cannot (the server refuses it anyway).
        out["scopes"] = sorted(principal.scopes)
        if principal.member_role is not None:
            out["member"] = {"role": principal.member_role.value, "name": principal.name}
    return out
