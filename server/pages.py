"""Server-rendered pages of the three surfaces, the QR code, and the host login."""

from __future__ import annotations

import contextlib
import io

import segno
from jinja2 import ChoiceLoader, FileSystemLoader
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from server.accounts.identity import role_in_room, studio_user
from server.auth import Role
from server.errors import Forbidden, LivewallError, NotFound, TooManyAttempts, Unauthorized
from server.followup import reach
from server.httputil import check_origin, client_address, retry_after
from server.i18n import negotiate
from server.rooms import access, actions, sources
from server.rooms.identity import (
    clear_host_cookie,
    host_cookie,
    principal_in,
    set_host_cookie,
    set_viewer_cookie,
    viewer_from_cookie,
)
from server.rooms.snapshot import links
from server.services import Services
from server.storage.models import Room
from server.templating import render
from server.web import web_root


def make_templates() -> Jinja2Templates:
    root = web_root()
    loader = ChoiceLoader(
        [
            FileSystemLoader(root / "static" / "templates"),
            FileSystemLoader(root / "screen" / "templates"),
            FileSystemLoader(root / "host_console" / "templates"),
        ]
    )
    templates = Jinja2Templates(directory=root / "static" / "templates")
    templates.env.loader = loader
    templates.env.autoescape = True
    return templates


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def public_base(request: Request) -> str:
    """The base URL phones should use: the configured public URL, else the one this request came to."""
    configured = _services(request).settings.public_url
    return configured.rstrip("/") if configured else str(request.base_url).rstrip("/")


def error_page(request: Request, exc: LivewallError) -> Response:
    return render(request, "error.html", status_code=exc.http_status, code=exc.code, message=exc.message)


async def home(request: Request) -> Response:
    return render(request, "home.html")


async def viewer_page(request: Request) -> Response:
    """GET /r/{room}: the phone page (a name picker first, the room once joined)."""
    services = _services(request)
    try:
        room = await actions.load_room(services.db, request.path_params["room_id"])
    except LivewallError as exc:
        return error_page(request, exc)
    viewer_id = viewer_from_cookie(services, request)
    viewer = None
    lang = negotiate(request)
    if viewer_id is not None:
        try:
            # Returning viewers are recorded as attending this room too, with the language the page
            # is shown in (follow-up messages to them are written in it).
            # ``?src=CODE``: the entry link's source (docs/revenue.md); a new phone sends it with its join.
            viewer = await actions.do_join(
                services, room.id, viewer_id, None, locale=lang, src=request.query_params.get("src")
            )
        except LivewallError:
            viewer = None
    # The opt-in box offers only what some delivering process can send (followup/reach.py).
    channels = await reach.configured(services.db)
    response = render(request, "viewer.html", room=room, viewer=viewer, optin_channels=sorted(channels))
    if viewer is not None and viewer.id != viewer_id:
        set_viewer_cookie(services, response, services.tokens.viewer(viewer.id))
    return response


async def service_worker(_request: Request) -> Response:
    """GET /sw.js: the push service worker, served from the root so its scope covers /r/{room}."""
    return FileResponse(
        web_root() / "static" / "sw.js",
        media_type="text/javascript",
        headers={"service-worker-allowed": "/", "cache-control": "no-cache"},
    )


async def qr_svg(request: Request) -> Response:
    """GET /r/{room}/qr.svg[?src=CODE]: the QR code of the viewer page (SVG, scales to any screen);
    with a live source code of the room, of that source's entry link (docs/revenue.md)."""
    services = _services(request)
    try:
        room = await actions.load_room(services.db, request.path_params["room_id"])
    except LivewallError as exc:
        return Response(exc.message, status_code=exc.http_status)
    url = f"{public_base(request)}/r/{room.id}"
    src = await sources.known_source(services.db, room.id, request.query_params.get("src"))
    if src is not None:
        url += f"?src={src}"
    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="svg", scale=10, border=2, xmldecl=False, svgns=True)
    return Response(buffer.getvalue(), media_type="image/svg+xml", headers={"cache-control": "max-age=300"})


