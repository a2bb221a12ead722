"""Pure rules of time-limited discounts: validation, pricing, phases and the allocation of units.

``allocate`` is the one statement of who gets a unit. The embedded backend runs it inside one
transaction; the Redis backend runs the same logic in one Lua script (``stock.py``); a property test
holds both to it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from server.errors import Conflict, InvalidInput

AUDIENCES = ("everyone", "watchers", "followers", "askers")
# TikTok's flash deals run 10-300 s; coupons for a whole show run longer. A day bounds both.
MIN_DURATION_SECS = 10
MAX_DURATION_SECS = 24 * 3600
MAX_START_DELAY_SECS = 3600
MAX_QUANTITY = 100_000
MAX_PER_VIEWER = 100
MAX_WATCH_MINUTES = 600
# A claim holds its unit this long unless the shop reports it redeemed (SHOPLINE's inventory lock
# defaults to minutes, not hours: an unpaid unit should return while the stream is still on).
DEFAULT_HOLD_SECS = 900
MIN_HOLD_SECS = 30
MAX_HOLD_SECS = 24 * 3600
MAX_PRICE_MINOR = 10**10  # 100 million in major units: anything larger is a typo
# Coupon codes: no 0/O/1/I/L, so a code read aloud or off a screen is typed right.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_GROUP = 4


class Outcome(StrEnum):
    """What one claim request got; the values are the wire error codes."""

    OK = "ok"
    NOT_STARTED = "not_started"
    ENDED = "discount_ended"
    SOLD_OUT = "sold_out"
    LIMIT = "limit_reached"


OUTCOME_MESSAGES = {
    Outcome.NOT_STARTED: "this discount has not started yet",
    Outcome.ENDED: "this discount has ended",
    Outcome.SOLD_OUT: "sold out: no unit left right now",
    Outcome.LIMIT: "you already hold as many units of this discount as it allows",
}


@dataclass(frozen=True)
class StockState:
    """The counters that decide claims, as one atomic step sees them."""

    quantity: int
    claimed: int
    per_viewer_limit: int
    starts_ms: int
    ends_ms: int
    stopped: bool

    @property
    def remaining(self) -> int:
        return max(0, self.quantity - self.claimed)


def decide(state: StockState, held: int, t_ms: int) -> Outcome:
    """One viewer's claim received at ``t_ms``, who already holds ``held`` units."""
    if state.stopped or t_ms >= state.ends_ms:
        return Outcome.ENDED
    if t_ms < state.starts_ms:
        return Outcome.NOT_STARTED
    if state.claimed >= state.quantity:
        return Outcome.SOLD_OUT
    if held >= state.per_viewer_limit:
        return Outcome.LIMIT
    return Outcome.OK


def allocate(
    state: StockState, held: Mapping[str, int], requests: Sequence[tuple[str, int]]
) -> tuple[list[Outcome], int]:
    """Decide a batch of claims ``(viewer_id, received_ms)`` in order: (outcomes, claimed after).

    Never more than ``quantity`` units in all, never more than ``per_viewer_limit`` per viewer.
    """
    counts = dict(held)
    claimed = state.claimed
    outcomes: list[Outcome] = []
    for viewer_id, t_ms in requests:
        current = StockState(
            state.quantity, claimed, state.per_viewer_limit, state.starts_ms, state.ends_ms, state.stopped
        )
        outcome = decide(current, counts.get(viewer_id, 0), t_ms)
        if outcome is Outcome.OK:
            claimed += 1
            counts[viewer_id] = counts.get(viewer_id, 0) + 1
        outcomes.append(outcome)
    return outcomes, claimed


def phase(status: str, quantity: int, claimed: int, starts_ms: int, ends_ms: int, t_ms: int) -> str:
    """The status a discount should show at ``t_ms`` (``ended`` is final once stored)."""
    if status == "ended" or t_ms >= ends_ms:
        return "ended"
    if t_ms < starts_ms:
        return "scheduled"
    return "sold_out" if claimed >= quantity else "live"


# --- validation ---------------------------------------------------------------------------------


def _int(data: Mapping[str, Any], key: str, low: int, high: int, default: int | None = None) -> int:
    value = data.get(key, default)
    if value is None:
        raise InvalidInput(f"{key} is required")
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"{key} must be a whole number")
    if not low <= value <= high:
        raise InvalidInput(f"{key} must be between {low:,} and {high:,}")
    return value


@dataclass(frozen=True)
class Price:
    price_minor: int
    percent_off: int | None


