"""Events of the audience's voice. High-rate changes travel in per-tick batches (``wall``, ``queue``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from server.realtime.protocol import Event


@dataclass(frozen=True)
class WallBatch(Event):
    """One tick of the public wall: new or changed items (a fair sample under load), removed ids,
    vote counts, aggregated reactions, and the top questions when they changed."""

    type = "wall"  # hosts get it too: their console shows the same wall, top list and spotlight
    audiences: ClassVar[tuple[str, ...]] = ("screen", "host")
    items: list[dict[str, Any]] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    votes: dict[str, int] = field(default_factory=dict)
    reactions: dict[str, int] = field(default_factory=dict)
    top: list[dict[str, Any]] | None = None
    dropped: int = 0


@dataclass(frozen=True)
class PhoneWall(WallBatch):
    """The phones' ``wall``: the same shape, a smaller sample at a slower tick (questions.feed)."""

    audiences: ClassVar[tuple[str, ...]] = ("viewer",)


@dataclass(frozen=True)
class QueueBatch(Event):
    """One tick of the host's queue: every new or changed item in full (never sampled), vote counts,
    aggregated reactions."""

    type = "queue"
    audiences = ("host",)
    items: list[dict[str, Any]] = field(default_factory=list)
    votes: dict[str, int] = field(default_factory=dict)
    reactions: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SpotlightChanged(Event):
    """The question being answered now (shown large on the big screen), or none."""

    type = "spotlight"
    item: dict[str, Any] | None


@dataclass(frozen=True)
class SettingsChanged(Event):
    """Room settings the audience sees: moderation mode, slow mode, screen layout."""

    type = "room.settings"
    moderation: str
    slow_mode_secs: float
    layout: str

    def payload(self, audience: str) -> dict[str, Any]:
        return {"moderation": self.moderation, "slow_mode_secs": self.slow_mode_secs, "layout": self.layout}


@dataclass(frozen=True)
class BlocklistChanged(Event):
    """The keyword blocklist was edited (hosts only)."""

    type = "blocklist"
    audiences = ("host",)
    words: list[str]


@dataclass(frozen=True)
class SanctionsChanged(Event):
    """A viewer was muted, banned or pardoned (hosts only): the full current list."""

    type = "sanctions"
    audiences = ("host",)
    sanctions: list[dict[str, Any]]
