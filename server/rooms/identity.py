"""Who is asking, decided once for HTTP and WebSocket alike: a credential in, a Principal out.

Where each role's credential travels (docs/security.md, "Who can do what"):

    role    HTTP                                                    WebSocket hello
    viewer  the ``lw_viewer`` cookie (a join body's ``token``)      ``token``, else that cookie
    host    ``Authorization: Bearer``, or the console's session     ``token``, else the session cookie
    screen  the page's ``?k=``                                      ``key``

``principal_in`` is the one check of a credential against its room: the signature and room (``Tokens``,
server/auth.py), the key generation, and for a host the deny list of logged-out sessions
(server/rooms/access.py). HTTP routes reach it through ``require_host``; the WebSocket hello through
``identify`` (server/sessions.py). A host key is not a credential here: ``access.check_host_key``
exchanges it for a host token (throttled, checked off the event loop).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection
from starlette.responses import Response

from server.accounts import store as accounts
from server.auth import Principal, Role, Scope, require
from server.config import HOST_SESSION_SECS, VIEWER_TOKEN_SECS
from server.errors import Unauthorized
from server.httputil import bearer, check_origin
from server.rooms import access, actions
from server.services import Services
from server.storage.models import Room

VIEWER_COOKIE = "lw_viewer"
BEARER_NEEDED = "send the host token as 'Authorization: Bearer ...'"


def host_cookie(room_id: str) -> str:
    """The console's session cookie of one room (a host may run several rooms in one browser)."""
    return f"lw_host_{room_id}"


async def principal_in(services: Services, room: Room, role: Role, token: str) -> Principal:
    """The one check of a credential for ``role`` in ``room``: Unauthorized (code ``revoked`` for a
    replaced host key or screen link, or a logged-out host session) or the Principal."""
    if role is Role.VIEWER:
        # The token is signed and only ever issued for a stored viewer: no lookup needed.
        return Principal(Role.VIEWER, room.id, services.tokens.check_viewer(token))
    if role is Role.HOST:
        checked = services.tokens.check_host(token, room.id, room.host_key_gen)
        if checked.session_id is None and not room.host_key_enabled:
            raise Unauthorized(
                "signing in with the host key is turned off for this room: sign in at /studio",
                code="revoked",
            )
        if await access.is_revoked(services.db, checked.token_id):  # read fresh: host logins are few
            raise Unauthorized("this host session was logged out", code="revoked")
        if checked.session_id is not None:
            member = await accounts.member_in_room(services.db, checked.session_id, room.org_id, room.id)
            return Principal(
                Role.HOST,
                room.id,
                name=member.name,
                credential=checked.token_id,
                account_id=member.account_id,
                session_id=member.session_id,
                member_role=member.role,
            )
        return Principal(Role.HOST, room.id, credential=checked.token_id, generation=room.host_key_gen)
    services.tokens.check_screen(token, room.id, room.screen_key_gen)
    return Principal(Role.SCREEN, room.id, generation=room.screen_key_gen)


async def identify(
    services: Services, role: Role, room_id: str, token: str | None, *, missing: str, cached: bool = False
) -> Principal:
    """The room (NotFound), then Unauthorized(``missing``) without a credential, then ``principal_in``.
    ``cached``: share the room's row for ROOM_CACHE_SECS, for WebSocket connects, which come in
    storms; HTTP reads it now, so another process's key rotation counts at once."""
    load = actions.load_room_cached if cached else actions.load_room
    room = await load(services.db, room_id)
    if token is None:
        raise Unauthorized(missing)
    return await principal_in(services, room, role, token)


# --- HTTP ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostToken:
    """The host token an HTTP request presents, and whether it came from the console's session cookie."""

    token: str
    session: bool


def host_token(conn: HTTPConnection, *, cookie: bool = False, csrf: bool = True) -> HostToken:
    """``Authorization: Bearer``, else with ``cookie`` the console's session cookie of the path's room;
    Unauthorized without either. A request riding on the cookie is refused from other sites (CSRF),
    unless ``csrf`` is False: downloads, GETs that change nothing, behind a SameSite=Strict cookie."""
    token = bearer(conn)
    session = token is None and cookie
    if session:
        if csrf:
            services: Services = conn.app.state.services
            check_origin(conn, services.settings.allowed_origins, services.settings.public_url)
        token = conn.cookies.get(host_cookie(conn.path_params["room_id"]))
    if not token:
        raise Unauthorized(BEARER_NEEDED)
    return HostToken(token, session)


async def require_host(
    conn: HTTPConnection, scope: Scope, *, cookie: bool = False, csrf: bool = True
) -> Principal:
    """The console of the path's room holding ``scope`` (``host_token``, then ``identify``, then
    the scope: Forbidden for a member whose role lacks it): every HTTP route that needs a console
    calls this, naming what it needs."""
    services: Services = conn.app.state.services
    presented = host_token(conn, cookie=cookie, csrf=csrf)
    room_id = conn.path_params["room_id"]
    principal = await identify(services, Role.HOST, room_id, presented.token, missing=BEARER_NEEDED)
    require(principal, scope)
    return principal


def viewer_from_cookie(services: Services, conn: HTTPConnection) -> str | None:
    """The viewer id in a valid viewer cookie, if any (never joined, or a forged cookie: None)."""
    token = conn.cookies.get(VIEWER_COOKIE)
    if not token:
        return None
    try:
        return services.tokens.check_viewer(token)
    except Unauthorized:
        return None


def returning_viewer(services: Services, conn: HTTPConnection, token: object) -> str | None:
    """Who is joining again: the viewer of the ``token`` sent in the join body (a forged or expired
    one is refused with 401), else of a valid viewer cookie; ``None``: a new viewer."""
    if isinstance(token, str):
        return services.tokens.check_viewer(token)
    return viewer_from_cookie(services, conn)


def set_viewer_cookie(services: Services, response: Response, token: str) -> None:
    response.set_cookie(
        VIEWER_COOKIE,
        token,
        max_age=VIEWER_TOKEN_SECS,
        httponly=True,
        samesite="lax",  # sent on the top-level navigation from a scanned QR code
        secure=services.settings.secure_cookies,
    )


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


def clear_host_cookie(response: Response, room_id: str) -> None:
    response.delete_cookie(host_cookie(room_id), path="/")
