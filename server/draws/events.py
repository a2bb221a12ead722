"""Events of lucky draws."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.realtime.protocol import Event


@dataclass(frozen=True)
class DrawChanged(Event):
    """A draw was set up, closed its entries, was drawn, or a winner changed. The public shape masks
    names; hosts get names, viewer ids and claim details."""

    type = "draw"
    public: dict[str, Any]
    host: dict[str, Any]

    def payload(self, audience: str) -> dict[str, Any]:
        return self.host if audience == "host" else self.public


@dataclass(frozen=True)
class EntrantsTick(Event):
    """The live entrant count of an open draw (at most four a second)."""

    type = "draw.entrants"
    id: int
    entrants: int
