"""The questions domain: comments and questions, votes, moderation, the wall and the spotlight."""

from __future__ import annotations

from server.domain import Domain, EngineSpec, events_of
from server.questions import events as questions_events
from server.questions import handlers, snapshot, wire
from server.questions.feed import Feed
from server.services import Services


def _feed(services: Services) -> Feed:
    db = services.db
    return Feed(services.hub, lambda room_id: snapshot.top(db, room_id))


DOMAIN = Domain(
    name="questions",
    events=events_of(questions_events),
    actions=handlers.ACTIONS,
    snapshot=snapshot.contribute,
    personal=snapshot.PERSONAL,
    reducers=snapshot.REDUCERS,
    direct_types=wire.DIRECT_TYPES,
    engines=(EngineSpec("feed", _feed),),
)
