"""The hub's bookkeeping of connections: private frames go to one viewer's connections only, through
an index rather than a scan of the room; counts of opened and closed connections feed the GC policy."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

import server.realtime.hub as hub_module
from server.discounts.events import StockTick
from server.metrics import Metrics
from server.realtime.backends.memory import MemoryBackend
from server.realtime.hub import Hub

ROOM = "room1"


_written = asyncio.Event()  # set by every Stub write


class Stub:
    """What the hub uses of a connection."""

    def __init__(self, viewer_id: str | None, audience: str = "viewer") -> None:
        self.room_id = ROOM
        self.audience = audience
        self.principal = SimpleNamespace(viewer_id=viewer_id)
        self.pending: list[tuple[int, bytes]] | None = []
        self.last_seq = 0
        self.on_slow: Any = None
        self.frames: list[bytes] = []
        self.writes: list[int] = []  # events per write

    def send(self, envelope: bytes) -> None:
        self.frames.append(envelope)

    def write_frames(self, _framed: bytes, envelopes: list[bytes]) -> None:
        self.frames.extend(envelopes)
        self.writes.append(len(envelopes))
        _written.set()

    def stop(self) -> None:
        pass


async def _snapshot(_conn: Any) -> dict[str, Any]:
    return {}


async def test_private_frames_reach_only_that_viewers_connections() -> None:
    hub = Hub(MemoryBackend(history=10), Metrics())
    await hub.backend.start()
    try:
        ann_phone, ann_tablet, bo, host = Stub("ann"), Stub("ann"), Stub("bo"), Stub(None, "host")
        for conn in (ann_phone, ann_tablet, bo, host):
            await hub.attach(conn, None, _snapshot, welcome={})  # type: ignore[arg-type]
        assert hub.local_viewers(ROOM) == 2
        assert hub.send_to_viewer(ROOM, "ann", b"one") == 2
        assert hub.send_to_viewer(ROOM, "nobody", b"x") == 0
        assert hub.send_to_viewer("elsewhere", "ann", b"x") == 0
        assert [f for f in ann_phone.frames if not f.startswith(b'{"type":"welcome"')] == [b"one"]
        assert [f for f in ann_tablet.frames if not f.startswith(b'{"type":"welcome"')] == [b"one"]
        assert all(f.startswith(b'{"type":"welcome"') for f in bo.frames + host.frames)

        hub.detach(ann_phone)  # type: ignore[arg-type]
        hub.detach(ann_phone)  # type: ignore[arg-type]  # twice: counted once
        assert hub.send_to_viewer(ROOM, "ann", b"two") == 1
        hub.detach(ann_tablet)  # type: ignore[arg-type]
        assert hub.send_to_viewer(ROOM, "ann", b"three") == 0
        assert hub.local_viewers(ROOM) == 1
        assert (hub.opened, hub.closed) == (4, 2)
    finally:
        await hub.backend.stop()


async def _attach_fresh(hub: Hub, conns: list[Stub]) -> None:
    """Attach ``conns`` to ``hub`` and forget what attaching wrote (the welcome)."""
    for conn in conns:
        await hub.attach(conn, None, _snapshot, welcome={})  # type: ignore[arg-type]
        conn.frames.clear()
        conn.writes.clear()


async def test_a_large_fan_out_is_written_in_chunks_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the flush limited to 2 connections per loop turn, events published while a fan-out is
    in progress still reach every connection, each exactly once and in order, and the loop gets
    to run between chunks."""
    monkeypatch.setattr(hub_module, "FLUSH_CHUNK", 2)
    hub = Hub(MemoryBackend(history=10), Metrics())
    await hub.backend.start()
    try:
        conns = [Stub(f"v{i}") for i in range(5)]
        await _attach_fresh(hub, conns)
        await hub.publish(ROOM, StockTick(counts={"1": {"v": 1}}))
        for _ in range(100):  # loop turns, not time: the first chunk goes out on the next one
            if any(c.frames for c in conns):
                break
            await asyncio.sleep(0)
        # The first chunk is out, the rest not yet: the loop runs in between.
        assert [len(c.frames) for c in conns] == [1, 1, 0, 0, 0]
        await hub.publish(ROOM, StockTick(counts={"1": {"v": 2}}))
        await hub.publish(ROOM, StockTick(counts={"1": {"v": 3}}))
        turns = 0
        while turns < 100 and not all(len(c.frames) == 3 for c in conns):
            turns += 1
            await asyncio.sleep(0)  # one loop turn per chunk
        for conn in conns:
            versions = [orjson.loads(f)["data"]["counts"]["1"]["v"] for f in conn.frames]
            seqs = [orjson.loads(f)["seq"] for f in conn.frames]
            assert versions == [1, 2, 3] and seqs == sorted(seqs)
        assert 2 < turns < 100
        assert not hub._jobs and not hub._busy
    finally:
        await hub.backend.stop()


async def _until(condition: Any) -> None:
    async with asyncio.timeout(5):
        while not condition():
            _written.clear()
            await _written.wait()


