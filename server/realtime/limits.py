"""Per-key token buckets shared by every process: in memory for one process, in Redis for several."""

from __future__ import annotations

import time
from typing import Any

from server.realtime.backends.base import Backend, SharedRedis
from server.realtime.ratelimit import TokenBucket

# Tokens are kept as (level, last update in ms) and refilled lazily on each take, atomically.
_TAKE = """
local key = KEYS[1]
local burst, per_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local state = redis.call('HMGET', key, 'level', 'ts')
local level, ts = tonumber(state[1]), tonumber(state[2])
if level == nil then level = burst; ts = now end
level = math.min(burst, level + (now - ts) / per_ms)
local ok = 0
if level >= 1 then level = level - 1; ok = 1 end
redis.call('HSET', key, 'level', tostring(level), 'ts', now)
redis.call('PEXPIRE', key, math.ceil(per_ms * burst) + 1000)
local wait = 0
if ok == 0 then wait = math.ceil((1 - level) * per_ms) end
return {ok, wait}
"""


class Limiter:
    """``take(key, burst, per_secs)``: one token every ``per_secs`` seconds, up to ``burst`` saved."""

    def __init__(self, backend: Backend) -> None:
        shared = backend.capability(SharedRedis)
        # One bucket for every process where they share a Redis; else this process's own.
        self._script: Any = shared.redis.register_script(_TAKE) if shared is not None else None
        self._buckets: dict[str, TokenBucket] = {}

    async def take(self, key: str, burst: int, per_secs: float) -> tuple[bool, float]:
        """(allowed, seconds to wait before the next token when refused)."""
        if self._script is not None:
            ok, wait_ms = await self._script(keys=[f"lw:tb:{key}"], args=[burst, per_secs * 1000])
            return bool(ok), int(wait_ms) / 1000
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None or bucket.rate != 1 / per_secs or bucket.burst != burst:
            if len(self._buckets) > 100_000:
                self._buckets.clear()  # bounded memory: a full reset only loosens limits briefly
            bucket = self._buckets[key] = TokenBucket(burst, 1 / per_secs, now)
        if bucket.take(now):
            return True, 0.0
        return False, (1 - bucket.tokens) * per_secs
