"""The event log of purchase intent and outcomes (rooms and the shop), and the funnel read from it.

Every event has an ``event_id``; recording one that is already there changes nothing (retries from
a phone, duplicate webhook deliveries). Follow-up messaging reads this log.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any, Required, TypedDict, Unpack

import orjson
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from server.intents.events import SalesChanged
from server.realtime.hub import Hub
from server.rooms import sources
from server.storage import Database, now_ms
from server.storage.batch import shared_writer
from server.storage.models import Follow, IntentEvent
from server.ticker import Ticker

log = logging.getLogger("livewall.intents")

# Event kinds and the funnel step each counts toward (distinct viewers per product).
FUNNEL = {
    "product.view": "views",
    "product.details": "details",
    "product.buy": "clicks",
    "discount.claim": "claims",
    "coupon.redeemed": "redeemed",
    "order.paid": "paid",
}
# The funnel is recomputed at most this often per room: hosts watch a trend, not a ticker.
BOARD_TICK_SECS = 1.0


def new_event_id() -> str:
    return uuid.uuid4().hex


class EventFields(TypedDict, total=False):
    """What an event says: ``room_id`` and ``kind`` always, the rest where it applies."""

    room_id: Required[str]
    kind: Required[str]
    viewer_id: str | None
    product_id: int | None
    discount_id: int | None
    claim_id: int | None
    order_id: str | None
    data: dict[str, Any] | None
    event_id: str | None
    source: str
    ref: str | None


def event_row(**fields: Unpack[EventFields]) -> IntentEvent:
    """One event as a row, for a caller that stores it in its own transaction (a claim's batch)."""
    data = fields.get("data")
    return IntentEvent(
        event_id=fields.get("event_id") or new_event_id(),
        room_id=fields["room_id"],
        viewer_id=fields.get("viewer_id"),
        kind=fields["kind"],
        source=fields.get("source", "room"),
        product_id=fields.get("product_id"),
        discount_id=fields.get("discount_id"),
        claim_id=fields.get("claim_id"),
        order_id=fields.get("order_id"),
        ref=fields.get("ref"),
        data=orjson.dumps(data).decode() if data else None,
        created_ms=now_ms(),
    )


def recorded(board: SalesBoard | None, room_id: str, kinds: set[str]) -> None:
    """After events are stored: the funnel is recomputed, follow-up looks at once."""
    if board is None:
        return
    if kinds & FUNNEL.keys():
        board.touch(room_id)
    if board.on_record is not None:
        board.on_record()  # follow-up takes the event up at once, not at its next look


async def record(db: Database, *, board: SalesBoard | None = None, **fields: Unpack[EventFields]) -> bool:
    """Store one event; False if an event with this id was already stored (nothing changes). An event
    of a viewer that names no ``ref`` gets the viewer's last-touch source (docs/revenue.md)."""
    if "ref" not in fields and fields.get("viewer_id"):
        fields["ref"] = await sources.last_ref(db, fields["room_id"], fields.get("viewer_id"))
    row = event_row(**fields)
    try:
        await shared_writer(db, IntentEvent).add(row)
    except IntegrityError:
        async with db.session() as session:
            found = (
                await session.exec(select(IntentEvent.id).where(IntentEvent.event_id == row.event_id))
            ).first()
        if found is None:
            raise
        return False
    recorded(board, row.room_id, {row.kind})
    return True


async def seen(db: Database, event_id: str) -> bool:
    async with db.session() as session:
        found = (await session.exec(select(IntentEvent.id).where(IntentEvent.event_id == event_id))).first()
    return found is not None


async def funnel(db: Database, room_id: str) -> dict[str, Any]:
    """Distinct viewers per product and funnel step, and the room's follower count."""
    async with db.session() as session:
        rows = await session.exec(
            select(IntentEvent.product_id, IntentEvent.kind, func.count(func.distinct(IntentEvent.viewer_id)))
            .where(
                IntentEvent.room_id == room_id,
                col(IntentEvent.product_id).is_not(None),
                col(IntentEvent.kind).in_(list(FUNNEL)),
            )
            .group_by(col(IntentEvent.product_id), col(IntentEvent.kind))
        )
        products: dict[str, dict[str, int]] = {}
        for product_id, kind, n in rows.all():
            step = products.setdefault(str(product_id), dict.fromkeys(FUNNEL.values(), 0))
            step[FUNNEL[kind]] = int(n)
        followers = (
            await session.exec(select(func.count()).select_from(Follow).where(Follow.room_id == room_id))
        ).one()
    return {"products": products, "followers": int(followers)}


class SalesBoard(Ticker):
    """Publishes a room's funnel to its hosts, at most once per tick and only when it changed."""

    def __init__(
        self,
        db: Database,
        hub: Hub,
        *,
        tick_secs: float = BOARD_TICK_SECS,
        on_record: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(tick_secs, "sales")
        self.db = db
        self.hub = hub
        self._dirty: set[str] = set()
        self._last: dict[str, dict[str, Any]] = {}
        self.on_record = on_record  # told when intents are stored (the follow-up wakes)

    def touch(self, room_id: str) -> None:
        self._dirty.add(room_id)
        self.wake()

    async def flush(self) -> None:
        rooms, self._dirty = self._dirty, set()
        for room_id in rooms:
            current = await funnel(self.db, room_id)
            if current != self._last.get(room_id):
                self._last[room_id] = current
                if len(self._last) > 10_000:
                    self._last.clear()
                await self.hub.publish(room_id, SalesChanged(**current))
