"""Events of the product shelf."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.realtime.protocol import Event


@dataclass(frozen=True)
class ProductsChanged(Event):
    """The shelf changed (a product added, edited, removed or imported): the whole shelf."""

    type = "products"
    products: list[dict[str, Any]]


@dataclass(frozen=True)
class PinChanged(Event):
    """The host pinned a product (shown as a card on phones and the big screen), or unpinned."""

    type = "pinned"
    product_id: int | None
    pinned_ms: int | None
