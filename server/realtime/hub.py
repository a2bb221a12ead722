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
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from server.metrics import Metrics
from server.realtime.backends.base import Backend
from server.realtime.connection import Connection, frame
from server.realtime.protocol import AUDIENCES, Event, direct_frame, dumps, envelope_parts

log = logging.getLogger("livewall.hub")

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
        self.viewers: Counter[str] = Counter()  # viewer id -> open connections (tabs)

    def empty(self) -> bool:
        return not any(self.conns.values())


class Hub:
    """Routes sequenced room events from the backend to this process's connections."""

    def __init__(self, backend: Backend, metrics: Metrics, *, presence_tick_secs: float = 1.0) -> None:
        self.backend = backend
        self.metrics = metrics
        self.presence_tick_secs = presence_tick_secs
        self.rooms: dict[str, _LocalRoom] = {}
        self._dirty: set[str] = set()
        self._flush_scheduled = False
        self._presence_task: asyncio.Task[None] | None = None
        self.on_presence: PresenceHook | None = None
        # The shared snapshot of each (room, audience), valid while the stream has not moved:
        # a join or reconnect storm reads storage once per event, not once per phone.
        self._snapshots: dict[tuple[str, str], tuple[str, int, asyncio.Future[dict[str, Any]]]] = {}
        backend.bind(self._deliver, self._deliver_private)

    async def start(self) -> None:
        await self.backend.start()
        self._presence_task = asyncio.create_task(self._presence_loop(), name="livewall-presence")

    async def stop(self) -> None:
        if self._presence_task is not None:
            self._presence_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._presence_task
        await self.backend.stop()

    # --- publishing -----------------------------------------------------------------------------

    async def publish(self, room_id: str, event: Event) -> dict[str, int]:
        """Sequence and fan out one event; returns the seq it got in each audience's stream.

        Call only after the state change it describes is committed (actions modules do).
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
        seqs = await self.backend.append(room_id, items)
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
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, set()
        delivered = 0
        for room_id in dirty:
            room = self.rooms.get(room_id)
            if room is None:
                continue
            for audience, items in room.outbox.items():
                if not items:
                    continue
                room.outbox[audience] = []
                conns = room.conns[audience]
                if not conns:
                    continue
                envelopes = [env for _seq, env in items]
                framed = b"".join([frame(env) for env in envelopes])
                last_seq = items[-1][0]
                for conn in tuple(conns):
                    pending = conn.pending
                    if pending is not None:
                        pending.extend(items)
                        continue
                    if last_seq <= conn.last_seq:
                        continue
                    if items[0][0] <= conn.last_seq:
                        # Partly seen already (resume overlap): send only the new ones.
                        fresh = [env for seq, env in items if seq > conn.last_seq]
                        conn.write_frames(b"".join([frame(e) for e in fresh]), fresh)
                    else:
                        conn.write_frames(framed, envelopes)
                    conn.last_seq = last_seq
                    delivered += len(items)
        if delivered:
            self.metrics.deliveries.inc(delivered)

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
        if conn.principal.viewer_id is not None:
            room.viewers[conn.principal.viewer_id] += 1
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
        for seq, env in [*catchup, *pending]:
            if seq > upto:
                conn.write_frames(frame(env), [env])
                upto = seq
        conn.last_seq = upto
        return out

    def detach(self, conn: Connection) -> None:
        """Forget a closed connection (the room stays watched until the next presence tick)."""
        conn.stop()
        room = self.rooms.get(conn.room_id)
        if room is None or conn not in room.conns[conn.audience]:
            return
        del room.conns[conn.audience][conn]
        self.metrics.connections.labels(conn.audience).dec()
        viewer_id = conn.principal.viewer_id
        if viewer_id is not None:
            room.viewers[viewer_id] -= 1
            if room.viewers[viewer_id] <= 0:
                del room.viewers[viewer_id]

    def connections(self, room_id: str, audience: str | None = None) -> list[Connection]:
        room = self.rooms.get(room_id)
        if room is None:
            return []
        audiences = [audience] if audience else list(AUDIENCES)
        return [c for a in audiences for c in room.conns[a]]

    def send_to_viewer(self, room_id: str, viewer_id: str, envelope: bytes) -> int:
        """A direct frame to every connection of one viewer in this process; returns how many."""
        sent = 0
        for conn in self.connections(room_id, "viewer"):
            if conn.principal.viewer_id == viewer_id:
                conn.send(envelope)
                sent += 1
        return sent

    async def send_private(self, room_id: str, viewer_id: str, envelope: bytes) -> None:
        """A direct frame (no seq) to one viewer's connections in every process. Private state is
        also in each welcome, so a viewer who was offline loses nothing."""
        await self.backend.private(room_id, viewer_id, envelope)

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
                    for audience in AUDIENCES:
                        self._snapshots.pop((room_id, audience), None)
                    await self.backend.unwatch(room_id)
            except Exception:
                log.exception("presence tick failed", extra={"room": room_id})

    async def _presence_loop(self) -> None:
        while True:
            await asyncio.sleep(self.presence_tick_secs)
            await self.presence_tick()
