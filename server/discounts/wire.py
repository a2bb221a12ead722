"""The discounts' wire: client data parsed into typed commands, and discounts and claims shaped into
the dicts every surface receives (the only raw dicts of this domain)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from server.discounts import rules
from server.discounts.rules import Price
from server.discounts.stock import Counts
from server.errors import InvalidInput
from server.products.rules import checkout_url, currency_digits
from server.storage import now_ms
from server.storage.models import Claim, Discount, Product
from server.text import clean_id

# Direct (unsequenced) frames this domain sends, with their one-line docs.
DIRECT_TYPES = {"claim": "one of the viewer's claims changed (expired, released, redeemed)"}

# --- commands -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Launch:
    """A validated discount.launch."""

    product_id: int
    price: Price
    quantity: int
    duration_secs: int
    per_viewer_limit: int
    audience: str
    watch_minutes: int | None
    hold_secs: int
    starts_in_secs: int


@dataclass(frozen=True)
class Change:
    """A validated discount.update."""

    extend_secs: int
    add_stock: int
    price: Price | None


@dataclass(frozen=True)
class DiscountView:
    """A discount with the live counters it was published with (``t_ms``: the time they were read)."""

    discount: Discount
    counts: Counts
    t_ms: int


@dataclass(frozen=True)
class ClaimView:
    """A claim as its viewer sees it, with its product (None if the product is gone)."""

    claim: Claim
    product: Product | None


@dataclass(frozen=True)
class HostClaim:
    """A claim as the hosts see it, as it was when it changed (``name`` is read when it is told)."""

    id: int | None
    discount_id: int
    product_id: int
    viewer_id: str
    name: str | None
    code: str
    status: str
    created_ms: int

    @classmethod
    def of(cls, claim: Claim, name: str | None, product_id: int) -> HostClaim:
        return cls(
            claim.id,
            claim.discount_id,
            product_id,
            claim.viewer_id,
            name,
            claim.code,
            claim.status,
            claim.created_ms,
        )

    def named(self, name: str | None) -> HostClaim:
        return replace(self, name=name)


def _int(data: Mapping[str, Any], key: str, low: int, high: int, default: int | None = None) -> int:
    value = data.get(key, default)
    if value is None:
        raise InvalidInput(f"{key} is required")
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"{key} must be a whole number")
    if not low <= value <= high:
        raise InvalidInput(f"{key} must be between {low:,} and {high:,}")
    return value


def parse_ref(data: Mapping[str, Any]) -> int:
    """The ``id`` of the discount (or claim) a message is about."""
    return clean_id(data.get("id"))


def parse_price(data: Mapping[str, Any], list_price_minor: int) -> Price:
    """The deal price from ``price_minor`` or ``percent_off`` (exactly one), never above list price."""
    has_price, has_percent = data.get("price_minor") is not None, data.get("percent_off") is not None
    if has_price == has_percent:
        raise InvalidInput("give the deal price as price_minor or percent_off (one of them)")
    if has_percent:
        return rules.percent_price(list_price_minor, _int(data, "percent_off", 1, 99))
    return rules.fixed_price(list_price_minor, _int(data, "price_minor", 0, rules.MAX_PRICE_MINOR))


def parse_launch(data: Mapping[str, Any], list_price_minor: int) -> Launch:
    """A discount.launch on a product of this list price."""
    audience = data.get("audience", "everyone")
    if audience not in rules.AUDIENCES:
        raise InvalidInput(f"audience must be one of {', '.join(rules.AUDIENCES)}")
    watch = _int(data, "watch_minutes", 1, rules.MAX_WATCH_MINUTES) if audience == "watchers" else None
    return Launch(
        product_id=_int(data, "product_id", 1, 2**62),
        price=parse_price(data, list_price_minor),
        quantity=_int(data, "quantity", 1, rules.MAX_QUANTITY),
        duration_secs=_int(data, "duration_secs", rules.MIN_DURATION_SECS, rules.MAX_DURATION_SECS),
        per_viewer_limit=_int(data, "per_viewer_limit", 1, rules.MAX_PER_VIEWER, 1),
        audience=audience,
        watch_minutes=watch,
        hold_secs=_int(data, "hold_secs", rules.MIN_HOLD_SECS, rules.MAX_HOLD_SECS, rules.DEFAULT_HOLD_SECS),
        starts_in_secs=_int(data, "starts_in_secs", 0, rules.MAX_START_DELAY_SECS, 0),
    )


def parse_change(data: Mapping[str, Any], list_price_minor: int) -> Change:
    """A discount.update of a discount with this list price."""
    unknown = set(data) - {"id", "extend_secs", "add_stock", "price_minor", "percent_off"}
    if unknown:
        raise InvalidInput(f"unknown fields: {', '.join(sorted(unknown))}")
    extend = _int(data, "extend_secs", -rules.MAX_START_DELAY_SECS, rules.MAX_DURATION_SECS, 0)
    add = _int(data, "add_stock", 1, rules.MAX_QUANTITY) if "add_stock" in data else 0
    price = None
    if data.get("price_minor") is not None or data.get("percent_off") is not None:
        price = parse_price(data, list_price_minor)
    if not extend and not add and price is None:
        raise InvalidInput("nothing to change: give extend_secs, add_stock, price_minor or percent_off")
    return Change(extend, add, price)


# --- shapes -------------------------------------------------------------------------------------


def discount_shape(d: Discount, c: Counts, t_ms: int | None = None) -> dict[str, Any]:
    """A discount as every surface sees it, with its live counters."""
    t = now_ms() if t_ms is None else t_ms
    stored = "ended" if c.stopped or d.status == "ended" else d.status
    return {
        "id": d.id,
        "product_id": d.product_id,
        "price_minor": d.price_minor,
        "list_price_minor": d.list_price_minor,
        "percent_off": d.percent_off,
        "currency": d.currency,
        "digits": currency_digits(d.currency),
        "quantity": c.quantity,
        "claimed": c.claimed,
        "remaining": c.remaining,
        "per_viewer_limit": d.per_viewer_limit,
        "audience": d.audience,
        "watch_minutes": d.watch_minutes,
        "hold_secs": d.hold_secs,
        "starts_ms": c.starts_ms,
        "ends_ms": c.ends_ms,
        "status": rules.phase(stored, c.quantity, c.claimed, c.starts_ms, c.ends_ms, t),
        "end_reason": d.end_reason,
        "ended_ms": d.ended_ms,
        "created_ms": d.created_ms,
        "v": c.version,
    }


def discount_view_shape(view: DiscountView) -> dict[str, Any]:
    return discount_shape(view.discount, view.counts, view.t_ms)


def counts_shape(c: Counts, t_ms: int) -> dict[str, Any]:
    """One discount's figures in a ``stock`` tick."""
    stored = "ended" if c.stopped else "live"
    status = rules.phase(stored, c.quantity, c.claimed, c.starts_ms, c.ends_ms, t_ms)
    return {
        "claimed": c.claimed,
        "remaining": c.remaining,
        "quantity": c.quantity,
        "status": status,
        "v": c.version,
    }


