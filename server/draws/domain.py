"""The draws domain: verifiable lucky draws, shake races, winners' claims."""

from __future__ import annotations

from server.domain import Domain, EngineSpec, Hooks, events_of
from server.draws import actions, handlers, http, snapshot, wire
from server.draws import events as draws_events
from server.draws.engine import DrawEngine
from server.services import Services


def _engine(services: Services) -> DrawEngine:
    db, hub = services.db, services.hub
    # The clock closes entry windows the way the host's draw.close does.
    return DrawEngine(db, hub, lambda d, t: actions.freeze(db, hub, d, t))


DOMAIN = Domain(
    name="draws",
    events=events_of(draws_events),
    actions=handlers.ACTIONS,
    routes=http.routes,
    snapshot=snapshot.contribute,
    personal=snapshot.PERSONAL,
    reducers=snapshot.REDUCERS,
    direct_types=wire.DIRECT_TYPES,
    engines=(EngineSpec("draws", _engine),),
    # A keyword draw enters whoever comments its keyword.
    hooks=Hooks(on_item=actions.on_item),
)
