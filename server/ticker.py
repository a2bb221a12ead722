"""A loop that coalesces changes: the first change after a quiet spell wakes it, one tick later it
flushes everything that arrived meanwhile. Used for every high-rate stream (wall, counters, funnel)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("livewall.ticker")


class Ticker:
    """Subclasses implement ``flush``; producers call ``wake`` after recording a change."""

    def __init__(self, tick_secs: float, name: str) -> None:
        self.tick_secs = tick_secs
        self.name = name
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def flush(self) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"livewall-{self.name}")

    async def stop(self) -> None:
        """Stop ticking and flush what is pending."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.tick_secs)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("%s flush failed", self.name)


class Clock:
    """Calls ``tick(now_ms)`` every ``period_secs`` until stopped; a failing tick is logged and the
    next one comes all the same (the deadlines of discounts and draws: start, end, lapse, freeze)."""

    def __init__(self, period_secs: float, name: str, tick: Callable[[int], Awaitable[None]]) -> None:
        self.period_secs = period_secs
        self.name = name
        self.tick = tick
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"livewall-{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period_secs)
            try:
                await self.tick(time.time_ns() // 1_000_000)
            except Exception:
                log.exception("%s failed", self.name)
