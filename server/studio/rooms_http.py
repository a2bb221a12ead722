"""The studio's rooms over HTTP: the rooms list, the new-room form, the room page with its links and
poster, and the JSON API their modules call (static/studio/rooms.js, room.js).

Without a studio session a page redirects to the sign-in (303, ``next`` = the page) and the API
answers 401. A room the person has no role in is 404 (whether it exists is not told).
"""

from __future__ import annotations

import asyncio
import html
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from server.accounts.identity import StudioUser, studio_user
from server.auth import MEMBER_SCOPES, Scope
from server.errors import InvalidInput, LivewallError, NotFound, TooLarge, Unauthorized
from server.httputil import check_origin, json_body, read_body
from server.i18n import negotiate, translate
from server.media import MAX_UPLOAD_BYTES
from server.rooms import actions as room_actions
from server.services import Services
from server.storage.models import Room
from server.studio import poster, presets, rooms
from server.studio import rooms_wire as wire
from server.templating import render

POSTER_SECS = 15.0  # drawing a poster takes under half a second; a stuck one is given up on
# A multipart form carries the image and a few hundred bytes of boundaries and headers.
COVER_BODY_BYTES = MAX_UPLOAD_BYTES + 16 * 1024
WEEKDAYS_ZH = "一二三四五六日"


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def public_base(request: Request) -> str:
    """The base URL phones should use: the configured public URL, else the one this request came to."""
    configured = _services(request).settings.public_url
    return configured.rstrip("/") if configured else str(request.base_url).rstrip("/")


def _to_signin(request: Request) -> Response:
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = f"/studio/signin?next={quote(path, safe='/')}"
    body = f'<!doctype html><a href="{html.escape(target)}">/studio/signin</a>\n'
    return HTMLResponse(body, status_code=303, headers={"location": target, "cache-control": "no-store"})


def _error_page(request: Request, exc: LivewallError) -> Response:
    return render(request, "error.html", status_code=exc.http_status, code=exc.code, message=exc.message)


async def signed_in(request: Request, *, write: bool = False) -> StudioUser:
    services = _services(request)
    if write:  # the cookie is SameSite=Lax; a changing request from another site is refused too
        check_origin(request, services.settings.allowed_origins, services.settings.public_url)
    return await studio_user(services, request)


def links(services: Services, room: Room, base: str, *, admin: bool) -> dict[str, str | None]:
    """The room's addresses: the phone page, the console, and for a room admin the big screen and
    its OBS variant (the screen link is a secret read-only key)."""
    screen = None
    if admin:
        screen = f"{base}/screen/{room.id}?k={services.tokens.screen(room.id, room.screen_key_gen)}"
    return {
        "viewer": f"{base}/r/{room.id}",
        "console": f"{base}/host/{room.id}",
        "screen": screen,
        "obs": screen,  # the screen itself, as an OBS Browser Source (overlays: issue 24)
        "qr": f"/r/{room.id}/qr.svg",
        "poster_png": f"/studio/rooms/{room.id}/poster.png",
        "poster_pdf": f"/studio/rooms/{room.id}/poster.pdf",
    }


def starts_text(ms: int | None, lang: str, tz: str | None) -> str | None:
    """The start time as the reader reads it, in their time zone (UTC when it is not known)."""
    if ms is None:
        return None
    try:
        zone = ZoneInfo(tz) if tz else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    at = datetime.fromtimestamp(ms / 1000, zone)
    label = "" if zone.key == "UTC" else f" ({zone.key})"
    if lang == "zh-CN":
        week = WEEKDAYS_ZH[at.weekday()]
        return f"{at.year}年{at.month}月{at.day}日 星期{week} {at:%H:%M}" + ("" if label else " UTC")
    return f"{at:%a %d %b %Y, %H:%M}" + (label or " UTC")


# --- pages --------------------------------------------------------------------------------------------


async def rooms_page(request: Request) -> Response:
    """GET /studio: the rooms list (tabs scheduled / live / ended, a search box)."""
    services = _services(request)
    try:
        user = await signed_in(request)
    except Unauthorized:
        return _to_signin(request)
    try:
        listing = wire.parse_listing(request.query_params)
        found = await rooms.list_rooms(services, user, listing)
    except LivewallError as exc:
        return _error_page(request, exc)
    can_create = any(Scope.ROOM_ADMIN in MEMBER_SCOPES[r] for r in user.roles.values()) or user.account.admin
    return render(
        request,
        "studio/rooms.html",
        user=user,
        listing=listing,
        found=found,
        rooms=[wire.room_shape(r) for r in found.rooms],
        can_create=can_create,
    )


