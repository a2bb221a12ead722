"""The interface every hub backend implements, and the optional powers some have (capabilities).

A capability is a small interface a backend implements when it can: code that can use it asks
``backend.capability(SharedRedis)`` and gets the backend typed as that, or None (then it does the
same work in this process). No one sniffs a backend's attributes.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import redis.asyncio as aioredis

# (room_id, audience, seq, envelope bytes). The backend calls it for every sequenced event, in
# sequence order per (room, audience), in every process that watches the room.
DeliverFn = Callable[[str, str, int, bytes], Awaitable[None]]
# (room_id, viewer_id, frame bytes): a direct frame for one viewer's connections, in any process.
PrivateFn = Callable[[str, str, bytes], None]


@dataclass(frozen=True)
class Head:
    """Where a room's streams stand: the epoch (changes when history is lost) and the last seq."""

    epoch: str
    seq: int


C = TypeVar("C")


class SharedRedis(abc.ABC):
    """Capability: the backend runs on a Redis server that every process of the app shares, so
    other state they must agree on (token buckets, exact stock counters) can live there too. The
    Redis backend has it; the in-process backend has not (one process: memory or the database)."""

    redis: aioredis.Redis  # the backend's client (its pool), for scripts and reads of one's own keys


class Backend(abc.ABC):
    """Sequencing, bounded history and cross-process fan-out for room events."""

    deliver: DeliverFn | None = None
    deliver_private: PrivateFn | None = None

    def capability(self, kind: type[C]) -> C | None:
        """This backend as ``kind`` (an optional power such as ``SharedRedis``), or None when it has
        not got it."""
        return self if isinstance(self, kind) else None

    def bind(self, deliver: DeliverFn, deliver_private: PrivateFn | None = None) -> None:
        self.deliver = deliver
        self.deliver_private = deliver_private

    async def private(self, room_id: str, viewer_id: str, envelope: bytes) -> None:
        """Send a direct frame to one viewer wherever they are connected (default: this process)."""
        if self.deliver_private is not None:
            self.deliver_private(room_id, viewer_id, envelope)

    async def private_many(self, frames: Sequence[tuple[str, str, bytes]]) -> None:
        """Several direct frames (room id, viewer id, envelope) at once."""
        for room_id, viewer_id, envelope in frames:
            await self.private(room_id, viewer_id, envelope)

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open connections; called once from the app's lifespan."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Close connections."""

    @abc.abstractmethod
    async def append(
        self, room_id: str, items: Sequence[tuple[str, bytes, bytes]], *, if_presence: int | None = None
    ) -> list[int]:
        """Sequence and store one event for several audiences, then fan it out.

        ``items`` are (audience, envelope prefix, envelope suffix); returns the seq given to each.
        With ``if_presence``, only while the room's presence total (the last ``presence()`` computed,
        by any process) is still that number, checked in the same atomic step; otherwise nothing is
        stored and the result is empty. A count computed earlier cannot then be published after a
        newer one.
        """

    @abc.abstractmethod
    async def replay(self, room_id: str, audience: str, after: int) -> list[tuple[int, bytes]] | None:
        """Events after ``after`` in order, or None when some of them are no longer held."""

    @abc.abstractmethod
    async def head(self, room_id: str, audience: str) -> Head:
        """The current epoch and last seq of one audience's stream."""

    async def watch(self, room_id: str) -> None:  # noqa: B027 - optional hook
        """Start receiving this room's events (first local connection)."""

    async def unwatch(self, room_id: str) -> None:  # noqa: B027 - optional hook
        """Stop receiving this room's events (last local connection left)."""

    @abc.abstractmethod
    async def presence(self, room_id: str, local_count: int) -> tuple[int, bool]:
        """Report this process's viewer count; returns (room total, changed since last report)."""

    @abc.abstractmethod
    async def presence_total(self, room_id: str) -> int:
        """The room's viewer count as last published."""

    async def ping(self) -> bool:
        """Readiness check."""
        return True
