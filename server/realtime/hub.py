"""The hub: local connections per room and audience, fan-out, resume, presence.

Fan-out cost is what matters at 10,000 viewers. Each event is encoded once per audience (by the
publisher), framed once per audience here, and written to every connection with one synchronous
call. Events that arrive within one loop iteration are coalesced: a connection gets one write per
flush however many events it carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from server.metrics import Metrics
from server.realtime.backends.base import Backend
from server.realtime.caps import ConnectionCaps
from server.realtime.connection import Connection, frame
from server.realtime.fanout import FanOut, LocalRoom
from server.realtime.protocol import AUDIENCES, Event, direct_frame, dumps, envelope_parts
from server.realtime.tick import WINDOW_SECS, TickController, sched_wait

log = logging.getLogger("livewall.hub")

# A flush writes to at most this many connections before letting the loop run other work (~3 ms
# here). Each await of a host's action or a claim waits for one chunk: with 1,000 (~15 ms under
# load) a host's announcements at 10 a second queued behind the fan-outs of the ones before.
FLUSH_CHUNK = 250

PresenceHook = Callable[[str, int], Awaitable[None]]
SnapshotFn = Callable[[Connection], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Resume:
    """Where a reconnecting client stood: the stream epoch and the last seq it applied."""

    epoch: str
    seq: int


class Hub:
    """Routes sequenced room events from the backend to this process's connections."""

    def __init__(
        self,
        backend: Backend,
        metrics: Metrics,
        *,
        presence_tick_secs: float = 1.0,
        coalesce_secs: float = 0.0,
        coalesce_min_conns: int = 0,
        coalesce_busy: float = 0.0,
        coalesce_starved_secs: float = 0.0,
    ) -> None:
        self.backend = backend
        self.metrics = metrics
        self.presence_tick_secs = presence_tick_secs
        # While writing fan-outs takes at least coalesce_busy of the loop's time (0: always), an
        # audience of at least coalesce_min_conns connections is written at most once per
        # coalesce_secs: events of the same tick share each connection's write (see _flush); the
        # longer coalesce_starved_secs while the loop is starved of CPU (server/realtime/tick.py).
        self.ticks = TickController(
            secs=coalesce_secs,
            min_conns=coalesce_min_conns,
            busy=coalesce_busy,
            starved_secs=coalesce_starved_secs,
        )
        self._cpu_clock: Callable[[], float] = time.thread_time  # the loop thread's CPU seconds
        self._wait_clock: Callable[[], float | None] = sched_wait  # its seconds waiting for a CPU
        self._next_write: dict[tuple[str, str], float] = {}  # loop time a held audience waits for
        self._held: set[str] = set()  # rooms whose outbox waits for its tick
        self._wake: asyncio.TimerHandle | None = None
        self.rooms: dict[str, LocalRoom] = {}
        self._dirty: set[str] = set()
        self._flush_scheduled = False
        self._jobs: deque[FanOut] = deque()  # fan-outs in progress, oldest first
        self._busy: set[tuple[str, str]] = set()  # (room, audience) with a fan-out in progress
        self._presence_task: asyncio.Task[None] | None = None
        self._posted: list[tuple[str, str, bytes]] = []  # private frames waiting to go
        self._posting: asyncio.Future[None] | None = None
        # Connections per client address and per identity in this process (the endpoint counts).
        self.caps: ConnectionCaps[Connection] = ConnectionCaps()
        self.opened = 0  # connections attached since start
        self.closed = 0  # and detached
        self.on_presence: PresenceHook | None = None
        # The shared snapshot of each (room, audience), valid while the stream has not moved:
        # a join or reconnect storm reads storage once per event, not once per phone.
        self._snapshots: dict[tuple[str, str], tuple[str, int, asyncio.Future[dict[str, Any]]]] = {}
        backend.bind(self._deliver, self._deliver_private)

    async def start(self) -> None:
        await self.backend.start()
        self._presence_task = asyncio.create_task(self._presence_loop(), name="livewall-presence")

    async def stop(self) -> None:
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        if self._presence_task is not None:
            self._presence_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._presence_task
        if self._posting is not None:
            await self._posting  # private frames already posted still go out
        await self.backend.stop()

    # --- publishing -----------------------------------------------------------------------------

    async def publish(self, room_id: str, event: Event, *, if_presence: int | None = None) -> dict[str, int]:
        """Sequence and fan out one event; returns the seq it got in each audience's stream.

        Call only after the state change it describes is committed (actions modules do). With
        ``if_presence``, the event is published only while the room's presence total is still that
        number (``Backend.append``); an empty result says it was not.
        """
        ts = time.time_ns() // 1_000_000
        items: list[tuple[str, bytes, bytes]] = []
        last: tuple[Any, bytes] | None = None
        for audience in event.audiences:
            payload = event.payload(audience)
            data = last[1] if last is not None and last[0] == payload else dumps(payload)
            last = (payload, data)
            prefix, suffix = envelope_parts(event.type, ts, data)
            items.append((audience, prefix, suffix))
        seqs = await self.backend.append(room_id, items, if_presence=if_presence)
        if not seqs:
            return {}
        self.metrics.events_published.labels(event.type).inc()
        return dict(zip(event.audiences, seqs, strict=True))

    async def _deliver(self, room_id: str, audience: str, seq: int, envelope: bytes) -> None:
        room = self.rooms.get(room_id)
        if room is None:
            return
        room.outbox[audience].append((seq, envelope))
        self._dirty.add(room_id)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Write what the rooms' outboxes hold, at most ``FLUSH_CHUNK`` connections per call.

        A broadcast to 10,000 connections is ~10,000 writes (on loopback each also runs the
        receiver's TCP path): done in one callback it holds the loop for 100 ms or more, and every
        claim or message arriving meanwhile waits. So a large fan-out is written in chunks, with
        the loop free in between. Order holds per connection: a fan-out in progress is finished
        before anything newer for that room and audience is taken from the outbox.

        Ticks (``self.ticks``, server/realtime/tick.py): while writing keeps the loop busy, a large
        audience is written at most once per tick, and what arrives sooner shares that write.
        """
        self._flush_scheduled = False
        ticks = self.ticks
        budget = FLUSH_CHUNK
        delivered = 0
        now = asyncio.get_running_loop().time()
        started = time.perf_counter()
        while self._jobs and budget > 0:
            job = self._jobs[0]
            n, written, done = job.run(budget)
            budget -= n
            delivered += written
            if done:
                self._jobs.popleft()
        if budget > 0:
            tick, min_conns = ticks.length(), ticks.min_conns
            dirty, self._dirty = self._dirty, set()
            for room_id in dirty:
                room = self.rooms.get(room_id)
                if room is None:
                    continue
                for audience, items in room.outbox.items():
                    if not items or (room_id, audience) in self._busy:
                        continue
                    conns = room.conns[audience]
                    if tick and len(conns) >= min_conns:
                        due = self._next_write.get((room_id, audience), 0.0)
                        if now < due:
                            self._hold(room_id, due)
                            continue
                        self._next_write[(room_id, audience)] = now + tick
                    room.outbox[audience] = []
                    if not conns:
                        continue
                    job = FanOut(self, room_id, audience, items, tuple(conns))
                    if budget > 0:
                        n, written, done = job.run(budget)
                        budget -= n
                        delivered += written
                        if done:
                            continue
                    self._jobs.append(job)
                    self._busy.add((room_id, audience))
        if delivered:
            self.metrics.deliveries.inc(delivered)
        if self._jobs or self._dirty:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        ticks.window_writing += time.perf_counter() - started
        elapsed = now - ticks.window_start
        if elapsed >= WINDOW_SECS:
            self._measure(now)
        elif ticks.begins_early(elapsed):
            ticks.begin_early(elapsed, self._cpu_clock(), self._wait_clock())

    def _measure(self, now: float) -> None:
        """End the tick controller's measuring window with the loop thread's clocks read now."""
        self.ticks.end_window(now, self._cpu_clock(), self._wait_clock())

    def _hold(self, room_id: str, due: float) -> None:
        self._held.add(room_id)
        wake = self._wake
        if wake is None or due < wake.when():
            if wake is not None:
                wake.cancel()
            self._wake = asyncio.get_running_loop().call_at(due, self._release)

    def _release(self) -> None:
        """A held tick is due: its rooms are flushed (any not yet due are held again)."""
        self._wake = None
        self._dirty |= self._held
        self._held.clear()
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    # --- connections ----------------------------------------------------------------------------

    async def _shared_snapshot(
        self, conn: Connection, epoch: str, seq: int, build: SnapshotFn
    ) -> dict[str, Any]:
        key = (conn.room_id, conn.audience)
        entry = self._snapshots.get(key)
        if entry is None or entry[0] != epoch or entry[1] != seq or entry[2].cancelled():
            future = asyncio.ensure_future(build(conn))
            entry = self._snapshots[key] = (epoch, seq, future)
        try:
            return await asyncio.shield(entry[2])
        except Exception:
            if self._snapshots.get(key) is entry:
                del self._snapshots[key]
            raise

    async def attach(
        self,
        conn: Connection,
        resume: Resume | None,
        snapshot: SnapshotFn,
        welcome: dict[str, Any],
        private: SnapshotFn | None = None,
    ) -> dict[str, Any]:
        """Register a connection and bring it up to date: replay what it missed, or a snapshot.

        Sends the welcome frame, then the missed or pending events, in order; returns the welcome.
        """
        room = self.rooms.get(conn.room_id)
        if room is None:
            room = self.rooms[conn.room_id] = LocalRoom()
        room.conns[conn.audience][conn] = None
        self.opened += 1
        viewer_id = conn.principal.viewer_id
        if viewer_id is not None and conn.audience == "viewer":
            held = room.viewers.get(viewer_id)
            if held is None:
                room.viewers[viewer_id] = conn
            elif isinstance(held, dict):
                held[conn] = None
            else:
                room.viewers[viewer_id] = {held: None, conn: None}
        self.metrics.connections.labels(conn.audience).inc()
        conn.on_slow = self.metrics.slow_disconnects.inc
        await self.backend.watch(conn.room_id)

        head = await self.backend.head(conn.room_id, conn.audience)
        replay: list[tuple[int, bytes]] | None = None
        reason = "fresh"
        if resume is not None:
            if resume.epoch != head.epoch:
                reason = "epoch_changed"
            else:
                replay = await self.backend.replay(conn.room_id, conn.audience, resume.seq)
                reason = "resumed" if replay is not None else "history_expired"
            self.metrics.resumes.labels("hit" if replay is not None else "miss").inc()

        out = dict(welcome, epoch=head.epoch)
        if replay is not None and resume is not None:
            out.update(resumed=True, seq=resume.seq, missed=len(replay))
            conn.send(direct_frame("welcome", out))
            upto = resume.seq
            catchup = replay
        else:
            snap = await self._shared_snapshot(conn, head.epoch, head.seq, snapshot)
            if private is not None:
                snap = {**snap, **(await private(conn))}
            out.update(resumed=False, reason=reason, seq=head.seq, snapshot=snap)
            conn.send(direct_frame("welcome", out))
            upto = head.seq
            catchup = []
        pending = conn.pending or []
        conn.pending = None
        missed: list[bytes] = []
        for seq, env in [*catchup, *pending]:
            if seq > upto:
                missed.append(env)
                upto = seq
        if missed:
            # One write for all of them: a phone back after ten seconds has ~100 events to catch up.
            conn.write_frames(b"".join([frame(env) for env in missed]), missed)
        conn.last_seq = upto
        return out

    def detach(self, conn: Connection) -> None:
        """Forget a closed connection (the room stays watched until the next presence tick)."""
        conn.stop()
        room = self.rooms.get(conn.room_id)
        if room is None or conn not in room.conns[conn.audience]:
            return
        del room.conns[conn.audience][conn]
        self.closed += 1
        self.metrics.connections.labels(conn.audience).dec()
        viewer_id = conn.principal.viewer_id
        held = room.viewers.get(viewer_id) if viewer_id is not None else None
        if held is None or viewer_id is None:
            return
        if held is conn:
            del room.viewers[viewer_id]
        elif isinstance(held, dict):
            held.pop(conn, None)
            if len(held) == 1:
                room.viewers[viewer_id] = next(iter(held))
            elif not held:
                del room.viewers[viewer_id]

    def connections(self, room_id: str, audience: str | None = None) -> list[Connection]:
        room = self.rooms.get(room_id)
        if room is None:
            return []
        audiences = [audience] if audience else list(AUDIENCES)
        return [c for a in audiences for c in room.conns[a]]

    def send_to_viewer(self, room_id: str, viewer_id: str, envelope: bytes) -> int:
        """A direct frame to every connection of one viewer in this process; returns how many."""
        room = self.rooms.get(room_id)
        held = room.viewers.get(viewer_id) if room is not None else None
        if held is None:
            return 0
        mine = tuple(held) if isinstance(held, dict) else (held,)
        for conn in mine:
            conn.send(envelope)
        return len(mine)

    async def send_private(self, room_id: str, viewer_id: str, envelope: bytes) -> None:
        """A direct frame (no seq) to one viewer's connections in every process. Private state is
        also in each welcome, so a viewer who was offline loses nothing."""
        await self.backend.private(room_id, viewer_id, envelope)

    def post_private(self, room_id: str, viewer_id: str, envelope: bytes) -> None:
        """``send_private`` without waiting (an answer need not wait for the viewer's other devices).
        Frames posted meanwhile go out together: with Redis, one pipelined round trip."""
        self._posted.append((room_id, viewer_id, envelope))
        if self._posting is None or self._posting.done():
            self._posting = asyncio.ensure_future(self._post())

    async def _post(self) -> None:
        while self._posted:
            frames, self._posted = self._posted, []
            try:
                await self.backend.private_many(frames)
            except Exception:
                log.warning("%d private frames were not sent", len(frames), exc_info=True)

    def _deliver_private(self, room_id: str, viewer_id: str, envelope: bytes) -> None:
        self.send_to_viewer(room_id, viewer_id, envelope)

    def local_viewers(self, room_id: str) -> int:
        room = self.rooms.get(room_id)
        return len(room.viewers) if room is not None else 0

    # --- presence -------------------------------------------------------------------------------

    async def presence_tick(self) -> None:
        """Report local viewer counts; publish through the hook where the room's total changed."""
        for room_id in list(self.rooms):
            room = self.rooms[room_id]
            try:
                total, changed = await self.backend.presence(room_id, len(room.viewers))
                if changed and self.on_presence is not None:
                    await self.on_presence(room_id, total)
                if room.empty() and self.rooms.get(room_id) is room:
                    del self.rooms[room_id]
                    self._held.discard(room_id)
                    for audience in AUDIENCES:
                        self._snapshots.pop((room_id, audience), None)
                        self._next_write.pop((room_id, audience), None)
                    await self.backend.unwatch(room_id)
            except Exception:
                log.exception("presence tick failed", extra={"room": room_id})

    async def _presence_loop(self) -> None:
        while True:
            await asyncio.sleep(self.presence_tick_secs)
            await self.presence_tick()
