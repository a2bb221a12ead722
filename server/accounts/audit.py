"""The audit log: who did what, when, from which session (docs/accounts.md, "Audit log").

Every action a console takes (over the WebSocket or HTTP) and every change in the studio (members,
roles, sessions, rooms, keys) is recorded with the actor: the signed-in account and its studio
session, or "host key" for a console opened with the room's key, or "cli". Recording never holds up
the action: ``record`` puts the entry on a bounded queue that one task writes in batches; stopping
the server writes what is queued. A full queue (the database down for long) drops entries and counts
them (``livewall_audit_dropped_total``) rather than growing without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import insert
from sqlmodel import col, select

from server.auth import Principal, Scope
from server.services import Services
from server.storage import Database, now_ms
from server.storage.accounts import DEFAULT_ORG, Account, AuditEntry
from server.storage.models import Room

log = logging.getLogger("livewall.audit")

QUEUE_LIMIT = 10_000
BATCH = 200
DETAIL_CHARS = 2_000
TEXT_CHARS = 200

CATEGORY_OF_SCOPE: dict[Scope, str] = {
    Scope.SHOW: "show",
    Scope.MODERATE: "moderation",
    Scope.PRODUCTS: "products",
    Scope.DEALS: "deals",
    Scope.DRAWS: "draws",
    Scope.FOLLOWUP: "campaigns",
    Scope.REPORTS: "reports",
    Scope.ROOM_ADMIN: "settings",
    Scope.ORG_ADMIN: "roles",
}
CATEGORIES = (
    "show",
    "moderation",
    "products",
    "deals",
    "draws",
    "campaigns",
    "reports",
    "settings",
    "roles",
    "access",
)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: an account and its studio session, or a label ("host key", "cli")."""

    label: str
    account_id: str | None = None
    session_id: str | None = None

    @staticmethod
    def of(principal: Principal, email: str | None = None) -> Actor:
        if principal.account_id is not None:
            return Actor(
                email or principal.name or principal.account_id, principal.account_id, principal.session_id
            )
        return Actor("host key")


def bounded(data: Mapping[str, Any]) -> str:
    """The action's data as JSON, each text cut to TEXT_CHARS and the whole to DETAIL_CHARS (what
    a person typed is evidence enough; a 100 KB blocklist is not kept 100 times)."""

    def cut(value: Any, depth: int = 0) -> Any:
        if isinstance(value, str):
            return value if len(value) <= TEXT_CHARS else value[:TEXT_CHARS] + "…"
        if isinstance(value, bool | int | float) or value is None:
            return value
        if depth > 3:
            return "…"
        if isinstance(value, Mapping):
            return {str(k)[:64]: cut(v, depth + 1) for k, v in list(value.items())[:30]}
        if isinstance(value, list | tuple):
            return [cut(v, depth + 1) for v in list(value)[:30]]
        return str(value)[:TEXT_CHARS]

    text = orjson.dumps(cut(dict(data))).decode()
    return text if len(text) <= DETAIL_CHARS else orjson.dumps({"truncated": text[:DETAIL_CHARS]}).decode()


def target_of(data: Mapping[str, Any], result: Any) -> str | None:
    """What an action was about: the id it names (or the id of what it made)."""
    for key in ("id", "product_id", "draw_id", "discount_id", "viewer_id", "item_id", "key"):
        value = data.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return f"{key}={value}"[:200]
    if isinstance(result, Mapping):
        value = result.get("id")
        if isinstance(value, str | int) and not isinstance(value, bool):
            return f"id={value}"[:200]
    return None


class AuditLog:
    """The queue and the task that writes it (an engine: started and stopped by the app)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_LIMIT)
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._drain(), name="livewall-audit")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._write_all()

    def record(
        self,
        actor: Actor,
        action: str,
        category: str,
        *,
        room_id: str | None = None,
        org_id: str | None = None,
        target: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue one entry (never waits). ``org_id`` may be left out for a room's action: the
        writer looks the room's organisation up."""
        entry = {
            "org_id": org_id,
            "room_id": room_id,
            "account_id": actor.account_id,
            "session_id": actor.session_id,
            "actor": actor.label[:254],
            "action": action[:64],
            "category": category,
            "target": target,
            "detail": bounded(detail or {}),
            "at_ms": now_ms(),
        }
        try:
            self.queue.put_nowait(entry)
            self._idle.clear()
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("audit queue full: %d entries dropped", self.dropped)

    def console_action(
        self, principal: Principal, kind: str, scope: Scope, data: Mapping[str, Any], result: Any
    ) -> None:
        """A console's WebSocket action that succeeded (the endpoint's after-action hook)."""
        if scope in (Scope.READ, Scope.PARTICIPATE):
            return
        category = "settings" if kind == "settings.update" else CATEGORY_OF_SCOPE.get(scope, "show")
        self.record(
            Actor.of(principal),
            kind,
            category,
            room_id=principal.room_id,
            target=target_of(data, result),
            detail=data,
        )

    def http_action(
        self,
        principal: Principal,
        action: str,
        category: str,
        detail: Mapping[str, Any] | None = None,
        target: str | None = None,
    ) -> None:
        """A console's HTTP action that succeeded (they go around the WebSocket hook)."""
        self.record(
            Actor.of(principal), action, category, room_id=principal.room_id, target=target, detail=detail
        )

    async def flushed(self) -> None:
        """Wait until everything queued so far is written (tests, the studio's export)."""
        await self._idle.wait()

    async def _drain(self) -> None:
        while True:
            first = await self.queue.get()
            batch = [first]
            while len(batch) < BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                await self._write(batch)
            except asyncio.CancelledError:
                for entry in batch:  # written by stop()
                    with contextlib.suppress(asyncio.QueueFull):
                        self.queue.put_nowait(entry)
                raise
            except Exception:
                log.exception("audit entries could not be written (%d lost)", len(batch))
            if self.queue.empty():
                self._idle.set()

    async def _write_all(self) -> None:
        batch: list[dict[str, Any]] = []
        while not self.queue.empty():
            batch.append(self.queue.get_nowait())
        if batch:
            try:
                await self._write(batch)
            except Exception:
                log.exception("audit entries could not be written at shutdown (%d lost)", len(batch))
        self._idle.set()

    async def _write(self, batch: list[dict[str, Any]]) -> None:
        rooms = sorted({e["room_id"] for e in batch if e["org_id"] is None and e["room_id"]})
        async with self.db.session() as session:
            orgs: dict[str, str] = {}
            if rooms:
                found = await session.exec(select(Room.id, Room.org_id).where(col(Room.id).in_(rooms)))
                orgs = dict(found.all())
            # A member is named by their account's email (a console's hello names itself freely).
            accounts = sorted({e["account_id"] for e in batch if e["account_id"]})
            emails: dict[str, str] = {}
            if accounts:
                found = await session.exec(
                    select(Account.id, Account.email).where(col(Account.id).in_(accounts))
                )
                emails = dict(found.all())
            for entry in batch:
                if entry["org_id"] is None:
                    entry["org_id"] = orgs.get(entry["room_id"] or "", DEFAULT_ORG)
                if entry["account_id"] in emails:
                    entry["actor"] = emails[entry["account_id"]]
            await session.exec(insert(AuditEntry).values(batch))
            await session.commit()


def audit_http(
    services: Services,
    principal: Principal,
    action: str,
    category: str,
    detail: Mapping[str, Any] | None = None,
    target: str | None = None,
) -> None:
    """Record a console's HTTP action that succeeded (never waits): one line after the change."""
    services.engines.get(AuditLog).http_action(principal, action, category, detail, target)
