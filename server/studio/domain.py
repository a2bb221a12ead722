"""The studio domain: rooms prepared, scheduled, cloned and announced from the web; presets launched
from the console; go-live reminders; posters; the audit log's pages. Wired last: it uses the rooms,
products, discounts, draws and follow-up domains."""

from __future__ import annotations

from starlette.routing import BaseRoute

from server.domain import Domain, EngineSpec, Hooks
from server.media import routes as media_routes
from server.studio import audit_http, handlers, presets_http, reminders, rooms, rooms_http, sources

# Each part of the studio adds its routes and actions here.
ROUTES: list[BaseRoute] = [
    *reminders.routes,
    *audit_http.routes,
    *rooms_http.routes,
    *presets_http.routes,
    *sources.routes,
    *media_routes,
]
ACTIONS = handlers.ACTIONS

DOMAIN = Domain(
    name="studio",
    routes=ROUTES,
    actions=ACTIONS,
    engines=(EngineSpec("go-live reminders", reminders.build), EngineSpec("studio covers", rooms.Covers)),
    hooks=Hooks(on_live=reminders.on_live),
)
