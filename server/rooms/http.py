"""The host's credential endpoints (docs/api.md): rotate the host key, replace the big-screen link,
log out. Each needs the room's host token (``Authorization: Bearer``) or the console's session."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.accounts.audit import audit_http
from server.auth import Principal, Role, Scope, require
from server.errors import InvalidInput
from server.httputil import json_body
from server.rooms import access
from server.rooms.identity import BEARER_NEEDED, clear_host_cookie, host_token, identify, set_host_cookie
from server.services import Services


async def _host(request: Request, scope: Scope = Scope.READ) -> tuple[Services, Principal, str, bool]:
    """(services, the console, the host token presented, whether it came from the session cookie);
    Forbidden unless the console holds ``scope``."""
    services: Services = request.app.state.services
    presented = host_token(request, cookie=True)
    principal = await identify(
        services, Role.HOST, request.path_params["room_id"], presented.token, missing=BEARER_NEEDED
    )
    require(principal, scope)
    return services, principal, presented.token, presented.session


async def rotate_host_key(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/host-key/rotate (host): a new host key, shown only in this answer; every
    host session of the old key is logged out, except the caller's, which gets a new token."""
    services, principal, _token, session = await _host(request, Scope.ROOM_ADMIN)
    room_id = principal.room_id
    key, token = await access.rotate_key(services, room_id)
    audit_http(services, principal, "host_key.rotate", "access")
    response = JSONResponse({"key": key, "token": token}, headers={"cache-control": "no-store"})
    if session and principal.session_id is None:  # a member's console is bound to their studio session
        set_host_cookie(services, response, room_id, token)
    return response


async def rotate_screen_link(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/screen-link/rotate (host): the old big-screen link stops working (open
    screens on it are closed); answers the new one."""
    services, principal, _token, _session = await _host(request, Scope.ROOM_ADMIN)
    room_id = principal.room_id
    key = await access.do_new_screen_link(services, room_id)
    audit_http(services, principal, "screen_link.rotate", "access")
    return JSONResponse(
        {"key": key, "link": f"/screen/{room_id}?k={key}"}, headers={"cache-control": "no-store"}
    )


async def logout(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/logout {everywhere?} (host): revoke the token presented (or, with
    ``everywhere``, every host session of the room; the key stays the same)."""
    services, principal, token, session = await _host(request)
    room_id = principal.room_id
    # Logging everyone out is the room's admin's (a member's own logout is always allowed).
    everywhere_allowed = principal.session_id is None or principal.can(Scope.ROOM_ADMIN)
    body = await json_body(request)
    everywhere = body.get("everywhere", False)
    if not isinstance(everywhere, bool):
        raise InvalidInput("everywhere must be true or false")
    if everywhere and not everywhere_allowed:
        require(principal, Scope.ROOM_ADMIN)
    await access.do_logout(services, room_id, token, everywhere=everywhere)
    audit_http(services, principal, "host.logout", "access", {"everywhere": everywhere})
    response = JSONResponse({"ok": True})
    if session:
        clear_host_cookie(response, room_id)
    return response


routes = [
    Route("/api/rooms/{room_id}/host-key/rotate", rotate_host_key, methods=["POST"]),
    Route("/api/rooms/{room_id}/screen-link/rotate", rotate_screen_link, methods=["POST"]),
    Route("/api/rooms/{room_id}/logout", logout, methods=["POST"]),
]
