"""The intents domain: the log of purchase signals (the follow-up's input) and the hosts' sales board."""

from __future__ import annotations

from server.domain import Domain, EngineSpec, Hooks, events_of
from server.intents import events as intents_events
from server.intents.log import SalesBoard
from server.services import Services


def _board(services: Services) -> SalesBoard:
    hooks = services.registry.intent_hooks

    def recorded() -> None:
        for hook in hooks:
            hook(services)

    return SalesBoard(services.db, services.hub, on_record=recorded if hooks else None)


def _follow(services: Services, room_id: str) -> None:
    """The follower count changed: the board publishes the room's funnel at its next tick."""
    services.engines.get(SalesBoard).touch(room_id)


DOMAIN = Domain(
    name="intents",
    events=events_of(intents_events),
    engines=(EngineSpec("sales board", _board),),
    hooks=Hooks(on_follow=_follow),
)
