"""Pure discount rules: who gets a unit, prices, windows, codes and links."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.discounts import rules, wire
from server.discounts.rules import Outcome, Standing, StockState
from server.errors import Conflict, Forbidden, InvalidInput
from server.products import rules as product_rules

LIVE = StockState(quantity=3, claimed=0, per_viewer_limit=1, starts_ms=1000, ends_ms=2000, stopped=False)


def test_decide_checks_end_then_start_then_stock_then_limit() -> None:
    """The order of refusals is fixed: ended, not started, sold out, per-viewer limit."""
    assert rules.decide(LIVE, 0, 1500) is Outcome.OK
    assert rules.decide(LIVE, 0, 999) is Outcome.NOT_STARTED
    assert rules.decide(LIVE, 5, 2000) is Outcome.ENDED
    full = StockState(3, 3, 1, 1000, 2000, False)
    assert rules.decide(full, 1, 1500) is Outcome.SOLD_OUT
    assert rules.decide(LIVE, 1, 1500) is Outcome.LIMIT
    assert rules.decide(StockState(3, 0, 1, 1000, 2000, True), 0, 1500) is Outcome.ENDED


def test_one_millisecond_late_is_refused() -> None:
    """A claim received at the end instant is too late; one millisecond earlier is in time."""
    assert rules.decide(LIVE, 0, LIVE.ends_ms - 1) is Outcome.OK
    assert rules.decide(LIVE, 0, LIVE.ends_ms) is Outcome.ENDED


@given(
    quantity=st.integers(0, 30),
    claimed=st.integers(0, 30),
    limit=st.integers(1, 4),
    held=st.dictionaries(st.sampled_from("abcdef"), st.integers(0, 4)),
    requests=st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(900, 2100)), max_size=60),
)
def test_allocate_never_oversells_or_undersells(
    quantity: int, claimed: int, limit: int, held: dict[str, int], requests: list[tuple[str, int]]
) -> None:
    """Exactly the claims that fit get a unit: no more than the quantity, none over a viewer's limit,
    and no refusal for stock while stock remained."""
    state = StockState(quantity, claimed, limit, 1000, 2000, False)
    outcomes, after = rules.allocate(state, held, requests)
    granted = [v for (v, _), o in zip(requests, outcomes, strict=True) if o is Outcome.OK]
    assert after == claimed + len(granted)
    assert after <= max(quantity, claimed)
    for viewer in set(granted):
        assert held.get(viewer, 0) + granted.count(viewer) <= limit
    in_window = [
        (v, t)
        for (v, t), o in zip(requests, outcomes, strict=True)
        if 1000 <= t < 2000 and o is not Outcome.OK
    ]
    if any(o is Outcome.SOLD_OUT for o in outcomes):
        assert after >= quantity
    assert all(o in (Outcome.SOLD_OUT, Outcome.LIMIT) for (_, t), o in zip(requests, outcomes, strict=True)
               if 1000 <= t < 2000 and o is not Outcome.OK)  # fmt: skip
    assert len(in_window) + len(granted) == sum(1 for _, t in requests if 1000 <= t < 2000)


def test_phase() -> None:
    """Shown status: scheduled before the start, sold out at zero, ended at the end or when stored so."""
    assert rules.phase("live", 5, 0, 1000, 2000, 500) == "scheduled"
    assert rules.phase("live", 5, 5, 1000, 2000, 1500) == "sold_out"
    assert rules.phase("live", 5, 4, 1000, 2000, 1500) == "live"
    assert rules.phase("live", 5, 0, 1000, 2000, 2000) == "ended"
    assert rules.phase("ended", 5, 0, 1000, 2000, 1500) == "ended"


def test_percent_rounds_to_the_minor_unit() -> None:
    """30% off 9.99 is 6.99; a price above the list price is refused; one of the two is required."""
    assert wire.parse_price({"percent_off": 30}, 999) == rules.Price(699, 30)
    assert wire.parse_price({"price_minor": 500}, 999) == rules.Price(500, None)
    with pytest.raises(InvalidInput, match="above the list price"):
        wire.parse_price({"price_minor": 1000}, 999)
    with pytest.raises(InvalidInput, match="one of them"):
        wire.parse_price({"price_minor": 1, "percent_off": 10}, 999)
    with pytest.raises(InvalidInput, match="one of them"):
        wire.parse_price({}, 999)


GOOD: dict[str, Any] = {"product_id": 1, "percent_off": 20, "quantity": 100, "duration_secs": 60}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"quantity": 0}, "quantity must be between"),
        ({"quantity": -5}, "quantity must be between"),
        ({"quantity": 10**9}, "quantity must be between"),
        ({"quantity": 2.5}, "whole number"),
        ({"quantity": True}, "whole number"),
        ({"quantity": "100"}, "whole number"),
        ({"duration_secs": 5}, "duration_secs must be between"),
        ({"duration_secs": 86_401}, "duration_secs must be between"),
        ({"percent_off": 0}, "percent_off must be between"),
        ({"percent_off": 100}, "percent_off must be between"),
        ({"percent_off": None, "price_minor": -1}, "price_minor must be between"),
        ({"percent_off": None, "price_minor": 10**12}, "price_minor must be between"),
        ({"audience": "vips"}, "audience must be one of"),
        ({"audience": "watchers"}, "watch_minutes is required"),
        ({"per_viewer_limit": 0}, "per_viewer_limit must be between"),
        ({"hold_secs": 5}, "hold_secs must be between"),
        ({"starts_in_secs": -1}, "starts_in_secs must be between"),
    ],
)
def test_absurd_launches_are_refused(change: dict[str, Any], message: str) -> None:
    """Negative or absurd quantities, prices and times are refused with a message naming the field."""
    with pytest.raises(InvalidInput, match=message):
        wire.parse_launch({**GOOD, **change}, 19900)


def test_changes() -> None:
    """A change must change something; extending keeps at least the minimum run; an ended deal is final."""
    with pytest.raises(InvalidInput, match="nothing to change"):
        wire.parse_change({"id": 1}, 100)
    with pytest.raises(InvalidInput, match="unknown fields"):
        wire.parse_change({"id": 1, "quantity": 5}, 100)
    with pytest.raises(InvalidInput, match="add_stock must be between"):
        wire.parse_change({"id": 1, "add_stock": 0}, 100)
    assert rules.new_end(0, 60_000, 30, 10_000) == 90_000
    with pytest.raises(InvalidInput, match="at least"):
        rules.new_end(0, 60_000, -55, 10_000)
    with pytest.raises(Conflict):
        rules.check_changeable("ended", 60_000, 10_000)
    with pytest.raises(Conflict):
        rules.check_changeable("live", 60_000, 60_000)


def test_codes_are_unambiguous_and_links_keep_the_shop_query() -> None:
    """Codes avoid 0/O/1/I/L; the checkout link keeps the shop's own query and replaces ours."""
    codes = {rules.new_code() for _ in range(1000)}
    assert len(codes) == 1000
    assert all(re.fullmatch(r"LW-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}", c) for c in codes)
    url = product_rules.checkout_url("https://shop.example/p?id=7&coupon=OLD#top", "LW-AAAA-BBBB", "v1")
    assert url == "https://shop.example/p?id=7&coupon=LW-AAAA-BBBB&lw_ref=v1#top"
    assert product_rules.checkout_url(None, "X", "v") is None


def test_audiences_decide_from_the_viewer_standing() -> None:
    """Everyone may claim; followers, watchers of N minutes and askers: each decided by one fact."""
    t = 10 * 60_000
    rules.check_audience("everyone", None, Standing(), t)
    assert rules.fact_for("everyone") is None
    assert rules.fact_for("followers") == "following"
    rules.check_audience("followers", None, Standing(following=True), t)
    with pytest.raises(Forbidden, match="followers of the room") as refused:
        rules.check_audience("followers", None, Standing(), t)
    assert refused.value.code == "not_eligible"
    rules.check_audience("watchers", 5, Standing(joined_ms=t - 5 * 60_000), t)
    with pytest.raises(Forbidden, match="watching at least 5 minutes"):
        rules.check_audience("watchers", 5, Standing(joined_ms=t - 5 * 60_000 + 1), t)
    with pytest.raises(Forbidden, match="watching at least 5 minutes"):
        rules.check_audience("watchers", 5, Standing(), t)
    rules.check_audience("askers", None, Standing(asked=True), t)
    with pytest.raises(Forbidden, match="asked about the product"):
        rules.check_audience("askers", None, Standing(following=True, joined_ms=0), t)
