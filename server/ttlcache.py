"""A small in-process cache for hot reads: entries live a fixed time, and concurrent misses share one
load (single flight), so a storm of identical requests costs one database read per period."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """``await cache.get(key, load)``: the cached value if younger than ``ttl_secs``, else ``load()``."""

    def __init__(self, ttl_secs: float, max_entries: int) -> None:
        self.ttl_secs = ttl_secs
        self.max_entries = max_entries
        self._entries: dict[K, tuple[float, asyncio.Future[V]]] = {}

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and now - hit[0] < self.ttl_secs:
            loaded = hit[1]
            if loaded.done() and not loaded.cancelled() and loaded.exception() is None:
                return loaded.result()  # the hot path: no task, no shield
            return await asyncio.shield(loaded)
        future: asyncio.Future[V] = asyncio.ensure_future(load())
        entry = self._store(key, now, future)
        try:
            return await asyncio.shield(future)
        except Exception:
            if self._entries.get(key) is entry:
                del self._entries[key]  # a failed load is not cached
            raise

    def put(self, key: K, value: V) -> None:
        """Replace an entry with a value known now (a change made in this process)."""
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        future.set_result(value)
        self._store(key, time.monotonic(), future)

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)

    def _store(self, key: K, now: float, future: asyncio.Future[V]) -> tuple[float, asyncio.Future[V]]:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # bounded memory: a full reset only costs a round of reloads
        entry = self._entries[key] = (now, future)
        return entry
