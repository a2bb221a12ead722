"""Events of follow-up messaging (hosts only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.realtime.protocol import Event

# Direct (unsequenced) frames this domain sends, with their one-line docs.
DIRECT_TYPES = {"inbox": "an in-app message for the viewer, sent while the room is open"}


@dataclass(frozen=True)
class FollowupChanged(Event):
    """Campaign progress (counts by status), the dead-letter count, the uncertain re-sends and alerts,
    whole."""

    type = "followup"
    audiences = ("host",)
    campaigns: list[dict[str, Any]] = field(default_factory=list)
    dead: int = 0
    uncertain_resend: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)
