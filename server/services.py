"""The process-wide objects every handler needs, built once by create_app."""

from __future__ import annotations

from dataclasses import dataclass, field

from server.auth import Tokens
from server.config import Settings
from server.domain import Engines, Registry
from server.metrics import Metrics
from server.realtime.hub import Hub
from server.realtime.limits import Limiter
from server.sandbox import Sandbox
from server.storage import Database


@dataclass
class Services:
    """The core (settings, storage, hub, tokens, metrics, sandbox, limiter), what the domains
    declared (``registry``) and their running engines, found by class (``engines.get(DrawEngine)``)."""

    settings: Settings
    db: Database
    hub: Hub
    tokens: Tokens
    metrics: Metrics
    sandbox: Sandbox  # worker processes for untrusted and CPU-heavy jobs
    limiter: Limiter
    registry: Registry
    engines: Engines = field(default_factory=Engines)
