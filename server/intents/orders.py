"""Shop orders kept per room with what brought them (docs/revenue.md): the webhook's order events
upsert one ``Order`` row each, idempotently and in any order of arrival.

The state only moves forward (placed < paid < cancelled < refunded): a ``order.paid`` that arrives
after the refund changes no status; each time is set once; refunds are the largest figure heard
(the shop reports the total refunded so far); attribution is fixed when the row is made and later
events only fill in what was missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from server.errors import InvalidInput
from server.intents.wire import Money
from server.storage import Database
from server.storage.revenue import Order

ORDER_EVENTS = ("order.placed", "order.paid", "order.cancelled", "order.refunded")
RANK = {"placed": 0, "paid": 1, "cancelled": 2, "refunded": 3}


@dataclass(frozen=True)
class Attribution:
    """Who ordered, what and through what: resolved from the coupon, ``lw_ref``/``lw_src`` and the
    viewer's attendance of the room."""

    viewer_id: str | None = None
    product_id: int | None = None
    discount_id: int | None = None
    claim_id: int | None = None
    draw_id: int | None = None
    message_id: int | None = None
    first_ref: str | None = None
    last_ref: str | None = None


def check_currency(order: Order | None, money: Money) -> None:
    """An order has one currency: an event naming another is refused (nothing is stored)."""
    if order is not None and order.currency and money.currency and money.currency != order.currency:
        raise InvalidInput(f"data.currency must be the order's currency ({order.currency})")


def apply(order: Order, kind: str, money: Money, who: Attribution, t: int) -> None:
    """One order event on the row (pure: no I/O)."""
    status = kind.removeprefix("order.")
    if RANK[status] > RANK.get(order.status, 0):
        order.status = status
    if order.placed_ms is None:
        order.placed_ms = t  # an order is placed no later than anything else it does
    if status == "paid" and order.paid_ms is None:
        order.paid_ms = t
    if status == "refunded" and order.refunded_ms is None:
        order.refunded_ms = t
    if money.currency is not None:
        order.currency = order.currency or money.currency
    if money.amount_minor is not None and (order.amount_minor is None or status == "paid"):
        order.amount_minor = money.amount_minor  # what was paid is the amount; a placed one is a guess
    if status == "refunded":
        refunded = money.refunded_minor
        if refunded is None:
            refunded = money.amount_minor if money.amount_minor is not None else order.amount_minor or 0
        order.refunded_minor = max(order.refunded_minor, refunded)
    for name in Attribution.__dataclass_fields__:
        if getattr(order, name) is None:
            setattr(order, name, getattr(who, name))
    order.updated_ms = t


async def find(db: Database, room_id: str, order_id: str) -> Order | None:
    async with db.session() as session:
        found: Order | None = (
            await session.exec(select(Order).where(Order.room_id == room_id, Order.order_id == order_id))
        ).first()
        return found


async def upsert(
    db: Database, room_id: str, order_id: str, kind: str, money: Money, who: Attribution, t: int
) -> Order:
    """Apply one order event to the room's row of ``order_id``, made on its first event."""
    for attempt in range(2):
        async with db.session() as session:
            order = (
                await session.exec(select(Order).where(Order.room_id == room_id, Order.order_id == order_id))
            ).first()
            if order is None:
                order = Order(room_id=room_id, order_id=order_id, updated_ms=t)
            apply(order, kind, money, who, t)
            session.add(order)
            try:
                await session.commit()
            except IntegrityError:  # two events of a new order at once: the other made the row
                if attempt:
                    raise
                continue
            await session.refresh(order)
            return order
    raise AssertionError("unreachable")
