"""The documented HTTP API (docs/api.md): join as a viewer, host tokens, room info and host actions."""

from __future__ import annotations

import asyncio

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.accounts.audit import audit_http
from server.auth import Scope
from server.errors import InvalidInput, NotFound
from server.httputil import check_origin, client_address, json_body
from server.i18n import LOCALES, negotiate
from server.questions import export as questions
from server.rooms import access, actions, wire
from server.rooms.identity import require_host, returning_viewer, set_viewer_cookie
from server.services import Services


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def join(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/join {name?, lang?, src?}: become (or stay) a viewer; returns a viewer
    token. ``lang`` is the language the phone shows (messages to the viewer are written in it);
    ``src`` the entry link's source code (docs/revenue.md; an unknown one is ignored)."""
    services = _services(request)
    check_origin(request, services.settings.allowed_origins, services.settings.public_url)
    room_id = request.path_params["room_id"]
    body = await json_body(request)
    viewer_id = returning_viewer(services, request, body.get("token"))
    lang = body.get("lang")
    if lang is not None and lang not in LOCALES:
        raise InvalidInput(f"lang must be one of {', '.join(LOCALES)} (the language the phone shows)")
    viewer = await actions.do_join(
        services,
        room_id,
        viewer_id,
        body.get("name"),
        locale=lang,
        first_locale=negotiate(request),
        src=body.get("src"),
    )
    token = services.tokens.viewer(viewer.id)
    response = JSONResponse(
        {"room": room_id, "viewer_id": viewer.id, "name": viewer.display_name, "token": token}
    )
    set_viewer_cookie(services, response, token)
    return response


async def host_token(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/host-token {key}: exchange the host key for a host token."""
    services = _services(request)
    body = await json_body(request)
    token = await access.check_host_key(
        services, request.path_params["room_id"], body.get("key"), client_address(request)
    )
    return JSONResponse({"token": token})


async def room_info(request: Request) -> JSONResponse:
    """GET /api/rooms/{room}: public facts about a room."""
    services = _services(request)
    room = await actions.load_room(services.db, request.path_params["room_id"])
    viewers = await services.hub.backend.presence_total(room.id)
    return JSONResponse(
        {
            "id": room.id,
            "title": room.title,
            "status": room.status,
            "viewers": viewers,
            "peak": max(viewers, room.peak_viewers),
        }
    )


async def announce(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/announcements {text} (host)."""
    principal = await require_host(request, Scope.SHOW)
    body = await json_body(request)
    item = await actions.do_announce(_services(request), principal.room_id, wire.parse_announce(body))
    audit_http(_services(request), principal, "announce", "show", {"text": item.text}, f"id={item.id}")
    return JSONResponse(wire.announcement_shape(item), status_code=201)


async def start(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/start (host)."""
    principal = await require_host(request, Scope.SHOW)
    room = await actions.do_start(_services(request), principal.room_id)
    audit_http(_services(request), principal, "room.start", "show")
    return JSONResponse({"status": room.status})


async def end(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/end (host)."""
    principal = await require_host(request, Scope.SHOW)
    room = await actions.do_end(_services(request), principal.room_id)
    audit_http(_services(request), principal, "room.end", "show")
    return JSONResponse({"status": room.status})


async def export(request: Request) -> Response:
    """GET /api/rooms/{room}/export.json|csv (host): every item, vote, answer and moderation action."""
    if request.path_params["fmt"] not in ("json", "csv"):
        raise NotFound("export formats: export.json, export.csv")
    principal = await require_host(request, Scope.REPORTS, cookie=True, csrf=False)
    data = await questions.export(_services(request).db, principal.room_id)
    fmt = request.path_params["fmt"]
    filename = f"livewall-{principal.room_id}.{fmt}"
    headers = {"content-disposition": f'attachment; filename="{filename}"', "cache-control": "no-store"}
    # A big room's export is a lot of Python (a third of a second for 50,000 questions): the CSV is
    # built in a thread, which lets the event loop in every few milliseconds, and the JSON by orjson
    # (a tenth of the time of json.dumps, whose C loop would hold the GIL, thread or not).
    if fmt == "csv":
        # A BOM so that spreadsheet programs read the Chinese text as UTF-8.
        body = "\ufeff" + await asyncio.to_thread(questions.export_csv, data)
        return Response(body, media_type="text/csv; charset=utf-8", headers=headers)
    return Response(orjson.dumps(data), media_type="application/json", headers=headers)


routes = [
    Route("/api/rooms/{room_id}", room_info, methods=["GET"]),
    Route("/api/rooms/{room_id}/join", join, methods=["POST"]),
    Route("/api/rooms/{room_id}/host-token", host_token, methods=["POST"]),
    Route("/api/rooms/{room_id}/announcements", announce, methods=["POST"]),
    Route("/api/rooms/{room_id}/start", start, methods=["POST"]),
    Route("/api/rooms/{room_id}/end", end, methods=["POST"]),
    Route("/api/rooms/{room_id}/export.{fmt}", export, methods=["GET"]),
]
