"""server.realtime.ratelimit: the token bucket, driven by an explicit clock."""

from __future__ import annotations

from server.realtime.ratelimit import TokenBucket


def test_burst_then_refused() -> None:
    """A full bucket allows exactly ``burst`` takes at one instant, then refuses."""
    bucket = TokenBucket(5, 1.0, now=100.0)
    assert [bucket.take(100.0) for _ in range(6)] == [True] * 5 + [False]


def test_refill_at_rate() -> None:
    """An empty bucket regains ``rate`` tokens per second."""
    bucket = TokenBucket(10, 10.0, now=0.0)
    for _ in range(10):
        assert bucket.take(0.0)
    assert not bucket.take(0.0)
    assert [bucket.take(0.5) for _ in range(6)] == [True] * 5 + [False]


def test_partial_token_not_enough() -> None:
    """Less than one token's worth of time does not allow a take."""
    bucket = TokenBucket(1, 10.0, now=0.0)
    assert bucket.take(0.0)
    assert not bucket.take(0.05)
    assert bucket.take(0.1)


def test_refill_capped_at_burst() -> None:
    """A long idle period refills only up to ``burst``."""
    bucket = TokenBucket(3, 100.0, now=0.0)
    assert bucket.take(0.0)
    assert [bucket.take(3600.0) for _ in range(4)] == [True] * 3 + [False]


def test_clock_going_back_adds_nothing() -> None:
    """A clock that moves backwards neither adds nor removes tokens."""
    bucket = TokenBucket(2, 1.0, now=10.0)
    assert bucket.take(10.0)
    assert bucket.take(10.0)
    assert not bucket.take(5.0)
    assert not bucket.take(5.5)  # measured from the last (earlier) reading: 0.5 s, half a token
    assert bucket.take(6.0)


def test_cost_takes_several_tokens() -> None:
    """A take with cost n needs and uses n tokens."""
    bucket = TokenBucket(5, 1.0, now=0.0)
    assert bucket.take(0.0, cost=3)
    assert not bucket.take(0.0, cost=3)
    assert bucket.take(0.0, cost=2)
    assert not bucket.take(0.0)
