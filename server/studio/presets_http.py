"""Presets over HTTP: prepared in the studio (``/api/studio/rooms/{room}/presets``: discount presets
need deals:run, draw presets draws:run) and listed for the console (``/api/rooms/{room}/presets``,
on the console's session), which launches them over the WebSocket (server/studio/handlers.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.auth import Scope
from server.errors import InvalidInput
from server.httputil import json_body
from server.rooms.identity import require_host
from server.services import Services
from server.studio import presets, rooms
from server.studio import rooms_wire as wire
from server.studio.rooms_http import signed_in


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _preset_id(request: Request) -> int:
    raw = request.path_params["preset_id"]
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 2**62:
        raise InvalidInput("preset id must be a positive whole number")
    return int(raw)


async def api_presets(request: Request) -> JSONResponse:
    """GET /api/studio/rooms/{room}/presets: the room's presets (any role); POST: a new one."""
    services = _services(request)
    user = await signed_in(request, write=request.method == "POST")
    room, role = await rooms.room_role(services, user, request.path_params["room_id"])
    if request.method == "POST":
        preset = await presets.do_save(services, user, room, role, await json_body(request))
        return JSONResponse(wire.preset_shape(preset), status_code=201)
    found = await presets.room_presets(services.db, room.id)
    return JSONResponse({"presets": [wire.preset_shape(p) for p in found]})


async def api_preset(request: Request) -> JSONResponse:
    """PUT /api/studio/rooms/{room}/presets/{id}: change its label and payload; DELETE: remove it."""
    services = _services(request)
    user = await signed_in(request, write=True)
    room, role = await rooms.room_role(services, user, request.path_params["room_id"])
    preset_id = _preset_id(request)
    if request.method == "DELETE":
        await presets.do_delete(services, user, room, role, preset_id)
        return JSONResponse({"ok": True})
    preset = await presets.do_save(services, user, room, role, await json_body(request), preset_id)
    return JSONResponse(wire.preset_shape(preset))


async def console_presets(request: Request) -> JSONResponse:
    """GET /api/rooms/{room}/presets (console): the presets, for the deals and draws tabs."""
    services = _services(request)
    principal = await require_host(request, Scope.READ, cookie=True, csrf=False)
    found = await presets.room_presets(services.db, principal.room_id)
    return JSONResponse({"presets": [wire.preset_shape(p) for p in found]})


routes = [
    Route("/api/studio/rooms/{room_id}/presets", api_presets, methods=["GET", "POST"]),
    Route("/api/studio/rooms/{room_id}/presets/{preset_id}", api_preset, methods=["PUT", "DELETE"]),
    Route("/api/rooms/{room_id}/presets", console_presets, methods=["GET"]),
]
