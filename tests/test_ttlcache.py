"""The shared TTL cache: one load for concurrent misses, expiry, put, and failures not cached."""

from __future__ import annotations

import asyncio

import pytest

from server.ttlcache import TtlCache


async def test_concurrent_misses_share_one_load() -> None:
    """Fifty callers asking for the same key at once cause a single load."""
    calls = 0
    gate = asyncio.Event()

    async def load() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return 7

    cache: TtlCache[str, int] = TtlCache(60, max_entries=10)
    waiting = [asyncio.create_task(cache.get("k", load)) for _ in range(50)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiting) == [7] * 50
    assert calls == 1


async def test_expired_entries_reload_and_put_replaces() -> None:
    """A zero TTL reloads every time; put() answers without loading."""
    values = iter([1, 2])

    async def load() -> int:
        return next(values)

    cache: TtlCache[str, int] = TtlCache(0, max_entries=10)
    assert await cache.get("k", load) == 1
    assert await cache.get("k", load) == 2
    fresh: TtlCache[str, int] = TtlCache(60, max_entries=10)
    fresh.put("k", 9)
    assert await fresh.get("k", load) == 9


async def test_failed_load_is_not_cached() -> None:
    """An error reaches the caller, and the next get tries again."""
    attempts = 0

    async def load() -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("down")
        return 3

    cache: TtlCache[str, int] = TtlCache(60, max_entries=10)
    with pytest.raises(ConnectionError):
        await cache.get("k", load)
    assert await cache.get("k", load) == 3
