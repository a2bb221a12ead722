"""Room events. Each carries absolute state, so applying one already reflected in a snapshot is harmless."""

from __future__ import annotations

from dataclasses import dataclass

from server.realtime.protocol import Event


@dataclass(frozen=True)
class RoomStatusChanged(Event):
    """The host started or ended the live session."""

    type = "room.status"
    status: str
    started_ms: int | None
    ended_ms: int | None


@dataclass(frozen=True)
class AnnouncementPosted(Event):
    """The host posted an announcement to everyone in the room."""

    type = "announcement"
    id: int
    text: str
    created_ms: int


@dataclass(frozen=True)
class PresenceChanged(Event):
    """The live viewer count (and the peak) changed; published at most once per presence tick."""

    type = "presence"
    viewers: int
    peak: int
