"""The process-wide objects every handler needs, built once by create_app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from server.auth import Tokens
from server.config import Settings
from server.metrics import Metrics
from server.realtime.hub import Hub
from server.sandbox import Sandbox
from server.storage import Database

if TYPE_CHECKING:
    from server.discounts.actions import Engine
    from server.draws.actions import DrawEngine
    from server.followup.runner import Runner
    from server.intents.log import SalesBoard
    from server.questions.feed import Feed
    from server.realtime.limits import Limiter
    from server.rooms.access import Access


@dataclass
class Services:
    settings: Settings
    db: Database
    hub: Hub
    tokens: Tokens
    metrics: Metrics
    feed: Feed | None = None
    limiter: Limiter | None = None
    discounts: Engine | None = None
    board: SalesBoard | None = None
    draws: DrawEngine | None = None
    followup: Runner | None = None
    access: Access | None = None  # host logins and revocation (server/rooms/access.py)
    sandbox: Sandbox | None = None  # worker processes for untrusted and CPU-heavy jobs
