"""Events of discounts. A change of rules travels whole (``discount``); the counters of a rush
travel in 100 ms ticks (``stock``), each figure with its version so the newest always wins."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.realtime.protocol import Event


@dataclass(frozen=True)
class DiscountChanged(Event):
    """A discount started, changed (price, stock, end), sold out, came back or ended: all of it."""

    type = "discount"
    discount: dict[str, Any]

    def payload(self, audience: str) -> dict[str, Any]:
        return self.discount


@dataclass(frozen=True)
class StockTick(Event):
    """One tick of claiming: ``{discount id: {claimed, remaining, status, v}}``."""

    type = "stock"
    counts: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class ClaimsTick(Event):
    """New or changed claims of one tick (hosts only: who claimed, with which code)."""

    type = "claims"
    audiences = ("host",)
    claims: list[dict[str, Any]] = field(default_factory=list)
