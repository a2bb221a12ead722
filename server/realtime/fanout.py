"""One batch of events for one room and audience, written to its connections: the hot loop of
fan-out (server/realtime/hub.py decides what goes when; this writes it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.realtime.connection import Connection, frame
from server.realtime.protocol import AUDIENCES

if TYPE_CHECKING:
    from server.realtime.hub import Hub


class LocalRoom:
    """This process's connections in one room, by audience and by viewer, and what waits to go."""

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


class FanOut:
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
