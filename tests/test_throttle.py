"""server/throttle.py: the backoff rule, and failure counts in memory and shared through Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from server.throttle import Backoff, MemoryFailures, RedisFailures, backoff_secs, failures_from_url

POLICY = Backoff(free=3, first_secs=1.0, max_secs=8.0, forget_secs=60.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_starts_at_the_free_th_failure_and_doubles_to_the_cap() -> None:
    """No lock before `free` failures; then 1 s, 2 s, 4 s, capped at max_secs."""
    assert [backoff_secs(n, POLICY) for n in range(1, 8)] == [0.0, 0.0, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert backoff_secs(10_000, POLICY) == 8.0  # no overflow


async def test_memory_counts_lock_and_unlock() -> None:
    """A key is locked by its failures for the backoff, then free to try again."""
    clock = Clock()
    failures = MemoryFailures(clock)
    assert [await failures.fail("a", POLICY) for _ in range(4)] == [0.0, 0.0, 1.0, 2.0]
    assert await failures.locked("a") == 2.0 and await failures.locked("b") == 0.0
    clock.now += 2.0
    assert await failures.locked("a") == 0.0
    assert await failures.fail("a", POLICY) == 4.0  # the count goes on: it was not forgotten


async def test_memory_forgets_a_quiet_key_and_clears_on_request() -> None:
    """After forget_secs without failures a key starts from zero; clear() forgets at once."""
    clock = Clock()
    failures = MemoryFailures(clock)
    for _ in range(3):
        await failures.fail("a", POLICY)
    clock.now += 1.0 + POLICY.forget_secs
    assert await failures.locked("a") == 0.0
    assert await failures.fail("a", POLICY) == 0.0
    await failures.fail("a", POLICY)
    await failures.clear("a")
    assert await failures.fail("a", POLICY) == 0.0


async def test_memory_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_KEYS keys the oldest half is dropped."""
    monkeypatch.setattr(MemoryFailures, "MAX_KEYS", 10)
    failures = MemoryFailures(Clock())
    for i in range(11):
        await failures.fail(f"k{i}", POLICY)
    assert len(failures._keys) == 6 and "k10" in failures._keys and "k0" not in failures._keys


@pytest.fixture
async def shared(redis_clean: str) -> AsyncIterator[tuple[RedisFailures, RedisFailures]]:
    """Two processes' counters on one Redis."""
    one, two = RedisFailures(redis_clean), RedisFailures(redis_clean)
    yield one, two
    await one.close()
    await two.close()


async def test_redis_counts_are_shared_between_processes(shared: tuple[RedisFailures, RedisFailures]) -> None:
    """Failures counted by one process lock the key for the other; a clear by either frees it."""
    one, two = shared
    assert await one.fail("addr:1", POLICY) == 0.0
    assert await two.fail("addr:1", POLICY) == 0.0
    assert await one.fail("addr:1", POLICY) == 1.0
    assert 0.5 < await two.locked("addr:1") <= 1.0
    assert await two.fail("addr:1", POLICY) == 2.0
    await two.clear("addr:1")
    assert await one.locked("addr:1") == 0.0
    assert await one.fail("addr:1", POLICY) == 0.0


async def test_redis_keys_expire(shared: tuple[RedisFailures, RedisFailures]) -> None:
    """A key's entry lives for its lock plus forget_secs, so Redis does not fill up."""
    one, _two = shared
    await one.fail("room:r", POLICY)
    ttl_ms = await one.redis.pttl("lw:fail:room:r")
    assert 0 < ttl_ms <= POLICY.forget_secs * 1000


async def test_redis_down_counts_in_this_process(caplog: pytest.LogCaptureFixture) -> None:
    """Without an answer from Redis the process counts on its own (logins are not refused for it)."""
    failures = RedisFailures("redis://127.0.0.1:1/0")
    try:
        for _ in range(3):
            await failures.fail("a", POLICY)
        assert await failures.locked("a") > 0
        await failures.clear("a")
        assert await failures.locked("a") == 0.0
    finally:
        await failures.close()
    assert "Redis did not answer" in caplog.text


def test_failures_from_url() -> None:
    """memory:// (or nothing) is this process; redis:// is shared; anything else is a clear error."""
    assert isinstance(failures_from_url(None), MemoryFailures)
    assert isinstance(failures_from_url("memory://"), MemoryFailures)
    assert isinstance(failures_from_url("redis://127.0.0.1:6379/0"), RedisFailures)
    with pytest.raises(ValueError, match="unsupported"):
        failures_from_url("mysql://x")
