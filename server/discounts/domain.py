"""The discounts domain: time-limited deals with exact stock, claims and coupons."""

from __future__ import annotations

from server.discounts import events as discounts_events
from server.discounts import handlers, snapshot, wire
from server.discounts.engine import Engine
from server.discounts.stock import make_stock
from server.domain import Domain, EngineSpec, Hooks, events_of
from server.intents.log import SalesBoard
from server.services import Services
from server.storage.models import Claim, Discount


def _engine(services: Services) -> Engine:
    return Engine(
        services.db,
        services.hub,
        make_stock(services.db, services.hub.backend),
        board=services.engines.find(SalesBoard),
    )


async def _redeemed(services: Services, claim: Claim, d: Discount) -> None:
    """The shop redeemed the claim's coupon: its viewer and the hosts are told."""
    await services.engines.get(Engine).announce_claim(claim, d)


DOMAIN = Domain(
    name="discounts",
    events=events_of(discounts_events),
    actions=handlers.ACTIONS,
    snapshot=snapshot.contribute,
    personal=snapshot.PERSONAL,
    reducers=snapshot.REDUCERS,
    direct_types=wire.DIRECT_TYPES,
    engines=(EngineSpec("discount engine", _engine),),
    hooks=Hooks(on_claim_redeemed=_redeemed),
)