def clean_price(data: Mapping[str, Any], list_price_minor: int) -> Price:
    """The deal price from ``price_minor`` or ``percent_off`` (exactly one), never above list price."""
    has_price, has_percent = data.get("price_minor") is not None, data.get("percent_off") is not None
    if has_price == has_percent:
        raise InvalidInput("give the deal price as price_minor or percent_off (one of them)")
    if has_percent:
        percent = _int(data, "percent_off", 1, 99)
        # Round half up to the minor unit: 30% off 9.99 is 6.99 (699.3 -> 699).
        return Price((list_price_minor * (100 - percent) + 50) // 100, percent)
    price = _int(data, "price_minor", 0, MAX_PRICE_MINOR)
    if price > list_price_minor:
        raise InvalidInput("the deal price must not be above the list price")
    return Price(price, None)


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


def clean_launch(data: Mapping[str, Any], list_price_minor: int) -> Launch:
    audience = data.get("audience", "everyone")
    if audience not in AUDIENCES:
        raise InvalidInput(f"audience must be one of {', '.join(AUDIENCES)}")
    watch = _int(data, "watch_minutes", 1, MAX_WATCH_MINUTES) if audience == "watchers" else None
    return Launch(
        product_id=_int(data, "product_id", 1, 2**62),
        price=clean_price(data, list_price_minor),
        quantity=_int(data, "quantity", 1, MAX_QUANTITY),
        duration_secs=_int(data, "duration_secs", MIN_DURATION_SECS, MAX_DURATION_SECS),
        per_viewer_limit=_int(data, "per_viewer_limit", 1, MAX_PER_VIEWER, 1),
        audience=audience,
        watch_minutes=watch,
        hold_secs=_int(data, "hold_secs", MIN_HOLD_SECS, MAX_HOLD_SECS, DEFAULT_HOLD_SECS),
        starts_in_secs=_int(data, "starts_in_secs", 0, MAX_START_DELAY_SECS, 0),
    )


@dataclass(frozen=True)
class Change:
    """A validated discount.update."""

    extend_secs: int
    add_stock: int
    price: Price | None


def clean_change(data: Mapping[str, Any], list_price_minor: int) -> Change:
    unknown = set(data) - {"id", "extend_secs", "add_stock", "price_minor", "percent_off"}
    if unknown:
        raise InvalidInput(f"unknown fields: {', '.join(sorted(unknown))}")
    extend = _int(data, "extend_secs", -MAX_START_DELAY_SECS, MAX_DURATION_SECS, 0)
    add = _int(data, "add_stock", 1, MAX_QUANTITY) if "add_stock" in data else 0
    price = None
    if data.get("price_minor") is not None or data.get("percent_off") is not None:
        price = clean_price(data, list_price_minor)
    if not extend and not add and price is None:
        raise InvalidInput("nothing to change: give extend_secs, add_stock, price_minor or percent_off")
    return Change(extend, add, price)


def check_changeable(status: str, ends_ms: int, t_ms: int) -> None:
    if status == "ended" or t_ms >= ends_ms:
        raise Conflict("this discount has ended; launch a new one", code="bad_state")


def new_end(starts_ms: int, ends_ms: int, extend_secs: int, t_ms: int) -> int:
    """The end after moving it by ``extend_secs``: never before now plus the minimum duration."""
    end = ends_ms + extend_secs * 1000
    floor = max(starts_ms, t_ms) + MIN_DURATION_SECS * 1000
    if end < floor:
        raise InvalidInput(f"the discount must keep at least {MIN_DURATION_SECS} s to run")
    if end - starts_ms > MAX_DURATION_SECS * 1000:
        raise InvalidInput("a discount runs at most a day")
    return end


# --- codes and links ----------------------------------------------------------------------------


def new_code() -> str:
    """A coupon code like ``LW-7KQ2-M9XD`` (40 bits from the OS CSPRNG)."""
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(2 * CODE_GROUP))
    return f"LW-{chars[:CODE_GROUP]}-{chars[CODE_GROUP:]}"


def checkout_url(shop_url: str | None, code: str | None, viewer_id: str | None) -> str | None:
    """The shop link with the coupon code (``coupon``) and who came from the stream (``lw_ref``)."""
    if not shop_url:
        return None
    parts = urlsplit(shop_url)
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("coupon", "lw_ref")
    ]
    if code:
        query.append(("coupon", code))
    if viewer_id:
        query.append(("lw_ref", viewer_id))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
