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

from server.errors import Conflict, Forbidden, InvalidInput

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


# --- audiences ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """What is known of a viewer in the room, for a discount's audience (only the fact the audience
    asks about is read: ``fact_for``)."""

    following: bool = False
    joined_ms: int | None = None  # when they first joined the room
    asked: bool = False  # a comment or question of theirs names the discount's product


def fact_for(audience: str) -> str | None:
    """The one ``Standing`` field that decides ``audience`` (None: nothing to read)."""
    return {"followers": "following", "watchers": "joined_ms", "askers": "asked"}.get(audience)


def check_audience(audience: str, watch_minutes: int | None, standing: Standing, t_ms: int) -> None:
    """Refuse (not_eligible) a viewer outside the discount's audience: everyone, followers, watchers
    of ``watch_minutes`` or more, or viewers who asked about the product."""
    if audience == "followers" and not standing.following:
        raise Forbidden("this discount is for followers of the room: follow to claim", code="not_eligible")
    if audience == "watchers":
        need = (watch_minutes or 0) * 60_000
        if standing.joined_ms is None or t_ms - standing.joined_ms < need:
            raise Forbidden(
                f"this discount is for viewers watching at least {watch_minutes} minutes", code="not_eligible"
            )
    if audience == "askers" and not standing.asked:
        raise Forbidden("this discount is for viewers who asked about the product", code="not_eligible")


# --- prices and changes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    price_minor: int
    percent_off: int | None


def percent_price(list_price_minor: int, percent_off: int) -> Price:
    """The deal price at ``percent_off`` (1-99) off the list price."""
    # Round half up to the minor unit: 30% off 9.99 is 6.99 (699.3 -> 699).
    return Price((list_price_minor * (100 - percent_off) + 50) // 100, percent_off)


def fixed_price(list_price_minor: int, price_minor: int) -> Price:
    """A deal price given as such: never above the list price."""
    if price_minor > list_price_minor:
        raise InvalidInput("the deal price must not be above the list price")
    return Price(price_minor, None)


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


# --- codes ----------------------------------------------------------------------------


def new_code() -> str:
    """A coupon code like ``LW-7KQ2-M9XD`` (40 bits from the OS CSPRNG)."""
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(2 * CODE_GROUP))
    return f"LW-{chars[:CODE_GROUP]}-{chars[CODE_GROUP:]}"
