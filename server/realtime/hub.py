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
from server.realtime.protocol import AUDIENCES, Event, direct_frame, dumps, envelope_parts

log = logging.getLogger("livewall.hub")

# A flush writes to at most this many connections before letting the loop run other work (~3 ms
# here). Each await of a host's action or a claim waits for one chunk: with 1,000 (~15 ms under
# load) a host's announcements at 10 a second queued behind the fan-outs of the ones before.
FLUSH_CHUNK = 250
# Share of a second the loop's thread spends on the CPU from which large audiences are written in
# ticks whatever the writing's own share (see Hub._measure), and below which that stops.
SATURATED = 0.9
UNSATURATED = 0.7
# Ticks may begin this far into a measuring window, if writing took SATURATED of it so far.
EARLY_SECS = 0.25
# Starved: over a window in which writing took the busy share, the loop's thread waited for a CPU
# (runnable, the cores busy with other processes: another server, the clients) for at least this
# share of its writing time. Ticks are then the longer ``coalesce_starved_secs`` until it waits less
# than a third of that.
STARVED = 0.15


def _sched_wait() -> float | None:
    """Seconds the calling thread has spent runnable but waiting for a CPU, as the kernel counts them
    (Linux ``/proc/thread-self/schedstat``); None where that is not available. Unlike a comparison of
    wall and CPU time this leaves out time spent waiting for the GIL (another thread of this process
    running, which cores to spare would not help)."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


PresenceHook = Callable[[str, int], Awaitable[None]]
SnapshotFn = Callable[[Connection], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Resume:
    """Where a reconnecting client stood: the stream epoch and the last seq it applied."""

    epoch: str
    seq: int


class _LocalRoom:
    __slots__ = ("conns", "outbox", "viewers")

    def __init__(self) -> None:
        # dicts as insertion-ordered sets: iteration over values is the hot loop of fan-out
        self.conns: dict[str, dict[Connection, None]] = {a: {} for a in AUDIENCES}
        self.outbox: dict[str, list[tuple[int, bytes]]] = {a: [] for a in AUDIENCES}
        # viewer id -> that viewer's open connections (tabs, devices): private frames go straight
        # to them instead of scanning the room
        # (most viewers have one: then the connection itself, not a dict of ~220 bytes)
        self.viewers: dict[str, Connection | dict[Connection, None]] = {}

    def empty(self) -> bool:
        return not any(self.conns.values())


class _FanOut:
    """One batch of events for one room and audience, being written to its connections."""

    __slots__ = ("audience", "conns", "envelopes", "framed", "hub", "items", "next", "room_id")

    def __init__(
        self,
        hub: Hub,
        room_id: str,
        audience: str,
        items: list[tuple[int, bytes]],
        conns: tuple[Connection, ...],
    ) -> None:
        self.hub = hub
        self.room_id = room_id
        self.audience = audience
        self.items = items
        self.conns = conns
        self.envelopes = [env for _seq, env in items]
        self.framed = b"".join([frame(env) for env in self.envelopes])
        self.next = 0

    def run(self, budget: int) -> tuple[int, int, bool]:
        """Go through up to ``budget`` more connections; returns (how many, events written, finished)."""
        items, framed, envelopes = self.items, self.framed, self.envelopes
        first_seq, last_seq = items[0][0], items[-1][0]
        start = self.next
        end = min(len(self.conns), start + budget)
        written = 0
        for conn in self.conns[start:end]:
            pending = conn.pending
            if pending is not None:
                pending.extend(items)
                continue
            if last_seq <= conn.last_seq:
                continue
            if first_seq <= conn.last_seq:
                # Partly seen already (resume overlap): send only the new ones.
                fresh = [env for seq, env in items if seq > conn.last_seq]
                conn.write_frames(b"".join([frame(e) for e in fresh]), fresh)
                written += len(fresh)
            else:
                conn.write_frames(framed, envelopes)
                written += len(envelopes)
            conn.last_seq = last_seq
        self.next = end
        done = end >= len(self.conns)
        if done:
            self.hub._busy.discard((self.room_id, self.audience))
            room = self.hub.rooms.get(self.room_id)
            if room is not None and room.outbox[self.audience]:
                self.hub._dirty.add(self.room_id)  # what arrived meanwhile goes next
        return end - start, written, done


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
        # coalesce_secs: events of the same tick share each connection's write (see _flush).
        self.coalesce_secs = coalesce_secs
        self.coalesce_min_conns = coalesce_min_conns
        self.coalesce_busy = coalesce_busy
        # The tick while the loop is starved of CPU (see _measure); 0 or less than coalesce_secs: none.
        self.coalesce_starved_secs = coalesce_starved_secs
        self._coalescing = coalesce_busy <= 0
        self._starved = False
        self._window_start = 0.0  # loop time the current measuring window began
        self._window_writing = 0.0  # seconds spent in _flush during it
        self._window_cpu = 0.0  # the loop thread's CPU time when it began
        self._cpu_clock: Callable[[], float] = time.thread_time  # the loop thread's CPU seconds
        self._wait_clock: Callable[[], float | None] = _sched_wait  # its seconds waiting for a CPU
        self._window_wait: float | None = None  # that when the window began (None: not known)
        self._next_write: dict[tuple[str, str], float] = {}  # loop time a held audience waits for
        self._held: set[str] = set()  # rooms whose outbox waits for its tick
        self._wake: asyncio.TimerHandle | None = None
        self.rooms: dict[str, _LocalRoom] = {}
        self._dirty: set[str] = set()
        self._flush_scheduled = False
        self._jobs: deque[_FanOut] = deque()  # fan-outs in progress, oldest first
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

        Ticks: each write costs the same few microseconds of system time however many events it
        carries. While writing takes ``coalesce_busy`` of the loop's time or more (measured each
        second; ticks stop below half of it), a large audience is written at most once per
        ``coalesce_secs``: what arrives sooner waits for the tick and goes in the same write as
        whatever else arrives by then; the first event after a quiet tick goes at once. At 10 events
        a second to 10,000 phones a 150 ms tick cuts the writes (and the phones' reads) by about a
        third for at most that much more latency; a server with time to spare writes at once.
        """
        self._flush_scheduled = False
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
            dirty, self._dirty = self._dirty, set()
            for room_id in dirty:
                room = self.rooms.get(room_id)
                if room is None:
                    continue
                for audience, items in room.outbox.items():
                    if not items or (room_id, audience) in self._busy:
                        continue
                    conns = room.conns[audience]
                    if self._coalescing and self.coalesce_secs > 0 and len(conns) >= self.coalesce_min_conns:
                        due = self._next_write.get((room_id, audience), 0.0)
                        if now < due:
                            self._hold(room_id, due)
                            continue
                        tick = self.coalesce_starved_secs if self._starved else self.coalesce_secs
                        self._next_write[(room_id, audience)] = now + tick
                    room.outbox[audience] = []
                    if not conns:
                        continue
                    job = _FanOut(self, room_id, audience, items, tuple(conns))
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
        self._window_writing += time.perf_counter() - started
        elapsed = now - self._window_start
        if elapsed >= 1.0:
            self._measure(now)
        elif (
            not self._coalescing
            and self.coalesce_busy > 0
            and elapsed >= EARLY_SECS
            and self._window_writing >= SATURATED * elapsed
        ):
            # Writing nearly all the time already a quarter of the way into the window (a flash
            # sale's first broadcasts to 10,000 phones): tick now rather than after a second of
            # falling behind. (Only this clear a case: at 5,000 phones the first broadcasts of a
            # burst take ~60 % of the first quarter second, and ticking then costs them latency.)
            # Starved already (see _measure): the longer tick from now on, too.
            self._coalescing = True
            share = self._window_writing / elapsed
            cpu = (self._cpu_clock() - self._window_cpu) / elapsed
            self._starved = self._starving(share, self._waited(elapsed, share, cpu, self._wait_clock()))

    def _measure(self, now: float) -> None:
        """End a measuring window: tick while writing took ``coalesce_busy`` of it (half, once ticking),
        or while the loop had no time to spare (``SATURATED`` of it on the CPU; ``UNSATURATED`` to
        stop): during a reconnect storm welcomes, not writes, fill the loop, and every write saved
        is a welcome sooner.

        Ticks are longer while the loop is starved: writing took ``coalesce_busy`` of the window and
        the thread waited for a CPU for at least ``STARVED`` of that time, the cores busy with other
        processes. The same writes in fewer, larger batches then leave those processes (on one
        machine, the phones' own reads) the CPU sooner. A process with cores to spare is not
        starved, so a single server keeps the short tick. Starved ticks last until the thread waits
        for a CPU less than a third of ``STARVED`` of its writing time. With ``coalesce_busy`` 0
        (always ticking) nothing is measured and ticks keep ``coalesce_secs``."""
        elapsed = max(now - self._window_start, 1e-9)
        share = self._window_writing / elapsed
        cpu = self._cpu_clock()
        loop_share = (cpu - self._window_cpu) / elapsed
        wait = self._wait_clock()
        waited = self._waited(elapsed, share, loop_share, wait)
        if self.coalesce_busy > 0:
            if self._coalescing:
                self._coalescing = share >= self.coalesce_busy / 2 or loop_share >= UNSATURATED
            else:
                self._coalescing = share >= self.coalesce_busy or loop_share >= SATURATED
            if not self._coalescing:
                self._starved = False
            elif self._starved:
                self._starved = waited >= STARVED / 3 * share
            else:
                self._starved = share >= self.coalesce_busy and self._starving(share, waited)
        self._window_start, self._window_writing, self._window_cpu = now, 0.0, cpu
        self._window_wait = wait

    def _starving(self, share: float, waited: float) -> bool:
        """Whether starved ticks begin: there is a longer tick, and the thread waited for a CPU for
        ``STARVED`` of its writing time (both shares of the window so far)."""
        return self.coalesce_starved_secs > self.coalesce_secs and waited >= STARVED * share

    def _waited(self, elapsed: float, writing: float, cpu: float, wait: float | None) -> float:
        """The share of the window so far the loop's thread waited for a CPU: the kernel's count
        where it keeps one, else the share of it spent writing (all CPU work) off the CPU. ``writing``
        and ``cpu`` are shares of the window; ``wait`` is ``_wait_clock()`` now."""
        if wait is not None and self._window_wait is not None:
            return (wait - self._window_wait) / elapsed
        return max(0.0, writing - cpu)

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
            room = self.rooms[conn.room_id] = _LocalRoom()
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
