"""The draws engine: coalesced entrant counts and shakes, and the clock that closes entry windows."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import func, update
from sqlmodel import col, select

from server.draws.events import EntrantsTick
from server.realtime.hub import Hub
from server.storage import Database
from server.storage.models import Draw, DrawEntry
from server.ticker import Clock, Ticker

log = logging.getLogger("livewall.draws")

ENTRANTS_TICK_SECS = 0.25  # the live entrant count on the screen: 4 updates a second at most
CLOCK_SECS = 0.25
# Phones gather shakes and send them at most this often (50 a message at most): 100 shakes a second
# is beyond any arm, so a script gains nothing by sending faster.
SHAKE_INTERVAL_MS = 400

# Closes the entries of a draw whose window has ended, at a time (ms).
Freeze = Callable[[Draw, int], Awaitable[None]]


class DrawEngine(Ticker):
    """Per process: coalesced entrant counts and shakes, and closing entry windows on time."""

    def __init__(self, db: Database, hub: Hub, freeze: Freeze) -> None:
        super().__init__(ENTRANTS_TICK_SECS, "draw-entrants")
        self.db = db
        self.hub = hub
        self.freeze = freeze
        self._dirty: dict[int, str] = {}  # draw id -> room id
        self._shakes: dict[tuple[int, str], int] = {}
        self._last_shake: dict[tuple[int, str], int] = {}
        self._clock = Clock(CLOCK_SECS, "draw-clock", self.tick_clock)

    def entered(self, d: Draw) -> None:
        assert d.id is not None
        self._dirty[d.id] = d.room_id
        self.wake()

    def shake_allowed(self, d: Draw, viewer_id: str, t: int) -> bool:
        """At most one shake message per viewer per SHAKE_INTERVAL_MS (a script cannot out-shake phones)."""
        key = (d.id or 0, viewer_id)
        if t - self._last_shake.get(key, 0) < SHAKE_INTERVAL_MS:
            return False
        if len(self._last_shake) > 200_000:
            self._last_shake.clear()
        self._last_shake[key] = t
        return True

    def shake(self, d: Draw, viewer_id: str, n: int) -> None:
        assert d.id is not None
        key = (d.id, viewer_id)
        self._shakes[key] = self._shakes.get(key, 0) + n
        self.entered(d)

    async def flush(self) -> None:
        shakes, self._shakes = self._shakes, {}
        if shakes:
            async with self.db.session() as session:
                for (draw_id, viewer_id), n in shakes.items():
                    await session.exec(
                        update(DrawEntry)
                        .where(
                            col(DrawEntry.draw_id) == draw_id,
                            col(DrawEntry.viewer_id) == viewer_id,
                            col(DrawEntry.frozen).is_(False),  # shakes after the close do not count
                        )
                        .values(shakes=col(DrawEntry.shakes) + n)
                    )
                await session.commit()
        dirty, self._dirty = self._dirty, {}
        for draw_id, room_id in dirty.items():
            async with self.db.session() as session:
                n = (
                    await session.exec(
                        select(func.count()).select_from(DrawEntry).where(DrawEntry.draw_id == draw_id)
                    )
                ).one()
            await self.hub.publish(room_id, EntrantsTick(id=draw_id, entrants=int(n)))

    async def tick_clock(self, t: int) -> None:
        """Freeze the entrants of draws whose window has closed."""
        async with self.db.session() as session:
            due = (
                await session.exec(select(Draw).where(Draw.status == "open", col(Draw.closes_ms) <= t))
            ).all()
        for d in due:
            await self.flush()  # shakes and entries of the last tick count
            await self.freeze(d, t)

    async def start(self) -> None:
        await super().start()
        self._clock.start()

    async def stop(self) -> None:
        await self._clock.stop()
        await super().stop()
