"""In-process backend: the default, for one server process with no Redis."""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Sequence

from server.realtime.backends.base import Backend, Head
from server.realtime.protocol import join_envelope


class _Stream:
    __slots__ = ("events", "seq")

    def __init__(self, history: int) -> None:
        self.seq = 0
        self.events: deque[tuple[int, bytes]] = deque(maxlen=history)


class MemoryBackend(Backend):
    """Sequences and holds history in this process's memory; history is lost on restart (new epoch)."""

    def __init__(self, *, history: int) -> None:
        self.history = history
        # A fresh epoch per process start: clients holding seqs from a previous run get a snapshot.
        self.epoch = secrets.token_hex(4)
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._presence_last: dict[str, int] = {}

    def _stream(self, room_id: str, audience: str) -> _Stream:
        key = (room_id, audience)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream(self.history)
        return stream

    async def append(
        self, room_id: str, items: Sequence[tuple[str, bytes, bytes]], *, if_presence: int | None = None
    ) -> list[int]:
        if if_presence is not None and self._presence_last.get(room_id, 0) != if_presence:
            return []
        out: list[tuple[str, int, bytes]] = []
        for audience, prefix, suffix in items:
            stream = self._stream(room_id, audience)
            stream.seq += 1
            envelope = join_envelope(prefix, stream.seq, suffix)
            stream.events.append((stream.seq, envelope))
            out.append((audience, stream.seq, envelope))
        if self.deliver is not None:
            for audience, seq, envelope in out:
                await self.deliver(room_id, audience, seq, envelope)
        return [seq for _a, seq, _e in out]

    async def replay(self, room_id: str, audience: str, after: int) -> list[tuple[int, bytes]] | None:
        stream = self._stream(room_id, audience)
        if after >= stream.seq:
            return [] if after == stream.seq else None
        if not stream.events or stream.events[0][0] > after + 1:
            return None
        return [(seq, env) for seq, env in stream.events if seq > after]

    async def head(self, room_id: str, audience: str) -> Head:
        return Head(self.epoch, self._stream(room_id, audience).seq)

    async def presence(self, room_id: str, local_count: int) -> tuple[int, bool]:
        changed = self._presence_last.get(room_id, 0) != local_count
        if local_count:
            self._presence_last[room_id] = local_count
        else:
            # Forget rooms nobody is in, so the dict does not grow with every room ever opened.
            self._presence_last.pop(room_id, None)
        return local_count, changed

    async def presence_total(self, room_id: str) -> int:
        return self._presence_last.get(room_id, 0)
