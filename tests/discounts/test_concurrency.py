"""Thousands of claims from many connections: exactly min(stock, demand) succeed."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select

from server.storage.models import Claim
from tests.discounts.rush import rush
from tests.helpers import Running, setup_room

VIEWERS = 150
CLAIMS_EACH = 15  # inside the per-connection burst allowance (20)
UNITS = 180
LIMIT = 2


async def test_rush_grants_exactly_the_stock(running: Running) -> None:
    """2,250 claims from 150 connections for 180 units, at most 2 each: exactly 180 granted, nobody
    over the limit, every code unique, and the database holds exactly those claims."""
    room, host, screen, _, _ = await setup_room(running, viewers=0)
    product = (await host.request("product.save", {"name": "Rush", "price_minor": 1000}))["data"]["result"]
    deal = await host.request(
        "discount.launch",
        {"product_id": product["id"], "percent_off": 50, "quantity": UNITS, "duration_secs": 600,
         "per_viewer_limit": LIMIT},
    )  # fmt: skip
    discount_id = deal["data"]["result"]["id"]
    result = await rush(
        [(running.base, running.ws)], room["id"], discount_id, viewers=VIEWERS, claims_each=CLAIMS_EACH
    )
    assert sum(result.granted.values()) == min(UNITS, VIEWERS * LIMIT)
    assert max(result.granted.values()) <= LIMIT
    assert len(set(result.codes)) == len(result.codes)
    assert set(result.refused) <= {"sold_out", "limit_reached"}
    assert sum(result.refused.values()) == VIEWERS * CLAIMS_EACH - UNITS
    async with running.app.state.services.db.session() as session:
        stored = (
            await session.exec(
                select(func.count())
                .select_from(Claim)
                .where(Claim.discount_id == discount_id, col(Claim.status) == "reserved")
            )
        ).one()
    assert stored == UNITS
    while True:
        tick = await screen.recv_type("stock")
        counts = tick["data"]["counts"][str(discount_id)]
        if counts["remaining"] == 0:
            break
    assert counts["claimed"] == UNITS and counts["status"] == "sold_out"
