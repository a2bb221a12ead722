"""Events of the intent log."""

from __future__ import annotations

from dataclasses import dataclass

from server.realtime.protocol import Event


@dataclass(frozen=True)
class SalesChanged(Event):
    """The funnel per product (distinct viewers) and the follower count (hosts only)."""

    type = "sales"
    audiences = ("host",)
    products: dict[str, dict[str, int]]
    followers: int
