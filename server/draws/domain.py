"""The draws domain: verifiable lucky draws, shake races, winners' claims."""

from __future__ import annotations

from server.domain import Domain, EngineSpec, Hooks
from server.draws import actions, http, snapshot
from server.draws.actions import DrawEngine
from server.services import Services


def _engine(services: Services) -> DrawEngine:
    return DrawEngine(services.db, services.hub)


DOMAIN = Domain(
    name="draws",
    actions=actions.ACTIONS,
    routes=http.routes,
    snapshot=snapshot.contribute,
    personal=snapshot.PERSONAL,
    reducers=snapshot.REDUCERS,
    direct_types=actions.DIRECT_TYPES,
    engines=(EngineSpec("draws", _engine),),
    # A keyword draw enters whoever comments its keyword.
    hooks=Hooks(on_item=actions.on_item),
)
