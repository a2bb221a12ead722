"""Who is on the other end of a WebSocket: hello credentials -> Principal, and the welcome facts."""

from __future__ import annotations

from typing import Any

from starlette.websockets import WebSocket

from server.auth import Principal, Role
from server.errors import Unauthorized
from server.httputil import VIEWER_COOKIE, host_cookie
from server.rooms import access, actions, snapshot
from server.rooms.rules import clean_display_name
from server.services import Services


def _credential(data: dict[str, Any], field: str, cookie: str | None) -> str:
    value = data.get(field)
    if value is None:
        value = cookie
    if not isinstance(value, str) or not value:
        raise Unauthorized(f'missing credentials: send "{field}" in hello')
    return value


async def authenticate(
    services: Services, websocket: WebSocket, role: Role, room_id: str, data: dict[str, Any]
) -> Principal:
    """Check the hello's credentials for ``role`` in ``room_id`` (raises Unauthorized or NotFound)."""
    room = await actions.load_room_cached(services.db, room_id)
    if role is Role.VIEWER:
        token = _credential(data, "token", websocket.cookies.get(VIEWER_COOKIE))
        # The token is signed and only ever issued for a stored viewer: no lookup needed.
        viewer_id = services.tokens.check_viewer(token)
        return Principal(Role.VIEWER, room.id, viewer_id)
    if role is Role.HOST:
        token = _credential(data, "token", websocket.cookies.get(host_cookie(room.id)))
        credential = services.tokens.check_host(token, room.id, room.host_key_gen)
        if await access.is_revoked(services.db, credential):  # read fresh: host connects are few
            raise Unauthorized("this host session was logged out", code="revoked")
        # Co-hosts and moderators name themselves so that others see who took an item.
        name = clean_display_name(data.get("name")) or "Host"
        return Principal(Role.HOST, room.id, name=name, credential=credential, generation=room.host_key_gen)
    key = _credential(data, "key", None)
    services.tokens.check_screen(key, room.id, room.screen_key_gen)
    return Principal(Role.SCREEN, room.id, generation=room.screen_key_gen)


async def welcome(services: Services, principal: Principal) -> dict[str, Any]:
    out: dict[str, Any] = {"role": principal.role.value, "room_id": principal.room_id}
    if principal.viewer_id is not None:
        out["viewer_id"] = principal.viewer_id
        out["personal"] = await snapshot.personal(services, principal)
    if principal.name is not None:
        out["name"] = principal.name
    return out
