"""Redis backend: several server processes share rooms.

- Sequencing and history: one Lua script per event INCRs each audience's counter, XADDs the final
  envelope to that audience's stream (capped at ``history`` entries, entry id = seq) and PUBLISHes it,
  atomically. Every process therefore sees one gap-free order per (room, audience).
- Fan-out: each process SUBSCRIBEs to the channels of the rooms it has connections in. A process that
  sees a gap (a dropped subscription, a reconnect) fills it from the stream before delivering more.
- Presence: each process reports its local viewer count under a key that expires if the process dies.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.realtime.backends.base import Backend, Head

log = logging.getLogger("livewall.redis")

# Keys of an idle room expire after a week, so Redis does not fill with old shows.
KEY_TTL_SECS = 7 * 24 * 3600
# A process's presence report lives this long; a crashed process stops counting after it.
PRESENCE_TTL_SECS = 5
RECONNECT_DELAY_SECS = 0.5

_APPEND = """
local n = #ARGV - 4
local maxlen, ttl, channel, epoch = ARGV[n+1], ARGV[n+2], ARGV[n+3], ARGV[n+4]
local epochkey = KEYS[#KEYS]
redis.call('SET', epochkey, epoch, 'NX')
redis.call('EXPIRE', epochkey, ttl)
local out = {}
for i = 0, (n / 3) - 1 do
  local audience, prefix, suffix = ARGV[i*3+1], ARGV[i*3+2], ARGV[i*3+3]
  local seqkey, streamkey = KEYS[i*2+1], KEYS[i*2+2]
  local seq = redis.call('INCR', seqkey)
  local envelope = prefix .. seq .. suffix
  redis.call('XADD', streamkey, 'MAXLEN', maxlen, seq .. '-1', 'e', envelope)
  redis.call('EXPIRE', seqkey, ttl)
  redis.call('EXPIRE', streamkey, ttl)
  redis.call('PUBLISH', channel, audience .. '|' .. seq .. '|' .. envelope)
  out[#out+1] = seq
end
return out
"""

_PRESENCE = """
local procs, mykey, lastkey = KEYS[1], KEYS[2], KEYS[3]
local me, count, ttl, prefix = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
if count > 0 then
  redis.call('SET', mykey, count, 'EX', ttl)
  redis.call('SADD', procs, me)
  redis.call('EXPIRE', procs, ttl * 20)
else
  redis.call('DEL', mykey)
  redis.call('SREM', procs, me)
end
local total = 0
for _, p in ipairs(redis.call('SMEMBERS', procs)) do
  local v = redis.call('GET', prefix .. p)
  if v then total = total + tonumber(v) else redis.call('SREM', procs, p) end
end
local last = tonumber(redis.call('GET', lastkey) or '0')
if last ~= total then
  redis.call('SET', lastkey, total, 'EX', ttl * 20)
  return {total, 1}
end
return {total, 0}
"""


def _k(room_id: str, *parts: str) -> str:
    return "lw:{" + room_id + "}:" + ":".join(parts)


def _channel(room_id: str) -> str:
    return f"lw:events:{room_id}"


class RedisBackend(Backend):
    """Shares sequencing, history and fan-out through one Redis server."""

    def __init__(self, url: str, *, history: int) -> None:
        self.url = url
        self.history = history
        self.process_id = f"{os.getpid()}-{secrets.token_hex(3)}"
        self.redis: aioredis.Redis = aioredis.Redis.from_url(url, decode_responses=False)
        self._append = self.redis.register_script(_APPEND)
        self._presence = self.redis.register_script(_PRESENCE)
        self._watched: set[str] = set()
        self._heads: dict[tuple[str, str], int] = {}
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._watch_tasks: dict[str, asyncio.Future[None]] = {}

    async def start(self) -> None:
        await self.redis.ping()
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self._reader = asyncio.create_task(self._read_loop(), name="livewall-redis-reader")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except asyncio.CancelledError:
                pass
        if self._pubsub is not None:
            await self._pubsub.aclose()
        await self.redis.aclose()

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except (RedisConnectionError, RedisTimeoutError, OSError):
            return False

    async def append(self, room_id: str, items: Sequence[tuple[str, bytes, bytes]]) -> list[int]:
        keys: list[str] = []
        args: list[bytes | str | int] = []
        for audience, prefix, suffix in items:
            keys += [_k(room_id, "seq", audience), _k(room_id, "stream", audience)]
            args += [audience, prefix, suffix]
        keys.append(_k(room_id, "epoch"))
        args += [self.history, KEY_TTL_SECS, _channel(room_id), secrets.token_hex(4)]
        result = await self._append(keys=keys, args=args)
        return [int(x) for x in result]

    async def replay(self, room_id: str, audience: str, after: int) -> list[tuple[int, bytes]] | None:
        seq_raw = await self.redis.get(_k(room_id, "seq", audience))
        last = int(seq_raw or 0)
        if after >= last:
            return [] if after == last else None
        entries = await self.redis.xrange(_k(room_id, "stream", audience), min=f"{after + 1}-1", max="+")
        out = [(int(entry_id.split(b"-")[0]), fields[b"e"]) for entry_id, fields in entries]
        if not out or out[0][0] != after + 1:
            return None
        return out

    async def head(self, room_id: str, audience: str) -> Head:
        pipe = self.redis.pipeline(transaction=False)
        epoch_key = _k(room_id, "epoch")
        pipe.set(epoch_key, secrets.token_hex(4), nx=True, ex=KEY_TTL_SECS)
        pipe.get(epoch_key)
        pipe.get(_k(room_id, "seq", audience))
        _set, epoch, seq = await pipe.execute()
        return Head(epoch.decode(), int(seq or 0))

    async def watch(self, room_id: str) -> None:
        # Concurrent joiners of one room wait for the same subscription: none may read the head
        # before the subscription is live, or it could miss the events in between.
        task = self._watch_tasks.get(room_id)
        if task is None:
            task = self._watch_tasks[room_id] = asyncio.ensure_future(self._watch(room_id))
        await asyncio.shield(task)

    async def _watch(self, room_id: str) -> None:
        self._watched.add(room_id)
        await self._pubsub.subscribe(_channel(room_id))
        # Everything up to the current head is covered by the snapshot or replay of each joining
        # connection; the subscription delivers what comes after.
        for audience in ("viewer", "screen", "host"):
            head = await self.head(room_id, audience)
            self._heads[(room_id, audience)] = head.seq

    async def unwatch(self, room_id: str) -> None:
        if room_id not in self._watched:
            return
        self._watch_tasks.pop(room_id, None)
        self._watched.discard(room_id)
        for audience in ("viewer", "screen", "host"):
            self._heads.pop((room_id, audience), None)
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

    async def _read_loop(self) -> None:
        while True:
            try:
                if not self._watched:
                    await asyncio.sleep(0.05)
                    continue
                message = await self._pubsub.get_message(timeout=1.0)
                if message is None or message.get("type") != "message":
                    continue
                channel = message["channel"].decode()
                room_id = channel.rsplit(":", 1)[1]
                audience_b, seq_b, envelope = message["data"].split(b"|", 2)
                await self._on_message(room_id, audience_b.decode(), int(seq_b), envelope)
            except asyncio.CancelledError:
                raise
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("redis subscription lost, reconnecting", extra={"error": str(exc)})
                await asyncio.sleep(RECONNECT_DELAY_SECS)
                await self._resubscribe()
            except Exception:
                log.exception("redis reader: unexpected error; continuing")

    async def _on_message(self, room_id: str, audience: str, seq: int, envelope: bytes) -> None:
        key = (room_id, audience)
        if key not in self._heads:
            return
        head = self._heads[key]
        if seq <= head:
            return  # already delivered (a replayed gap overlapped the live stream)
        if seq > head + 1:
            missed = await self.replay(room_id, audience, head)
            for missed_seq, missed_env in missed or []:
                if missed_seq < seq:
                    await self._deliver(room_id, audience, missed_seq, missed_env)
            if missed is None:
                log.error("redis history no longer holds a gap; clients will resync", extra={"room": room_id})
        await self._deliver(room_id, audience, seq, envelope)

    async def _deliver(self, room_id: str, audience: str, seq: int, envelope: bytes) -> None:
        self._heads[(room_id, audience)] = seq
        if self.deliver is not None:
            await self.deliver(room_id, audience, seq, envelope)

    async def _resubscribe(self) -> None:
        try:
            await self._pubsub.aclose()
        except Exception:  # noqa: S110 - the old connection is gone either way
            pass
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        rooms = list(self._watched)
        try:
            if rooms:
                await self._pubsub.subscribe(*[_channel(r) for r in rooms])
            # Catch up on anything published while the subscription was down.
            for room_id in rooms:
                for audience in ("viewer", "screen", "host"):
                    key = (room_id, audience)
                    if key not in self._heads:
                        continue
                    missed = await self.replay(room_id, audience, self._heads[key])
                    for seq, env in missed or []:
                        await self._deliver(room_id, audience, seq, env)
        except (RedisConnectionError, RedisTimeoutError, OSError):
            log.warning("redis still unreachable; will retry")