async def new_room_page(request: Request) -> Response:
    """GET /studio/rooms/new: the form; POST: create the room and go to its page."""
    services = _services(request)
    try:
        user = await signed_in(request, write=request.method == "POST")
    except Unauthorized:
        return _to_signin(request)
    orgs = sorted(o for o, r in user.roles.items() if Scope.ROOM_ADMIN in MEMBER_SCOPES[r])
    if request.method == "GET":
        return render(request, "studio/room_new.html", user=user, orgs=orgs, error=None, form={})
    form = await request.form(max_files=0, max_fields=8)
    data: dict[str, Any] = {k: form.get(k) for k in ("title", "description", "scheduled_ms", "org_id")}
    try:
        room = await rooms.do_create(services, user, data)
    except LivewallError as exc:
        status = exc.http_status
        return render(
            request, "studio/room_new.html", status_code=status, user=user, orgs=orgs, error=exc, form=data
        )
    return RedirectResponse(f"/studio/rooms/{room.id}", status_code=303)


async def room_page(request: Request) -> Response:
    """GET /studio/rooms/{room}: the schedule form, the links, the presets, the host key."""
    services = _services(request)
    try:
        user = await signed_in(request)
    except Unauthorized:
        return _to_signin(request)
    try:
        room, role = await rooms.room_role(services, user, request.path_params["room_id"])
        found = await presets.room_presets(services.db, room.id)
        products = await _products(services, room.id)
        sign_ups = await rooms.reminders(services, room.id)
    except LivewallError as exc:
        return _error_page(request, exc)
    scopes = MEMBER_SCOPES[role]
    return render(
        request,
        "studio/room.html",
        user=user,
        room=wire.room_shape(room),
        role=role,
        admin=Scope.ROOM_ADMIN in scopes,
        can_deals=Scope.DEALS in scopes,
        can_draws=Scope.DRAWS in scopes,
        links=links(services, room, public_base(request), admin=Scope.ROOM_ADMIN in scopes),
        presets=[wire.preset_shape(p) for p in found],
        products=products,
        reminders=sign_ups,
    )


async def _products(services: Services, room_id: str) -> list[dict[str, Any]]:
    return [
        {"id": p.id, "name": p.name, "price_minor": p.price_minor, "currency": p.currency}
        for p in await room_actions.room_products(services.db, room_id)
    ]


async def poster_file(request: Request) -> Response:
    """GET /studio/rooms/{room}/poster.png|pdf: the printable QR code poster (``tz``: the reader's
    time zone, for the start time)."""
    services = _services(request)
    try:
        user = await signed_in(request)
    except Unauthorized:
        return _to_signin(request)
    fmt = request.path_params["fmt"]
    try:
        if fmt not in ("png", "pdf"):
            raise NotFound("no such poster format")
        room = await rooms.studio_room(services, user, request.path_params["room_id"], Scope.READ)
    except LivewallError as exc:
        return _error_page(request, exc)
    lang = negotiate(request)
    draw = poster.poster_png if fmt == "png" else poster.poster_pdf
    work = partial(
        draw,
        title=room.title,
        url=f"{public_base(request)}/r/{room.id}",
        starts=starts_text(room.scheduled_ms, lang, request.query_params.get("tz")),
        lines=[translate(lang, "studio.poster.scan")],
        lang=lang,
    )
    try:
        data = await asyncio.wait_for(asyncio.to_thread(work), POSTER_SECS)
    except TimeoutError:
        return Response("the poster took too long to draw; try again", status_code=503)
    media = "image/png" if fmt == "png" else "application/pdf"
    name = f"livewall-{room.id}.{fmt}"
    headers = {"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"}
    return Response(data, media_type=media, headers=headers)


# --- the JSON API ---------------------------------------------------------------------------------------


async def api_rooms(request: Request) -> JSONResponse:
    """GET /api/studio/rooms: a page of the list (``status``, ``q``, ``page``); POST: create one."""
    services = _services(request)
    if request.method == "POST":
        user = await signed_in(request, write=True)
        room = await rooms.do_create(services, user, await json_body(request))
        return JSONResponse(wire.room_shape(room), status_code=201)
    user = await signed_in(request)
    found = await rooms.list_rooms(services, user, wire.parse_listing(request.query_params))
    return JSONResponse(
        {
            "rooms": [wire.room_shape(r) for r in found.rooms],
            "total": found.total,
            "page": found.page,
            "pages": found.pages,
        }
    )


