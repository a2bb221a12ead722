"""The questions domain: comments and questions, votes, moderation, the wall and the spotlight."""

from __future__ import annotations

from server.domain import Domain, EngineSpec
from server.questions import actions, snapshot
from server.questions.feed import Feed
from server.services import Services


def _feed(services: Services) -> Feed:
    db = services.db
    return Feed(services.hub, lambda room_id: actions.top_questions(db, room_id))


DOMAIN = Domain(
    name="questions",
    actions=actions.ACTIONS,
    snapshot=snapshot.contribute,
    personal=snapshot.PERSONAL,
    reducers=snapshot.REDUCERS,
    direct_types=actions.DIRECT_TYPES,
    engines=(EngineSpec("feed", _feed),),
)
