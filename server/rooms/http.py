"""The host's credential endpoints (docs/api.md): rotate the host key, replace the big-screen link,
log out. Each needs the room's host token (``Authorization: Bearer``) or the console's session."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.config import HOST_SESSION_SECS
from server.errors import InvalidInput, Unauthorized
from server.httputil import bearer, check_origin, host_cookie, json_body
from server.rooms import access
from server.services import Services


def set_host_cookie(services: Services, response: Response, room_id: str, token: str) -> None:
    """The console's session: HttpOnly, SameSite=Strict (no other site's page rides on it)."""
    response.set_cookie(
        host_cookie(room_id),
        token,
        max_age=HOST_SESSION_SECS,
        httponly=True,
        samesite="strict",
        secure=services.settings.secure_cookies,
        path="/",
    )


async def _host(request: Request) -> tuple[Services, str, str, bool]:
    """(services, room id, the host token presented, whether it came from the session cookie)."""
    services: Services = request.app.state.services
    room_id = request.path_params["room_id"]
    token = bearer(request)
    session = token is None
    if session:  # the console rides on its session cookie: refuse other sites' pages (CSRF)
        check_origin(request, services.settings.allowed_origins, services.settings.public_url)
        token = request.cookies.get(host_cookie(room_id))
    if not token:
        raise Unauthorized("send the host token as 'Authorization: Bearer ...'")
    principal = await access.check_host_token(services, room_id, token)
    return services, principal.room_id, token, session


async def rotate_host_key(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/host-key/rotate (host): a new host key, shown only in this answer; every
    host session of the old key is logged out, except the caller's, which gets a new token."""
    services, room_id, _token, session = await _host(request)
    key, token = await access.rotate_key(services, room_id)
    response = JSONResponse({"key": key, "token": token}, headers={"cache-control": "no-store"})
    if session:
        set_host_cookie(services, response, room_id, token)
    return response


async def rotate_screen_link(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/screen-link/rotate (host): the old big-screen link stops working (open
    screens on it are closed); answers the new one."""
    services, room_id, _token, _session = await _host(request)
    key = await access.do_new_screen_link(services, room_id)
    return JSONResponse(
        {"key": key, "link": f"/screen/{room_id}?k={key}"}, headers={"cache-control": "no-store"}
    )


async def logout(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/logout {everywhere?} (host): revoke the token presented (or, with
    ``everywhere``, every host session of the room; the key stays the same)."""
    services, room_id, token, session = await _host(request)
    body = await json_body(request)
    everywhere = body.get("everywhere", False)
    if not isinstance(everywhere, bool):
        raise InvalidInput("everywhere must be true or false")
    await access.do_logout(services, room_id, token, everywhere=everywhere)
    response = JSONResponse({"ok": True})
    if session:
        response.delete_cookie(host_cookie(room_id), path="/")
    return response


routes = [
    Route("/api/rooms/{room_id}/host-key/rotate", rotate_host_key, methods=["POST"]),
    Route("/api/rooms/{room_id}/screen-link/rotate", rotate_screen_link, methods=["POST"]),
    Route("/api/rooms/{room_id}/logout", logout, methods=["POST"]),
]
