"""The contract every hub backend keeps, shared by the memory and Redis backend tests.

A test module subclasses ``BackendContract`` and provides a ``make`` fixture: ``await make(history=n)``
returns a started backend whose deliver callback is a fresh ``Recorder``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from server.realtime.backends.base import Backend
from server.realtime.protocol import envelope_parts, join_envelope

ROOM = "room1"
WAIT_SECS = 10.0


class Recorder:
    """A deliver callback that records every (room, audience, seq, envelope) and can be awaited."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, int, bytes]] = []
        self._changed = asyncio.Event()

    async def __call__(self, room_id: str, audience: str, seq: int, envelope: bytes) -> None:
        self.items.append((room_id, audience, seq, envelope))
        self._changed.set()

    def seen(self, audience: str = "viewer", room_id: str = ROOM) -> list[tuple[int, bytes]]:
        return [(s, e) for r, a, s, e in self.items if r == room_id and a == audience]

    def seqs(self, audience: str = "viewer", room_id: str = ROOM) -> list[int]:
        return [s for s, _e in self.seen(audience, room_id)]

    async def wait_seq(self, seq: int, audience: str = "viewer", room_id: str = ROOM) -> list[int]:
        """Wait until ``seq`` has been delivered for ``audience``; returns the seqs seen so far."""
        async with asyncio.timeout(WAIT_SECS):
            while seq not in self.seqs(audience, room_id):
                self._changed.clear()
                await self._changed.wait()
        return self.seqs(audience, room_id)


Make = Callable[..., Awaitable[tuple[Backend, Recorder]]]


def parts(text: str, ts: int = 1) -> tuple[bytes, bytes]:
    """An envelope split around its seq, as the hub builds it."""
    return envelope_parts("test", ts, b'{"text":"' + text.encode() + b'"}')


def item(audience: str, text: str) -> tuple[str, bytes, bytes]:
    prefix, suffix = parts(text)
    return audience, prefix, suffix


def envelope(text: str, seq: int) -> bytes:
    """The final envelope the backend must produce for ``item(..., text)`` at ``seq``."""
    prefix, suffix = parts(text)
    return join_envelope(prefix, seq, suffix)


async def append_n(backend: Backend, n: int, audience: str = "viewer", tag: str = "e") -> list[int]:
    seqs: list[int] = []
    for i in range(n):
        seqs += await backend.append(ROOM, [item(audience, f"{tag}{i}")])
    return seqs


class BackendContract:
    """Behaviour every backend shares (subclasses named Test* run it against one backend)."""

    async def test_append_gives_consecutive_seqs_per_audience(self, make: Make) -> None:
        """Each audience of a room has its own counter: 1, 2, 3... with no gaps."""
        backend, _rec = await make()
        assert await backend.append(ROOM, [item("viewer", "a"), item("host", "a")]) == [1, 1]
        assert await backend.append(ROOM, [item("viewer", "b")]) == [2]
        assert await backend.append(ROOM, [item("viewer", "c"), item("host", "c"), item("screen", "c")]) == [
            3,
            2,
            1,
        ]
        assert await backend.append("other-room", [item("viewer", "x")]) == [1]

    async def test_deliver_gets_every_event_once_in_order(self, make: Make) -> None:
        """A watched room's events reach deliver once each, in seq order, as prefix + seq + suffix."""
        backend, rec = await make()
        await backend.watch(ROOM)
        for i in range(5):
            await backend.append(ROOM, [item("viewer", f"v{i}"), item("host", f"h{i}")])
        assert await rec.wait_seq(5, "viewer") == [1, 2, 3, 4, 5]
        assert await rec.wait_seq(5, "host") == [1, 2, 3, 4, 5]
        assert rec.seen("viewer") == [(i + 1, envelope(f"v{i}", i + 1)) for i in range(5)]

    async def test_replay_returns_exactly_the_missed_events(self, make: Make) -> None:
        """replay(after=k) gives the events k+1..head in order, and [] when nothing was missed."""
        backend, _rec = await make()
        await append_n(backend, 5)
        assert await backend.replay(ROOM, "viewer", 2) == [(s, envelope(f"e{s - 1}", s)) for s in (3, 4, 5)]
        assert await backend.replay(ROOM, "viewer", 0) == [(s, envelope(f"e{s - 1}", s)) for s in range(1, 6)]
        assert await backend.replay(ROOM, "viewer", 5) == []
        assert await backend.replay(ROOM, "host", 0) == []

    async def test_replay_is_none_once_history_no_longer_holds_the_gap(self, make: Make) -> None:
        """With history=3 and 5 events, resuming after 1 needs seq 2, which is gone: None."""
        backend, _rec = await make(history=3)
        await append_n(backend, 5)
        assert await backend.replay(ROOM, "viewer", 1) is None
        assert await backend.replay(ROOM, "viewer", 0) is None
        assert [s for s, _e in await backend.replay(ROOM, "viewer", 2) or []] == [3, 4, 5]

    async def test_replay_beyond_the_head_is_none(self, make: Make) -> None:
        """A resume point past the stream's head (another epoch's seq) cannot be replayed."""
        backend, _rec = await make()
        await append_n(backend, 2)
        assert await backend.replay(ROOM, "viewer", 3) is None

    async def test_head_tracks_seq_with_a_stable_epoch(self, make: Make) -> None:
        """head() gives the last seq per audience; the epoch does not change as events are added."""
        backend, _rec = await make()
        first = await backend.head(ROOM, "viewer")
        assert first.seq == 0 and first.epoch
        await append_n(backend, 3)
        after = await backend.head(ROOM, "viewer")
        assert (after.epoch, after.seq) == (first.epoch, 3)
        assert (await backend.head(ROOM, "host")).seq == 0

    async def test_append_if_presence_stores_only_the_current_total(self, make: Make) -> None:
        """A presence event is appended only while its count is still the room's total; a stale one is
        dropped without a seq, and the stream stays gap-free."""
        backend, rec = await make()
        await backend.watch(ROOM)
        assert await backend.presence(ROOM, 2) == (2, True)
        assert await backend.append(ROOM, [item("viewer", "p2")], if_presence=2) == [1]
        assert await backend.presence(ROOM, 3) == (3, True)
        assert await backend.append(ROOM, [item("viewer", "p2-late")], if_presence=2) == []
        assert await backend.append(ROOM, [item("viewer", "p3"), item("host", "p3")], if_presence=3) == [2, 1]
        assert await backend.append(ROOM, [item("viewer", "next")]) == [3]
        assert await rec.wait_seq(3) == [1, 2, 3]
        assert await backend.replay(ROOM, "viewer", 0) == [
            (1, envelope("p2", 1)),
            (2, envelope("p3", 2)),
            (3, envelope("next", 3)),
        ]

    async def test_presence_reports_total_and_changes(self, make: Make) -> None:
        """presence() returns the room total and whether it differs from the last report."""
        backend, _rec = await make()
        assert await backend.presence(ROOM, 2) == (2, True)
        assert await backend.presence(ROOM, 2) == (2, False)
        assert await backend.presence_total(ROOM) == 2
        assert await backend.presence(ROOM, 3) == (3, True)
        assert await backend.presence(ROOM, 0) == (0, True)
        assert await backend.presence(ROOM, 0) == (0, False)
        assert await backend.presence_total(ROOM) == 0
