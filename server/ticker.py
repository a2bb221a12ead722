"""A loop that coalesces changes: the first change after a quiet spell wakes it, one tick later it
flushes everything that arrived meanwhile. Used for every high-rate stream (wall, counters, funnel)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

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
