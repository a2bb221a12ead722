"""Prometheus metrics (served at /metrics). Counters are bumped once per batch, not per recipient."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge


class Metrics:
    """One registry per app, so tests and several apps in one process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connections = Gauge(
            "livewall_connections", "Open WebSocket connections", ["role"], registry=self.registry
        )
        self.events_in = Counter(
            "livewall_events_in_total", "Client messages received", ["type"], registry=self.registry
        )
        self.events_published = Counter(
            "livewall_events_published_total", "Room events published", ["type"], registry=self.registry
        )
        self.deliveries = Counter(
            "livewall_deliveries_total", "Event frames written to connections", registry=self.registry
        )
        self.errors_out = Counter(
            "livewall_errors_sent_total", "Error frames sent", ["code"], registry=self.registry
        )
        self.queue_drops = Counter(
            "livewall_queue_drops_total",
            "Events not queued because a connection's buffer was full",
            registry=self.registry,
        )
        self.slow_disconnects = Counter(
            "livewall_slow_consumer_disconnects_total",
            "Connections closed (4008) for falling behind",
            registry=self.registry,
        )
        self.resumes = Counter(
            "livewall_resumes_total", "Resume attempts by result", ["result"], registry=self.registry
        )
        self.uncertain_resends = Counter(
            "livewall_followup_uncertain_resends_total",
            "Follow-up messages sent again, with the same idempotency key, after a worker stopped mid-send",
            ["channel"],
            registry=self.registry,
        )
        # Labelled children, looked up once (``labels()`` costs more than the increment; the
        # message types and error codes are a small fixed set).
        self._in: dict[str, Any] = {}
        self._err: dict[str, Any] = {}

    def uncertain_resend(self, channel: str) -> None:
        """Count one follow-up message sent again after its worker stopped while sending it."""
        self.uncertain_resends.labels(channel).inc()

    def received(self, type_: str) -> None:
        """Count one client message of this type (a known type or "_other")."""
        child = self._in.get(type_)
        if child is None:
            child = self._in[type_] = self.events_in.labels(type_)
        child.inc()

    def error_sent(self, code: str) -> None:
        """Count one error frame with this code."""
        child = self._err.get(code)
        if child is None:
            child = self._err[code] = self.errors_out.labels(code)
        child.inc()
