"""Per-viewer token buckets: in memory for one process, shared through Redis by several."""

from __future__ import annotations

import pytest

from server.realtime.backends.memory import MemoryBackend
from server.realtime.backends.redis import RedisBackend
from server.realtime.limits import Limiter


async def test_memory_bucket_allows_burst_then_refuses() -> None:
    """Burst 2: two takes pass, the third is refused with a wait of about the interval."""
    limiter = Limiter(MemoryBackend(history=10))
    assert (await limiter.take("r:v", 2, 10))[0]
    assert (await limiter.take("r:v", 2, 10))[0]
    ok, wait = await limiter.take("r:v", 2, 10)
    assert not ok and 0 < wait <= 10
    assert (await limiter.take("r:other", 2, 10))[0]  # another viewer has their own bucket


@pytest.mark.redis
async def test_redis_bucket_is_shared_between_processes(redis_clean: str) -> None:
    """Two backends (two server processes) on one Redis draw from the same bucket."""
    a, b = RedisBackend(redis_clean, history=10), RedisBackend(redis_clean, history=10)
    try:
        la, lb = Limiter(a), Limiter(b)
        assert (await la.take("room:viewer", 1, 30))[0]
        ok, wait = await lb.take("room:viewer", 1, 30)
        assert not ok and 25 < wait <= 30
        assert (await lb.take("room:someone-else", 1, 30))[0]
    finally:
        await a.redis.aclose()
        await b.redis.aclose()


@pytest.mark.redis
async def test_redis_bucket_refills(redis_clean: str) -> None:
    """After the interval a token is back (a 50 ms interval, awaited through the wait it reports)."""
    import asyncio

    backend = RedisBackend(redis_clean, history=10)
    try:
        limiter = Limiter(backend)
        assert (await limiter.take("k", 1, 0.05))[0]
        ok, wait = await limiter.take("k", 1, 0.05)
        assert not ok
        await asyncio.sleep(wait + 0.02)  # waiting out the bucket is the behaviour under test
        assert (await limiter.take("k", 1, 0.05))[0]
    finally:
        await backend.redis.aclose()
