"""Redis backend: several server processes share rooms.

- Sequencing and history: one Lua script per event INCRs each audience's counter, XADDs the final
  envelope to that audience's stream (capped at ``history`` entries, entry id = seq) and PUBLISHes it,
  atomically. Every process therefore sees one gap-free order per (room, audience).
- Fan-out: each process SUBSCRIBEs to the channels of the rooms it has connections in. One reader task
  handles everything the subscription brings, so delivery is in order: a subscription confirmation
  reads the room's heads (first watch) or catches up from the streams (after a reconnect), and a
  message whose seq skips ahead is preceded by the missing ones, read from the stream.
- Resume: each process keeps the newest events it delivered per (room, audience) in memory (a
  contiguous run ending at its head), so a reconnect storm replays from memory; only a client
  further back than that run reads the stream (and what it reads extends the run backwards).
- Presence: each process reports its local viewer count under a key that expires if the process dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.realtime.backends.base import Backend, Head, SharedRedis
from server.realtime.backends.redis_scripts import APPEND, PRESENCE
from server.realtime.protocol import AUDIENCES

log = logging.getLogger("livewall.redis")

# Keys of an idle room expire after a week, so Redis does not fill with old shows.
KEY_TTL_SECS = 7 * 24 * 3600
# A process's presence report lives this long; a crashed process stops counting after it.
PRESENCE_TTL_SECS = 5
# Pause between attempts to re-establish the subscription, so an outage is not a busy loop.
RECONNECT_DELAY_SECS = 0.5
# The reader wakes at least this often when idle, to retry subscriptions that could not be sent.
READ_IDLE_SECS = 1.0
# A joining connection waits this long for its room's subscription (Redis unreachable: it fails).
WATCH_TIMEOUT_SECS = 10.0
# A connect storm reads each room's epoch from Redis at most this often (heads come from memory).
EPOCH_CACHE_SECS = 1.0
# Connections to Redis per process (the subscription holds one of them); callers beyond it wait.
REDIS_POOL_SIZE = 64

_NET_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


def _k(room_id: str, *parts: str) -> str:
    return "lw:{" + room_id + "}:" + ":".join(parts)


_CHANNEL_PREFIX = "lw:events:"


def _channel(room_id: str) -> str:
    return _CHANNEL_PREFIX + room_id


class RedisBackend(Backend, SharedRedis):
    """Shares sequencing, history and fan-out through one Redis server (whose client it offers to
    state every process must share: ``SharedRedis``)."""

    def __init__(self, url: str, *, history: int) -> None:
        self.url = url
        self.history = history
        self.process_id = f"{os.getpid()}-{secrets.token_hex(3)}"
        # A bounded pool that makes callers wait for a free connection: a connect storm runs hundreds of
        # head reads at once, and redis-py's default pool refuses past its limit (MaxConnectionsError,
        # seen failing 738 of 10,000 welcomes) where waiting a few milliseconds is what is wanted.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, decode_responses=False, max_connections=REDIS_POOL_SIZE, timeout=WATCH_TIMEOUT_SECS
        )
        self.redis: aioredis.Redis = aioredis.Redis.from_pool(pool)
        self._append = self.redis.register_script(APPEND)
        self._presence = self.redis.register_script(PRESENCE)
        # Watched rooms; each future resolves once the room's subscription is live and its heads are known.
        self._watched: dict[str, asyncio.Future[None]] = {}
        # The last seq delivered per (room, audience); only the reader task advances it.
        self._heads: dict[tuple[str, str], int] = {}
        # Each room's epoch as last read, and until when (monotonic) it may be used without asking.
        self._epochs: dict[str, tuple[str, float]] = {}
        # A read of a room's epoch in flight: a reconnect storm's welcomes wait for one read, not
        # each for its own (and for a connection from the pool).
        self._epoch_reads: dict[str, asyncio.Future[str]] = {}
        # The newest delivered events per (room, audience): contiguous, ending at its head.
        self._recent: dict[tuple[str, str], deque[tuple[int, bytes]]] = {}
        # Watched rooms whose SUBSCRIBE could not be sent; the reader retries them.
        self._unsent: set[str] = set()
        self._pubsub: Any = None  # redis.asyncio.client.PubSub, whose methods are partly untyped
        # Serialises SUBSCRIBE/UNSUBSCRIBE with replacing the subscription connection.
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.redis.ping()
        self._pubsub = self.redis.pubsub()
        await self._pubsub.connect()
        self._reader = asyncio.create_task(self._read_loop(), name="livewall-redis-reader")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for ready in self._watched.values():
            ready.cancel()
        if self._pubsub is not None:
            with contextlib.suppress(*_NET_ERRORS):
                await self._pubsub.aclose()
        await self.redis.aclose()

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except _NET_ERRORS:
            return False

    async def append(
        self, room_id: str, items: Sequence[tuple[str, bytes, bytes]], *, if_presence: int | None = None
    ) -> list[int]:
        keys: list[str] = []
        args: list[bytes | str | int] = []
        for audience, prefix, suffix in items:
            keys += [_k(room_id, "seq", audience), _k(room_id, "stream", audience)]
            args += [audience, prefix, suffix]
        keys += [_k(room_id, "epoch"), _k(room_id, "preslast")]
        presence = "" if if_presence is None else if_presence
        args += [self.history, KEY_TTL_SECS, _channel(room_id), secrets.token_hex(4), presence]
        result = await self._append(keys=keys, args=args)
        return [int(x) for x in result]

    async def replay(self, room_id: str, audience: str, after: int) -> list[tuple[int, bytes]] | None:
        key = (room_id, audience)
        recent = self._recent.get(key)
        if recent and recent[0][0] <= after + 1 <= recent[-1][0]:
            # Up to this process's head: what Redis holds beyond it is on its way to the hub, and the
            # connection (registered before this call) gets it from there.
            return list(itertools.islice(recent, after + 1 - recent[0][0], None))
        seq_raw = await self.redis.get(_k(room_id, "seq", audience))
        last = int(seq_raw or 0)
        if after >= last:
            return [] if after == last else None
        entries = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]",
            await self.redis.xrange(_k(room_id, "stream", audience), min=f"{after + 1}-1", max="+"),
        )
        out = [(int(entry_id.split(b"-")[0]), fields[b"e"]) for entry_id, fields in entries]
        if not out or out[0][0] != after + 1:
            return None
        self._remember_older(key, out)
        return out

    def _remember_older(self, key: tuple[str, str], events: list[tuple[int, bytes]]) -> None:
        """Extend the in-memory run backwards with ``events`` (contiguous, read from the stream) where
        they join it: the next resume from as far back is answered from memory."""
        head = self._heads.get(key)
        if head is None:
            return
        recent = self._recent.get(key)
        end = recent[0][0] if recent else head + 1  # the run must stay contiguous up to the head
        older = [e for e in events if e[0] < end]
        if not older or older[-1][0] != end - 1:
            return
        joined: deque[tuple[int, bytes]] = deque(older, maxlen=self.history)
        if recent:
            joined.extend(recent)
        self._recent[key] = joined

    async def head(self, room_id: str, audience: str) -> Head:
        if (room_id, audience) in self._heads:
            # A watched room: this process's own head. Events Redis holds beyond it are on their way
            # through the subscription and reach the connection (registered before this call) from
            # there; what the snapshot already shows of them is overlap, which events tolerate.
            known = self._epochs.get(room_id)
            if known is not None and known[1] > time.monotonic():
                epoch = known[0]
            else:
                epoch = await self._epoch(room_id)
                if known is not None and epoch != known[0]:
                    # A new epoch: Redis lost the room (a restart without persistence) and this
                    # process's head belongs to the old numbering until its catch-up resets it.
                    return await self._read_head(room_id, audience)
            seq = self._heads.get((room_id, audience))
            if seq is not None:
                return Head(epoch, seq)
        return await self._read_head(room_id, audience)

    async def _epoch(self, room_id: str) -> str:
        """The room's epoch from Redis, one read at a time per room (callers share it)."""
        reading = self._epoch_reads.get(room_id)
        if reading is None:
            reading = self._epoch_reads[room_id] = asyncio.ensure_future(self._read_epoch(room_id))
            reading.add_done_callback(lambda done: self._forget_epoch_read(room_id, done))
        # Shielded: one caller giving up must not cancel the read the others wait for.
        return await asyncio.shield(reading)

    def _forget_epoch_read(self, room_id: str, done: asyncio.Future[str]) -> None:
        if self._epoch_reads.get(room_id) is done:
            del self._epoch_reads[room_id]
        if not done.cancelled():
            done.exception()  # retrieved: each waiter has it raised already

    def _epoch_pipeline(self, room_id: str) -> Any:
        """A pipeline that reads the room's epoch (creating it if the room has none yet) first."""
        pipe = self.redis.pipeline(transaction=False)
        epoch_key = _k(room_id, "epoch")
        pipe.set(epoch_key, secrets.token_hex(4), nx=True, ex=KEY_TTL_SECS)
        pipe.get(epoch_key)
        return pipe

    def _remember_epoch(self, room_id: str, raw: bytes) -> str:
        epoch = raw.decode()
        self._epochs[room_id] = (epoch, time.monotonic() + EPOCH_CACHE_SECS)
        return epoch

    async def _read_epoch(self, room_id: str) -> str:
        _set, epoch_raw = await self._epoch_pipeline(room_id).execute()
        return self._remember_epoch(room_id, epoch_raw)

    async def _read_head(self, room_id: str, audience: str) -> Head:
        pipe = self._epoch_pipeline(room_id)
        pipe.get(_k(room_id, "seq", audience))
        _set, epoch_raw, seq = await pipe.execute()
        return Head(self._remember_epoch(room_id, epoch_raw), int(seq or 0))

    async def watch(self, room_id: str) -> None:
        # Concurrent joiners of one room wait for the same subscription: none may read the head
        # before the subscription is live, or it could miss the events in between.
        ready = self._watched.get(room_id)
        if ready is None:
            ready = self._watched[room_id] = asyncio.get_running_loop().create_future()
            try:
                async with self._lock:
                    assert self._pubsub is not None, "start() first"
                    await self._pubsub.subscribe(_channel(room_id))
            except _NET_ERRORS:
                self._unsent.add(room_id)  # the reader subscribes it once Redis answers again
        if not ready.done():
            # Shielded: one joiner giving up must not cancel the subscription the others wait for.
            await asyncio.wait_for(asyncio.shield(ready), WATCH_TIMEOUT_SECS)

    async def unwatch(self, room_id: str) -> None:
        ready = self._watched.pop(room_id, None)
        if ready is None:
            return
        if not ready.done():
            ready.set_result(None)  # whoever waited has left: the hub unwatches empty rooms only
        self._unsent.discard(room_id)
        for audience in AUDIENCES:
            self._heads.pop((room_id, audience), None)
            self._recent.pop((room_id, audience), None)
        self._epochs.pop(room_id, None)
        # If the connection is down, the reader's reconnect subscribes watched rooms only.
        with contextlib.suppress(*_NET_ERRORS):
            async with self._lock:
                assert self._pubsub is not None
                await self._pubsub.unsubscribe(_channel(room_id))

    async def presence(self, room_id: str, local_count: int) -> tuple[int, bool]:
        prefix = _k(room_id, "pres", "")
        total, changed = await self._presence(
            keys=[_k(room_id, "presprocs"), prefix + self.process_id, _k(room_id, "preslast")],
            args=[self.process_id, local_count, PRESENCE_TTL_SECS, prefix],
        )
        return int(total), bool(changed)

    async def presence_total(self, room_id: str) -> int:
        return int(await self.redis.get(_k(room_id, "preslast")) or 0)

    # --- the reader: the only task that delivers ----------------------------------------------------

    async def _read_loop(self) -> None:
        broken = False
        while True:
            try:
                if broken:
                    await asyncio.sleep(RECONNECT_DELAY_SECS)
                    await self._reconnect()
                    broken = False
                    log.info("redis subscription restored")
                elif self._unsent:
                    await self._subscribe_unsent()
                assert self._pubsub is not None
                message = await self._pubsub.get_message(timeout=READ_IDLE_SECS)
                if message is not None:
                    await self._handle(message)
            except asyncio.CancelledError:
                raise
            except _NET_ERRORS as exc:
                if not broken:
                    log.warning("redis subscription lost, reconnecting", extra={"error": str(exc)})
                broken = True
            except Exception:
                # Unknown state: start over on a fresh connection rather than repeat the same error.
                log.exception("redis reader: unexpected error; reconnecting")
                broken = True

    async def _reconnect(self) -> None:
        """Replace the subscription connection and subscribe every watched room on it."""
        async with self._lock:
            old, self._pubsub = self._pubsub, self.redis.pubsub()
            if old is not None:
                with contextlib.suppress(Exception):  # the old connection is gone either way
                    await old.aclose()
            await self._pubsub.connect()
            self._unsent.clear()
            if self._watched:
                # The confirmations make the reader catch up on what was published meanwhile.
                await self._pubsub.subscribe(*[_channel(r) for r in self._watched])

    async def _subscribe_unsent(self) -> None:
        async with self._lock:
            rooms = [r for r in self._unsent if r in self._watched]
            self._unsent.clear()
            if rooms:
                assert self._pubsub is not None
                await self._pubsub.subscribe(*[_channel(r) for r in rooms])

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind not in ("message", "subscribe"):
            return
        channel: bytes = message["channel"]
        room_id = channel.decode()[len(_CHANNEL_PREFIX) :]
        if kind == "subscribe":
            await self._on_subscribed(room_id)
            return
        try:
            audience_b, seq_b, envelope = message["data"].split(b"|", 2)
            seq = int(seq_b)
        except ValueError:
            # Not from our script (someone else published on the channel): not worth a reconnect.
            log.warning("ignoring a malformed message", extra={"room": room_id})
            return
        audience = audience_b.decode()
        if audience.startswith("@"):
            # A direct frame for one viewer (see ``private``): no seq, not in any stream.
            if self.deliver_private is not None:
                self.deliver_private(room_id, audience[1:], envelope)
            return
        await self._on_message(room_id, audience, seq, envelope)

    async def private(self, room_id: str, viewer_id: str, envelope: bytes) -> None:
        """Publish a direct frame for one viewer on the room's channel; the process holding that
        viewer's connections delivers it (seq 0: it is not part of any stream)."""
        await self.redis.publish(_channel(room_id), b"@" + viewer_id.encode() + b"|0|" + envelope)

    async def private_many(self, frames: Sequence[tuple[str, str, bytes]]) -> None:
        """One round trip for many (a rush's winners): a pipeline of publishes."""
        pipe = self.redis.pipeline(transaction=False)
        for room_id, viewer_id, envelope in frames:
            pipe.publish(_channel(room_id), b"@" + viewer_id.encode() + b"|0|" + envelope)
        await pipe.execute()

    async def _on_subscribed(self, room_id: str) -> None:
        """The room's subscription is live: learn its heads, or catch up if they are known."""
        ready = self._watched.get(room_id)
        if ready is None:
            return  # unwatched meanwhile
        if (room_id, AUDIENCES[0]) in self._heads:
            # A re-subscription: deliver what was published while the subscription was down.
            for audience in AUDIENCES:
                await self._catch_up(room_id, audience)
        else:
            # Everything up to the current head is covered by the snapshot or replay of each joining
            # connection; the subscription delivers what comes after.
            pipe = self.redis.pipeline(transaction=False)
            for audience in AUDIENCES:
                pipe.get(_k(room_id, "seq", audience))
            seqs = await pipe.execute()
            if self._watched.get(room_id) is not ready:
                return
            for audience, seq in zip(AUDIENCES, seqs, strict=True):
                self._heads[(room_id, audience)] = int(seq or 0)
        if not ready.done():
            ready.set_result(None)

    async def _catch_up(self, room_id: str, audience: str) -> None:
        head = self._heads.get((room_id, audience))
        if head is None:
            return
        missed = await self.replay(room_id, audience, head)
        if missed is None:
            last = int(await self.redis.get(_k(room_id, "seq", audience)) or 0)
            if last < head:
                # Redis lost the room (restart without persistence): follow the new numbering.
                log.error("redis stream restarted below our head", extra={"room": room_id, "head": head})
                self._heads[(room_id, audience)] = last
                self._recent.pop((room_id, audience), None)
                self._epochs.pop(room_id, None)
            else:
                log.error("redis history no longer holds a gap; clients will resync", extra={"room": room_id})
            return
        for seq, envelope in missed:
            await self._deliver(room_id, audience, seq, envelope)

    async def _on_message(self, room_id: str, audience: str, seq: int, envelope: bytes) -> None:
        head = self._heads.get((room_id, audience))
        if head is None or seq <= head:
            return  # not watched (yet), or already delivered by a catch-up that overlapped
        if seq > head + 1:
            # The subscription dropped messages: fill the gap from the stream first.
            missed = await self.replay(room_id, audience, head)
            if missed is None:
                log.error("redis history no longer holds a gap; clients will resync", extra={"room": room_id})
            for missed_seq, missed_env in missed or []:
                if missed_seq >= seq:
                    break
                await self._deliver(room_id, audience, missed_seq, missed_env)
        await self._deliver(room_id, audience, seq, envelope)

    async def _deliver(self, room_id: str, audience: str, seq: int, envelope: bytes) -> None:
        key = (room_id, audience)
        head = self._heads.get(key)
        if head is None or seq <= head:
            return
        self._heads[key] = seq
        recent = self._recent.get(key)
        if recent is None or seq != head + 1:
            # Not contiguous with the run (first event, or a gap the stream no longer held): start anew.
            recent = self._recent[key] = deque(maxlen=self.history)
        recent.append((seq, envelope))
        if self.deliver is not None:
            try:
                await self.deliver(room_id, audience, seq, envelope)
            except Exception:
                # A failing consumer must not stop the subscription for every other room.
                log.exception("deliver failed", extra={"room": room_id})