def stock_shape(counts: Mapping[int, Counts], t_ms: int) -> dict[str, dict[str, Any]]:
    """A ``stock`` tick's figures, by discount id."""
    return {str(discount_id): counts_shape(c, t_ms) for discount_id, c in counts.items()}


def claim_shape(claim: Claim, product: Product | None) -> dict[str, Any]:
    """A claim as its viewer sees it: the code and the checkout link."""
    return {
        "id": claim.id,
        "discount_id": claim.discount_id,
        "product_id": product.id if product is not None else None,
        "code": claim.code,
        "checkout_url": checkout_url(
            product.shop_url if product else None, claim.code, claim.viewer_id, claim.ref
        )
        if claim.status in ("reserved", "redeemed")
        else None,
        "status": claim.status,
        "price_minor": claim.price_minor,
        "currency": product.currency if product is not None else None,
        "digits": currency_digits(product.currency) if product is not None else None,
        "created_ms": claim.created_ms,
        "expires_ms": claim.expires_ms,
    }


def claim_view_shape(view: ClaimView) -> dict[str, Any]:
    return claim_shape(view.claim, view.product)


def host_claim_shape(claim: HostClaim) -> dict[str, Any]:
    """A claim as the hosts see it: who claimed, with which code."""
    return {
        "id": claim.id,
        "discount_id": claim.discount_id,
        "product_id": claim.product_id,
        "viewer_id": claim.viewer_id,
        "name": claim.name,
        "code": claim.code,
        "status": claim.status,
        "created_ms": claim.created_ms,
    }