async def test_a_large_audience_gets_the_events_of_a_tick_in_one_write() -> None:
    """Coalescing: for an audience at or over the threshold, the first event after a quiet tick goes
    at once, the next ones wait for the tick and share one write per connection; a smaller audience
    (the host here) gets every event at once. Nothing is lost or reordered."""
    hub = Hub(MemoryBackend(history=50), Metrics(), coalesce_secs=0.15, coalesce_min_conns=3, coalesce_busy=0)
    await hub.backend.start()
    try:
        viewers = [Stub(f"v{i}") for i in range(3)]
        host = Stub(None, "host")
        await _attach_fresh(hub, [*viewers, host])
        loop = asyncio.get_running_loop()
        await hub.publish(ROOM, StockTick(counts={"1": {"v": 1}}))
        first = loop.time()
        await _until(lambda: all(v.frames for v in viewers) and host.frames)
        assert loop.time() - first < 0.1  # at once, not after the tick
        for v in (2, 3, 4):
            await hub.publish(ROOM, StockTick(counts={"1": {"v": v}}))
        await _until(lambda: len(host.frames) == 4)
        assert host.writes == [1, 3]  # at once (events of one loop turn always share a write)
        assert all(len(v.frames) == 1 for v in viewers)  # the viewers' tick has not come yet
        await _until(lambda: all(len(v.frames) == 4 for v in viewers))
        assert loop.time() - first >= 0.15
        for conn in viewers:
            assert conn.writes == [1, 3]
            assert [orjson.loads(f)["data"]["counts"]["1"]["v"] for f in conn.frames] == [1, 2, 3, 4]
            assert [orjson.loads(f)["seq"] for f in conn.frames] == [1, 2, 3, 4]
        assert not hub._held and hub._wake is None
        # Once the tick has passed (here: made to look a second old) the next event goes at once.
        hub._next_write[(ROOM, "viewer")] = loop.time() - 1.0
        sent = loop.time()
        await hub.publish(ROOM, StockTick(counts={"1": {"v": 5}}))
        await _until(lambda: all(len(v.frames) == 5 for v in viewers))
        assert loop.time() - sent < 0.1 and all(v.writes == [1, 3, 1] for v in viewers)
    finally:
        await hub.stop()


def _ticking_hub(history: int = 5, coalesce_busy: float = 0.6, coalesce_starved_secs: float = 0.0) -> Hub:
    """A hub that ticks audiences of 3 or more every 150 ms once writing takes ``coalesce_busy``."""
    return Hub(
        MemoryBackend(history=history),
        Metrics(),
        coalesce_secs=0.15,
        coalesce_min_conns=3,
        coalesce_busy=coalesce_busy,
        coalesce_starved_secs=coalesce_starved_secs,
    )


async def test_a_starved_hub_writes_a_large_audience_once_per_starved_tick() -> None:
    """While starved, the next write of a large audience is due after coalesce_starved_secs."""
    hub = _ticking_hub(history=50, coalesce_busy=0, coalesce_starved_secs=0.3)
    hub.ticks.starved = True
    await hub.backend.start()
    try:
        viewers = [Stub(f"v{i}") for i in range(3)]
        await _attach_fresh(hub, viewers)
        loop = asyncio.get_running_loop()
        await hub.publish(ROOM, StockTick(counts={"1": {"v": 1}}))
        first = loop.time()
        await _until(lambda: all(v.frames for v in viewers))
        await hub.publish(ROOM, StockTick(counts={"1": {"v": 2}}))
        await _until(lambda: all(len(v.frames) == 2 for v in viewers))
        assert loop.time() - first >= 0.3
        assert all(v.writes == [1, 1] for v in viewers)
    finally:
        await hub.stop()


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_frame_matches_the_websockets_library_at_every_length_boundary(size: int) -> None:
    from websockets.frames import Frame, Opcode

    from server.realtime.connection import frame

    envelope = b"x" * size
    assert frame(envelope) == Frame(Opcode.TEXT, envelope).serialize(mask=False)


async def test_ticks_begin_early_in_a_window_that_is_already_busy() -> None:
    """A flash sale's first broadcasts: writing took nearly all of the first quarter second, so
    ticks begin without waiting for the whole second (stopping still takes a window). The busy share
    alone (0.6) is not enough this early."""
    hub = _ticking_hub()
    now = asyncio.get_running_loop().time()
    for into_window, writing, ticks in ((0.1, 0.1, False), (0.3, 0.2, False), (0.3, 0.28, True)):
        hub.ticks.coalescing = False
        hub.ticks.window_start, hub.ticks.window_writing = now - into_window, writing
        hub._flush()
        assert hub.ticks.coalescing is ticks, (into_window, writing)


async def test_early_ticks_are_starved_ticks_when_the_loop_lacks_the_cpu() -> None:
    """Ticks that begin early in a window also take the starved length at once when the loop was on
    the CPU for less than STARVED of its writing so far (two servers' first broadcasts)."""
    hub = _ticking_hub(coalesce_starved_secs=0.2)
    hub._wait_clock = lambda: None
    cpu = 10.0
    hub._cpu_clock = lambda: cpu
    now = asyncio.get_running_loop().time()
    for on_cpu, starved in ((0.29, False), (0.15, True)):
        hub.ticks.coalescing = hub.ticks.starved = False
        hub.ticks.window_start, hub.ticks.window_writing, hub.ticks.window_cpu = now - 0.3, 0.29, cpu - on_cpu
        hub._flush()
        assert (hub.ticks.coalescing, hub.ticks.starved) == (True, starved), on_cpu
    # Where the kernel counts the thread's waits for a CPU, they decide (0.29 s of writing so far).
    hub._wait_clock = lambda: 5.0
    for waited, starved in ((0.01, False), (0.1, True)):
        hub.ticks.coalescing = hub.ticks.starved = False
        hub.ticks.window_start, hub.ticks.window_writing, hub.ticks.window_cpu = now - 0.3, 0.29, cpu - 0.15
        hub.ticks.window_wait = 5.0 - waited
        hub._flush()
        assert (hub.ticks.coalescing, hub.ticks.starved) == (True, starved), waited
