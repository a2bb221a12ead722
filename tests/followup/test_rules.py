"""Pure rules of follow-up: journey specs, keys and goals, waits, quiet hours, caps, retries, STOP."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server import text
from server.errors import InvalidInput
from server.followup import defaults, rules

SHANGHAI = ZoneInfo("Asia/Shanghai")


def ms(*args: int, tz: ZoneInfo = SHANGHAI) -> int:
    return int(datetime(*args, tzinfo=tz).timestamp() * 1000)  # type: ignore[misc]


def test_ready_made_journeys_are_valid() -> None:
    """Every ready-made journey passes the same validation as the console's."""
    for spec in defaults.JOURNEYS:
        assert rules.clean_journey(spec)["key"] == spec["key"]
    keys = {key for key, _ in defaults.TEMPLATES}
    for spec in defaults.JOURNEYS:
        for step in spec["steps"]:
            if "send" in step:
                assert step["send"]["template"] in keys
    assert all((key, "zh-CN") in defaults.TEMPLATES for key in keys)


BAD: list[tuple[dict[str, Any], str]] = [
    ({"entry": "nope"}, "entry"),
    ({"goal": "product.buy"}, "goal must be another"),
    ({"steps": []}, "steps"),
    ({"steps": [{"wait": {"minutes": 5}}]}, "send step"),
    ({"steps": [{"wait": {"minutes": 0}}, {"send": {"channel": "email", "template": "x"}}]}, "minutes"),
    ({"steps": [{"wait": {"until": "25:00"}}, {"send": {"channel": "email", "template": "x"}}]}, "HH:MM"),
    ({"steps": [{"send": {"channel": "fax", "template": "x"}}]}, "channel"),
    ({"steps": [{"send": {"channel": "email", "template": "Bad Key!"}}]}, "template"),
    ({"steps": [{"send": {"channel": "email", "template": "x", "extra": 1}}]}, "unknown"),
    ({"key_by": "colour"}, "key_by"),
    ({"key": ""}, "key"),
    ({"name": ""}, "name"),
    ({"conditions": {"product_ids": ["a"]}}, "product_ids"),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_bad_journeys_say_what_is_wrong(change: dict[str, Any], message: str) -> None:
    """A bad journey is refused with a message naming the field."""
    spec = {
        "key": "j",
        "name": "J",
        "entry": "product.buy",
        "steps": [{"send": {"channel": "email", "template": "t"}}],
        **change,
    }
    with pytest.raises(InvalidInput, match=message):
        rules.clean_journey(spec)


def test_keys_and_goals() -> None:
    """An order-keyed goal ends only that order's instance; a goal naming no key ends all."""
    paid_a = rules.EventFacts("order.paid", "shop", None, "A", None)
    paid_none = rules.EventFacts("order.paid", "shop", None, None, None)
    assert rules.entry_key("order_id", paid_a) == "A"
    assert rules.entry_key("order_id", paid_none) is None
    assert rules.entry_key(None, paid_none) == ""
    assert rules.goal_reached("order_id", "A", paid_a)
    assert not rules.goal_reached("order_id", "B", paid_a)
    assert rules.goal_reached("order_id", "B", paid_none)
    buy = rules.EventFacts("product.buy", "room", 7, None, None)
    assert rules.matches_entry({"product_ids": [7]}, buy)
    assert not rules.matches_entry({"product_ids": [8]}, buy)
    assert not rules.matches_entry({"source": "shop"}, buy)


def test_local_waits_follow_the_contacts_clock() -> None:
    """'Until 10:00' is the contact's 10:00: later today, or tomorrow once it has passed."""
    assert rules.next_local_time(ms(2026, 11, 24, 8, 0), "10:00", "Asia/Shanghai") == ms(2026, 11, 24, 10, 0)
    assert rules.next_local_time(ms(2026, 11, 24, 11, 0), "10:00", "Asia/Shanghai") == ms(2026, 11, 25, 10, 0)
    ny = ZoneInfo("America/New_York")
    assert rules.next_local_time(ms(2026, 11, 24, 8, 0, tz=ny), "10:00", "America/New_York") == ms(
        2026, 11, 24, 10, 0, tz=ny
    )
    step = {"wait": {"minutes": 30}}
    assert rules.wait_until(step, 0, None) == 30 * 60_000
    assert rules.wait_until(step, 0, None, time_scale=0.001) == 1800


def test_quiet_hours_hold_until_morning() -> None:
    """Inside quiet hours (across midnight) a message waits for their end; outside it goes now."""
    night = ms(2026, 11, 24, 23, 30)
    assert rules.in_quiet_hours(night, "21:00", "09:00", "Asia/Shanghai")
    assert rules.quiet_hold(night, "21:00", "09:00", "Asia/Shanghai") == ms(2026, 11, 25, 9, 0)
    early = ms(2026, 11, 25, 3, 0)
    assert rules.quiet_hold(early, "21:00", "09:00", "Asia/Shanghai") == ms(2026, 11, 25, 9, 0)
    assert rules.quiet_hold(ms(2026, 11, 25, 12, 0), "21:00", "09:00", "Asia/Shanghai") is None
    assert rules.quiet_hold(ms(2026, 11, 25, 13, 0), "12:00", "14:00", "Asia/Shanghai") == ms(
        2026, 11, 25, 14, 0
    )
    assert rules.quiet_hold(night, "00:00", "00:00", "Asia/Shanghai") is None  # off
    # The same instant is day in New York: the contact's zone decides.
    assert rules.quiet_hold(night, "21:00", "09:00", "America/New_York") is None


def test_caps_and_breaker() -> None:
    """Caps name the limit that was hit; the breaker needs enough outcomes before it trips."""
    assert rules.capped(0, 0, 2, 5) is None
    assert "24 h" in (rules.capped(2, 2, 2, 5) or "")
    assert "7 days" in (rules.capped(1, 5, 2, 5) or "")
    assert not rules.breaker_trips([True] * 5, 0.2, 10)
    assert rules.breaker_trips([True] * 3 + [False] * 7, 0.2, 10)
    assert not rules.breaker_trips([True] * 2 + [False] * 8, 0.2, 10)


@given(st.integers(min_value=1, max_value=30), st.floats(min_value=0, max_value=7200))
def test_backoff_grows_is_capped_and_honours_retry_after(attempt: int, retry_after: float) -> None:
    """Backoff stays within [ceiling/2, ceiling], the ceiling doubles to a cap, Retry-After wins."""
    rng = random.Random(attempt)
    delay = rules.retry_delay_secs(attempt, rng=rng)
    ceiling = min(rules.RETRY_CAP_SECS, rules.RETRY_BASE_SECS * 2 ** (attempt - 1))
    assert ceiling / 2 <= delay <= ceiling
    assert rules.retry_delay_secs(attempt, rng=rng, retry_after=retry_after) >= retry_after


@pytest.mark.parametrize("text", ["STOP", "stop", " Stop. ", "TD", "退订", "unsubscribe"])
def test_stop_words(text: str) -> None:
    """STOP and the Chinese TD / 退订 replies opt out."""
    assert rules.is_stop(text)


@pytest.mark.parametrize("text", ["stop by tomorrow?", "thanks", "", "TDD"])
def test_not_stop_words(text: str) -> None:
    """An ordinary reply is not an opt-out."""
    assert not rules.is_stop(text)


def test_addresses_are_validated() -> None:
    """Phones become E.164, emails are normalised; bad ones get a clear code."""
    assert text.clean_phone("138 0013 8000") == "+8613800138000"
    assert text.clean_email("Li.Wei@Example.COM") == "li.wei@example.com"
    with pytest.raises(InvalidInput) as bad_phone:
        text.clean_phone("12")
    assert bad_phone.value.code == "bad_phone"
    with pytest.raises(InvalidInput) as bad_email:
        text.clean_email("nope@")
    assert bad_email.value.code == "bad_email"
    with pytest.raises(InvalidInput):
        rules.clean_tz("Mars/Base")
