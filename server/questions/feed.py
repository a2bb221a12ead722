"""Coalesces the audience's high-rate changes into per-tick ``wall`` and ``queue`` events per room.

Cost grows with audiences x ticks, not audiences x messages. Two lanes, because the audiences differ
by three orders of magnitude:
- the stage (big screens and host consoles, a handful of connections): a ``wall`` and a ``queue``
  event every 100 ms; the host's queue gets every item, the screen's wall a fair sample of 10 a tick
  (rules.sample_for_wall) when more arrive than a screen can show;
- the phones (thousands of viewers): a ``wall`` event every 400 ms with a fair sample of at most 8
  new items (20 a second, more than anyone reads on a phone), and the top questions only when they
  changed. While the phones' sample leaves items out (a storm), their tick stretches to 1 s: a
  phone cannot show a storm anyway, and each tick is one write per phone. A viewer's own items reach
  them through their acknowledgement, sampled or not.
At 1,000 comments a second and 5,000 phones this is 5,000 small frames a second instead of 25,000
large ones: the fan-out's write(2) calls were 43 % of the server's CPU in a comment storm (py-spy;
on loopback each write also runs the receiver's TCP path, ~20 us).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from server.questions import rules
from server.questions.events import PhoneWall, QueueBatch, WallBatch
from server.realtime.hub import Hub
from server.ticker import Ticker

log = logging.getLogger("livewall.feed")

# 100 ms: a comment reaches the host's queue and the screen at once, in few frames (a handful of
# stage connections: their ticks cost little; the host's receipt p99 fell from 667 to 434 ms).
TICK_SECS = 0.1
# New items the public wall takes per tick (100 a second): more than a screen can show readably.
WALL_ITEMS_PER_TICK = 10
# Phones: a frame every 400 ms with at most 8 new items.
PHONE_TICK_SECS = 0.4
PHONE_ITEMS_PER_TICK = 8
# ...every second while their sample drops items.
PHONE_BUSY_TICK_SECS = 1.0

TopFn = Callable[[str], Awaitable[list[dict[str, Any]]]]


@dataclass
class _Pending:
    new_public: list[dict[str, Any]] = field(default_factory=list)
    changed_public: dict[int, dict[str, Any]] = field(default_factory=dict)
    removed: set[int] = field(default_factory=set)
    votes: dict[int, int] = field(default_factory=dict)
    reactions: Counter[str] = field(default_factory=Counter)
    host: dict[int, dict[str, Any]] = field(default_factory=dict)
    viewers: dict[int, str] = field(default_factory=dict)  # item id -> its author (fair sampling)
    top_dirty: bool = False


class _Lane(Ticker):
    """One audience group's buffer of wall changes, flushed every tick."""

    def __init__(
        self,
        hub: Hub,
        top: TopFn,
        *,
        tick_secs: float,
        cap: int,
        stage: bool,
        busy_tick_secs: float | None = None,
    ) -> None:
        super().__init__(tick_secs, "feed" if stage else "feed-phones")
        self.quiet_tick_secs = tick_secs
        self.busy_tick_secs = busy_tick_secs or tick_secs
        self.hub = hub
        self.top = top
        self.cap = cap
        self.stage = stage
        self._rooms: dict[str, _Pending] = {}
        # Phones: the top list last sent per room, so an unchanged one is not sent again.
        self._last_top: dict[str, list[tuple[int, int]]] = {}

    def room(self, room_id: str) -> _Pending:
        pending = self._rooms.get(room_id)
        if pending is None:
            pending = self._rooms[room_id] = _Pending()
        self.wake()
        return pending

    def item(self, room_id: str, public: dict[str, Any] | None, host: dict[str, Any], *, new: bool) -> None:
        pending = self.room(room_id)
        item_id = int(host["id"])
        pending.viewers[item_id] = str(host["viewer_id"])
        if self.stage:
            pending.host[item_id] = host
        if public is None:
            if not new:
                pending.removed.add(item_id)
                pending.changed_public.pop(item_id, None)
        elif new:
            pending.new_public.append(public)
        else:
            pending.removed.discard(item_id)
            pending.changed_public[item_id] = public
        if host["kind"] != "comment":
            pending.top_dirty = True

    async def _top(self, room_id: str, p: _Pending) -> list[dict[str, Any]] | None:
        if not p.top_dirty:
            return None
        top = await self.top(room_id)
        if self.stage:
            return top
        key = [(int(i["id"]), int(i["votes"])) for i in top]
        if self._last_top.get(room_id) == key:
            return None
        self._last_top[room_id] = key
        return top

    async def flush(self) -> None:
        rooms, self._rooms = self._rooms, {}
        sampled = False
        for room_id, p in rooms.items():
            candidates = [
                rules.Candidate(int(i["id"]), i["kind"], int(i["votes"]), p.viewers[int(i["id"])])
                for i in p.new_public
            ]
            chosen, dropped = rules.sample_for_wall(candidates, self.cap)
            sampled = sampled or dropped > 0
            keep = set(chosen)
            merged = {int(i["id"]): i for i in p.new_public if int(i["id"]) in keep}
            merged.update(p.changed_public)  # a later change of the same item wins
            public_items = [merged[k] for k in sorted(merged) if k not in p.removed]
            votes = {str(k): v for k, v in p.votes.items()}
            top = await self._top(room_id, p)
            if public_items or p.removed or votes or p.reactions or top is not None or dropped:
                kind = WallBatch if self.stage else PhoneWall
                await self.hub.publish(
                    room_id,
                    kind(
                        items=public_items,
                        removed=sorted(p.removed),
                        votes=votes,
                        reactions=dict(p.reactions),
                        top=top,
                        dropped=dropped,
                    ),
                )
            if self.stage and (p.host or votes or p.reactions):
                await self.hub.publish(
                    room_id, QueueBatch(items=list(p.host.values()), votes=votes, reactions=dict(p.reactions))
                )
        # One tick's storm anywhere stretches the next tick (per process, not per room: a lane is
        # one loop for all rooms, and a quiet room's phones then wait at most busy_tick_secs).
        self.tick_secs = self.busy_tick_secs if sampled else self.quiet_tick_secs


