"""Failure counters with exponential backoff (wrong host keys), per key: in memory for one process,
in Redis for several (the same URL as the hub's, chosen by URL and imported lazily).

A key (an address, a room) is locked by its ``free``-th failure in a row for ``first_secs``, and by
each failure after that for twice as long as the one before, up to ``max_secs``. A key that has not failed for
``forget_secs`` starts again from zero. Only failures count: a success changes nothing unless the
caller clears the key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("livewall.throttle")


@dataclass(frozen=True)
class Backoff:
    """How a key's failures lock it."""

    free: int  # failures before the first lock (the free-th one starts it)
    first_secs: float  # the first lock; each further failure doubles it
    max_secs: float
    forget_secs: float  # failures older than this (since the key's last one) are forgotten


def backoff_secs(failures: int, policy: Backoff) -> float:
    """How long ``failures`` failures in a row lock a key (0: not locked)."""
    over = failures - policy.free
    if over < 0:
        return 0.0
    return float(min(policy.max_secs, policy.first_secs * 2 ** min(over, 62)))


class Failures(Protocol):
    """Failure counts shared by the processes that use the same store."""

    async def locked(self, key: str) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        ...

    async def fail(self, key: str, policy: Backoff) -> float:
        """Count one failure of ``key``; returns the lock it now has (0: none)."""
        ...

    async def clear(self, key: str) -> None:
        """Forget ``key``'s failures."""
        ...

    async def close(self) -> None: ...


class MemoryFailures:
    """Failure counts of this process. ``clock``: monotonic seconds (tests pass their own)."""

    # Bounded memory: past this many keys the oldest half is dropped (an attacker cycling through
    # addresses then loosens only the limits of the addresses it no longer uses).
    MAX_KEYS = 100_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._keys: dict[str, tuple[int, float, float]] = {}  # key -> (failures, locked until, expires)

    async def locked(self, key: str) -> float:
        entry = self._keys.get(key)
        if entry is None:
            return 0.0
        now = self.clock()
        if now >= entry[2]:
            del self._keys[key]
            return 0.0
        return max(0.0, entry[1] - now)

    async def fail(self, key: str, policy: Backoff) -> float:
        now = self.clock()
        entry = self._keys.pop(key, None)  # re-inserted last: the dict stays ordered by last failure
        failures = 1 if entry is None or now >= entry[2] else entry[0] + 1
        wait = backoff_secs(failures, policy)
        self._keys[key] = (failures, now + wait, now + wait + policy.forget_secs)
        if len(self._keys) > self.MAX_KEYS:
            for old in list(self._keys)[: self.MAX_KEYS // 2]:
                del self._keys[old]
        return wait

    async def clear(self, key: str) -> None:
        self._keys.pop(key, None)

    async def close(self) -> None:
        self._keys.clear()


# The same rules as MemoryFailures, atomically, on Redis' clock (all processes agree on it).
_FAIL = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local free, first, cap, forget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local wait = 0
if n >= free then wait = math.min(cap, first * 2 ^ math.min(n - free, 62)) end
redis.call('HSET', KEYS[1], 'until', now + wait)
redis.call('PEXPIRE', KEYS[1], math.ceil(wait + forget))
return math.ceil(wait)
"""
_LOCKED = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local till = tonumber(redis.call('HGET', KEYS[1], 'until'))
if till == nil or till <= now then return 0 end
return till - now
"""


class RedisFailures:
    """Failure counts in Redis, shared by every process on it. If Redis does not answer, this
    process counts on its own meanwhile (a login is not refused because Redis is down)."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self.redis: Any = aioredis.Redis.from_url(url, decode_responses=False)
        self._fail = self.redis.register_script(_FAIL)
        self._locked = self.redis.register_script(_LOCKED)
        self.fallback = MemoryFailures()

    @staticmethod
    def _key(key: str) -> str:
        return f"lw:fail:{key}"

    async def locked(self, key: str) -> float:
        from redis.exceptions import RedisError

        try:
            wait_ms = await self._locked(keys=[self._key(key)])
        except (RedisError, OSError):
            log.warning("login throttle: Redis did not answer; counting in this process", exc_info=True)
            return await self.fallback.locked(key)
        return max(int(wait_ms) / 1000, await self.fallback.locked(key))

    async def fail(self, key: str, policy: Backoff) -> float:
        from redis.exceptions import RedisError

        args = [policy.free, policy.first_secs * 1000, policy.max_secs * 1000, policy.forget_secs * 1000]
        try:
            wait_ms = await self._fail(keys=[self._key(key)], args=args)
        except (RedisError, OSError):
            log.warning("login throttle: Redis did not answer; counting in this process", exc_info=True)
            return await self.fallback.fail(key, policy)
        return int(wait_ms) / 1000

    async def clear(self, key: str) -> None:
        from redis.exceptions import RedisError

        await self.fallback.clear(key)
        try:
            await self.redis.delete(self._key(key))
        except (RedisError, OSError):
            log.warning("login throttle: Redis did not answer", exc_info=True)

    async def close(self) -> None:
        await self.redis.aclose()


def failures_from_url(url: str | None) -> Failures:
    """``None`` or ``memory://``: this process only. ``redis://`` / ``rediss://`` / ``unix://``: shared."""
    if url is None or url.startswith("memory://"):
        return MemoryFailures()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisFailures(url)
    raise ValueError(f"unsupported URL {url!r}: use memory:// or redis://")
