"""The intents' wire: a shop's webhook payload parsed into a typed event (docs/shop-webhooks.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from server.errors import InvalidInput

SHOP_EVENTS = (
    "coupon.redeemed",
    "order.placed",
    "order.paid",
    "order.shipped",
    "order.delivered",
    "order.refunded",
    "order.reviewed",
    "checkout.abandoned",
)


@dataclass(frozen=True)
class ShopEvent:
    """One shop event: its type and its data, stored in the log as the shop sent it."""

    kind: str
    data: dict[str, Any]


@dataclass(frozen=True)
class ShopRefs:
    """What a shop event's data names: an order, a coupon code, a viewer (``lw_ref``), a product."""

    order_id: str | None
    coupon_code: str | None
    viewer_id: str | None
    sku: str | None


def parse_event(payload: Any) -> ShopEvent:
    if not isinstance(payload, dict) or payload.get("type") not in SHOP_EVENTS:
        raise InvalidInput(f"type must be one of {', '.join(SHOP_EVENTS)}")
    data = payload.get("data", {})
    if not isinstance(data, dict):
        raise InvalidInput("data must be an object")
    return ShopEvent(payload["type"], data)


def _text(data: Mapping[str, Any], key: str, max_chars: int = 80) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool) or not 0 < len(str(value)) <= max_chars:
        raise InvalidInput(f"data.{key} must be a string of 1 to {max_chars} characters")
    return str(value)


def parse_refs(data: Mapping[str, Any]) -> ShopRefs:
    return ShopRefs(
        order_id=_text(data, "order_id"),
        coupon_code=_text(data, "coupon_code", 24),
        viewer_id=_text(data, "viewer_id", 32),
        sku=_text(data, "sku", 64),
    )