async def api_room(request: Request) -> JSONResponse:
    """GET /api/studio/rooms/{room}: the room, its links and sign-ups; PATCH: change its title, start
    time or description (room:admin)."""
    services = _services(request)
    room_id = request.path_params["room_id"]
    if request.method == "PATCH":
        user = await signed_in(request, write=True)
        room = await rooms.studio_room(services, user, room_id, Scope.ROOM_ADMIN)
        room = await rooms.do_update(services, user, room, await json_body(request))
        return JSONResponse(wire.room_shape(room))
    user = await signed_in(request)
    room, role = await rooms.room_role(services, user, room_id)
    admin = Scope.ROOM_ADMIN in MEMBER_SCOPES[role]
    return JSONResponse(
        {
            **wire.room_shape(room),
            "role": role.value,
            "links": links(services, room, public_base(request), admin=admin),
            "reminders": await rooms.reminders(services, room.id),
        }
    )


async def _cover_bytes(request: Request) -> bytes:
    """The uploaded image: the body itself (an image content type) or the ``cover`` file of a
    multipart form; over the size limit it is refused unread (413)."""
    body = await read_body(request, COVER_BODY_BYTES)
    kind = request.headers.get("content-type", "")
    if not kind.startswith("multipart/form-data"):
        if len(body) > MAX_UPLOAD_BYTES:
            raise TooLarge(f"an image may be at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB")
        if not body:
            raise InvalidInput("cover: send an image")
        return body

    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.request", "body": b"", "more_body": False}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, replay).form(max_files=1, max_fields=4)
    upload = form.get("cover")
    if upload is None or isinstance(upload, str):
        raise InvalidInput("cover: send the image as the form's 'cover' file")
    data = await upload.read()
    await form.close()
    return data


async def api_cover(request: Request) -> JSONResponse:
    """PUT /api/studio/rooms/{room}/cover: a new cover image; DELETE: none (room:admin)."""
    services = _services(request)
    user = await signed_in(request, write=True)
    room = await rooms.studio_room(services, user, request.path_params["room_id"], Scope.ROOM_ADMIN)
    data = None if request.method == "DELETE" else await _cover_bytes(request)
    room = await rooms.do_cover(services, user, room, services.engines.get(rooms.Covers).intake, data)
    return JSONResponse(wire.room_shape(room))


async def api_clone(request: Request) -> JSONResponse:
    """POST /api/studio/rooms/{room}/clone: a new scheduled room like this one (room:admin)."""
    services = _services(request)
    user = await signed_in(request, write=True)
    source = await rooms.studio_room(services, user, request.path_params["room_id"], Scope.ROOM_ADMIN)
    rooms.creation_org(user, source.org_id)  # room:admin in the organisation the copy goes to
    room = await rooms.do_clone(services, user, source)
    return JSONResponse(wire.room_shape(room), status_code=201)


async def api_host_key(request: Request) -> JSONResponse:
    """POST /api/studio/rooms/{room}/host-key ``{enabled}``: allow or refuse host-key sign-in."""
    services = _services(request)
    user = await signed_in(request, write=True)
    room = await rooms.studio_room(services, user, request.path_params["room_id"], Scope.ROOM_ADMIN)
    enabled = wire.parse_enabled(await json_body(request))
    room = await rooms.do_host_key(services, user, room, enabled)
    return JSONResponse(wire.room_shape(room))


routes = [
    Route("/studio", rooms_page, methods=["GET"]),
    Route("/studio/rooms/new", new_room_page, methods=["GET", "POST"]),
    Route("/studio/rooms/{room_id}", room_page, methods=["GET"]),
    Route("/studio/rooms/{room_id}/poster.{fmt}", poster_file, methods=["GET"]),
    Route("/api/studio/rooms", api_rooms, methods=["GET", "POST"]),
    Route("/api/studio/rooms/{room_id}", api_room, methods=["GET", "PATCH"]),
    Route("/api/studio/rooms/{room_id}/cover", api_cover, methods=["PUT", "DELETE"]),
    Route("/api/studio/rooms/{room_id}/clone", api_clone, methods=["POST"]),
    Route("/api/studio/rooms/{room_id}/host-key", api_host_key, methods=["POST"]),
]
