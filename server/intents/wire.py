"""The intents' wire: a shop's webhook payload parsed into a typed event (docs/shop-webhooks.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from server.errors import InvalidInput

# Amounts fit a signed 64-bit column (BigInteger) with room to add many of them up.
MAX_MINOR = 10**15

SHOP_EVENTS = (
    "coupon.redeemed",
    "order.placed",
    "order.paid",
    "order.shipped",
    "order.delivered",
    "order.refunded",
    "order.cancelled",
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
    src: str | None  # the ``lw_src`` of the checkout link: the source code (docs/revenue.md)


@dataclass(frozen=True)
class Money:
    """An order event's amounts, in minor units of ``currency`` (docs/revenue.md)."""

    amount_minor: int | None
    refunded_minor: int | None
    currency: str | None


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
        viewer_id=_text(data, "viewer_id", 32) or _text(data, "lw_ref", 32),
        sku=_text(data, "sku", 64),
        src=_text(data, "lw_src", 16),
    )


def _minor(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_MINOR:
        raise InvalidInput(f"data.{key} must be a whole number of minor units, 0 or more")
    return value


def parse_money(data: Mapping[str, Any]) -> Money:
    """``amount_minor``, ``refunded_minor`` (integers >= 0) and ``currency`` (ISO 4217: three
    letters, upper-cased), required together with an amount; 422 naming the field otherwise."""
    amount, refunded = _minor(data, "amount_minor"), _minor(data, "refunded_minor")
    currency = data.get("currency")
    if currency is not None:
        if (
            not isinstance(currency, str)
            or len(currency) != 3
            or not currency.isascii()
            or not currency.isalpha()
        ):
            raise InvalidInput("data.currency must be an ISO 4217 code of three letters")
        currency = currency.upper()
    elif amount is not None or refunded is not None:
        raise InvalidInput("data.currency is required with an amount (ISO 4217, three letters)")
    return Money(amount, refunded, currency)