class Feed:
    """Per-process buffers of wall and queue changes: the stage lane and the phones' lane."""

    def __init__(
        self,
        hub: Hub,
        top: TopFn,
        *,
        tick_secs: float = TICK_SECS,
        cap: int = WALL_ITEMS_PER_TICK,
        phone_tick_secs: float = PHONE_TICK_SECS,
        phone_cap: int = PHONE_ITEMS_PER_TICK,
        phone_busy_tick_secs: float = PHONE_BUSY_TICK_SECS,
    ):
        self.stage = _Lane(hub, top, tick_secs=tick_secs, cap=cap, stage=True)
        self.phones = _Lane(
            hub,
            top,
            tick_secs=phone_tick_secs,
            cap=phone_cap,
            stage=False,
            busy_tick_secs=phone_busy_tick_secs,
        )
        self._lanes = (self.stage, self.phones)

    def item(self, room_id: str, public: dict[str, Any] | None, host: dict[str, Any], *, new: bool) -> None:
        """An item was created or changed. ``public`` is None when viewers must not (or no longer) see it."""
        for lane in self._lanes:
            lane.item(room_id, public, host, new=new)

    def votes(self, room_id: str, item_id: int, count: int) -> None:
        for lane in self._lanes:
            pending = lane.room(room_id)
            pending.votes[item_id] = count
            pending.top_dirty = True

    def react(self, room_id: str, counts: dict[str, int]) -> None:
        for lane in self._lanes:
            lane.room(room_id).reactions.update(counts)

    async def start(self) -> None:
        for lane in self._lanes:
            await lane.start()

    async def stop(self) -> None:
        for lane in self._lanes:
            await lane.stop()

    async def flush(self) -> None:
        """Flush both lanes now (tests, shutdown)."""
        for lane in self._lanes:
            await lane.flush()
