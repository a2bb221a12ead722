"""The rooms domain: going live and ending, announcements, names, presence, host logins."""

from __future__ import annotations

from server.config import Settings
from server.domain import Domain, EngineSpec, events_of
from server.rooms import events as rooms_events
from server.rooms import handlers, http
from server.rooms.access import Access
from server.services import Services
from server.throttle import failures_from_url


def _access(services: Services) -> Access:
    settings: Settings = services.settings
    return Access(services.db, services.hub, failures_from_url(settings.redis_url))


DOMAIN = Domain(
    name="rooms",
    events=events_of(rooms_events),
    actions=handlers.ACTIONS,
    routes=http.routes,
    engines=(EngineSpec("access", _access),),
)
