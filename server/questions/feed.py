"""Coalesces the audience's high-rate changes into one ``wall`` and one ``queue`` event per room per tick.

Cost grows with audiences x ticks, not audiences x messages: 1,000 comments a second become five
frames a second per connection. The host's queue gets every item; the public wall gets a fair sample
(rules.sample_for_wall) when more arrive in a tick than a screen can show.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from server.questions import rules
from server.questions.events import QueueBatch, WallBatch
from server.realtime.hub import Hub
from server.ticker import Ticker

log = logging.getLogger("livewall.feed")

# 200 ms: fast enough that a comment feels instant, slow enough to batch a storm into few frames.
TICK_SECS = 0.2
# New items the public wall takes per tick (100 a second): more than a screen can show readably.
WALL_ITEMS_PER_TICK = 20

TopFn = Callable[[str], Awaitable[list[dict[str, Any]]]]


@dataclass
class _Pending:
    new_public: list[dict[str, Any]] = field(default_factory=list)
    changed_public: dict[int, dict[str, Any]] = field(default_factory=dict)
    removed: set[int] = field(default_factory=set)
    votes: dict[int, int] = field(default_factory=dict)
    reactions: Counter[str] = field(default_factory=Counter)
    host: dict[int, dict[str, Any]] = field(default_factory=dict)
    top_dirty: bool = False


class Feed(Ticker):
    """Per-process buffer of wall and queue changes, flushed every tick."""

    def __init__(self, hub: Hub, top: TopFn, *, tick_secs: float = TICK_SECS, cap: int = WALL_ITEMS_PER_TICK):
        super().__init__(tick_secs, "feed")
        self.hub = hub
        self.top = top
        self.cap = cap
        self._rooms: dict[str, _Pending] = {}

    def _room(self, room_id: str) -> _Pending:
        pending = self._rooms.get(room_id)
        if pending is None:
            pending = self._rooms[room_id] = _Pending()
        self.wake()
        return pending

    def item(self, room_id: str, public: dict[str, Any] | None, host: dict[str, Any], *, new: bool) -> None:
        """An item was created or changed. ``public`` is None when viewers must not (or no longer) see it."""
        pending = self._room(room_id)
        item_id = int(host["id"])
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

    def votes(self, room_id: str, item_id: int, count: int) -> None:
        pending = self._room(room_id)
        pending.votes[item_id] = count
        pending.top_dirty = True

    def react(self, room_id: str, counts: dict[str, int]) -> None:
        self._room(room_id).reactions.update(counts)

    async def flush(self) -> None:
        rooms, self._rooms = self._rooms, {}
        for room_id, p in rooms.items():
            candidates = [
                rules.Candidate(
                    int(i["id"]), i["kind"], int(i["votes"]), str(p.host[int(i["id"])]["viewer_id"])
                )
                for i in p.new_public
            ]
            chosen, dropped = rules.sample_for_wall(candidates, self.cap)
            keep = set(chosen)
            merged = {int(i["id"]): i for i in p.new_public if int(i["id"]) in keep}
            merged.update(p.changed_public)  # a later change of the same item wins
            public_items = [merged[k] for k in sorted(merged) if k not in p.removed]
            votes = {str(k): v for k, v in p.votes.items()}
            top = await self.top(room_id) if p.top_dirty else None
            if public_items or p.removed or votes or p.reactions or top is not None or dropped:
                await self.hub.publish(
                    room_id,
                    WallBatch(
                        items=public_items,
                        removed=sorted(p.removed),
                        votes=votes,
                        reactions=dict(p.reactions),
                        top=top,
                        dropped=dropped,
                    ),
                )
            if p.host or votes or p.reactions:
                await self.hub.publish(
                    room_id, QueueBatch(items=list(p.host.values()), votes=votes, reactions=dict(p.reactions))
                )