async def screen_page(request: Request) -> Response:
    """GET /screen/{room}?k=...: the big screen, opened by its secret read-only link."""
    services = _services(request)
    try:
        room = await actions.load_room(services.db, request.path_params["room_id"])
        key = request.query_params.get("k", "")
        await principal_in(services, room, Role.SCREEN, key)
    except LivewallError as exc:
        return error_page(request, exc)
    return render(
        request, "screen.html", room=room, screen_key=key, join_url=f"{public_base(request)}/r/{room.id}"
    )


async def host_page(request: Request) -> Response:
    """GET /host/{room}: the host console (redirects to the login without a host session)."""
    services = _services(request)
    room_id = request.path_params["room_id"]
    issued = None
    try:
        room = await actions.load_room(services.db, room_id)
        token = request.cookies.get(host_cookie(room.id))
        try:
            if not token:
                raise Unauthorized("login needed")
            await principal_in(services, room, Role.HOST, token)
        except Unauthorized:
            # A member signed in to the studio opens the console without the key: a console token
            # bound to their studio session (refused, with a 403 page, without a role in the room).
            issued = await _member_console(services, request, room)
            await principal_in(services, room, Role.HOST, issued)
    except Unauthorized:
        return RedirectResponse(f"/host/{room_id}/login", status_code=303)
    except LivewallError as exc:
        return error_page(request, exc)
    response = render(
        request, "console.html", room=room, links=links(services, room), base=public_base(request)
    )
    if issued is not None:
        set_host_cookie(services, response, room.id, issued)
    return response


async def _member_console(services: Services, request: Request, room: Room) -> str:
    """A console token for the studio's signed-in member with a role in ``room``: Unauthorized
    without a studio session, Forbidden without a role there."""
    user = await studio_user(services, request)
    if await role_in_room(services, user, room) is None:
        raise Forbidden("you have no role in this room: ask an owner of its organisation")
    return services.tokens.member_host(room.id, user.session.id)


async def host_login(request: Request) -> Response:
    """GET shows the login form; POST checks the host key and starts a host session (cookie)."""
    services = _services(request)
    room_id = request.path_params["room_id"]
    try:
        room = await actions.load_room(services.db, room_id)
    except LivewallError as exc:
        return error_page(request, exc)
    if request.method == "GET":
        return render(request, "login.html", room=room, failed=False)
    if not room.host_key_enabled:
        return render(request, "login.html", status_code=403, room=room, failed=False)
    try:
        check_origin(request, services.settings.allowed_origins, services.settings.public_url)
        form = await request.form(max_files=0, max_fields=4)
        token = await access.check_host_key(services, room.id, form.get("key"), client_address(request))
    except Unauthorized:
        return render(request, "login.html", status_code=401, room=room, failed=True)
    except TooManyAttempts as exc:
        headers = retry_after(exc) or {"retry-after": "1"}
        wait = headers["retry-after"]
        response = render(request, "login.html", status_code=429, room=room, failed=False, wait=wait)
        response.headers.update(headers)
        return response
    except LivewallError as exc:
        return error_page(request, exc)
    response = RedirectResponse(f"/host/{room.id}", status_code=303)
    set_host_cookie(services, response, room.id, token)
    return response


async def host_logout(request: Request) -> Response:
    services = _services(request)
    check_origin(request, services.settings.allowed_origins, services.settings.public_url)
    room_id = request.path_params["room_id"]
    token = request.cookies.get(host_cookie(room_id))
    if token:
        # The token itself is revoked, not only the cookie: a copy of it (another tab's WebSocket,
        # a stolen cookie) stops working too.
        with contextlib.suppress(NotFound):
            await access.do_logout(services, room_id, token)
    response = RedirectResponse(f"/host/{room_id}/login", status_code=303)
    clear_host_cookie(response, room_id)
    return response


routes = [
    Route("/", home),
    Route("/r/{room_id}", viewer_page),
    Route("/r/{room_id}/qr.svg", qr_svg),
    Route("/sw.js", service_worker),
    Route("/screen/{room_id}", screen_page),
    Route("/host/{room_id}", host_page),
    Route("/host/{room_id}/login", host_login, methods=["GET", "POST"]),
    Route("/host/{room_id}/logout", host_logout, methods=["POST"]),
]
