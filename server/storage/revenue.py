"""SQLModel tables of sources and revenue (docs/revenue.md): the entry links a host hands out per
channel, and the shop's orders with what brought each one (first and last touch)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, UniqueConstraint, false
from sqlmodel import Field, SQLModel


class SourceCode(SQLModel, table=True):
    """A named entry link of a room (``/r/{room}?src=CODE``): a poster's QR code, a WeChat group, a KOL."""

    code: str = Field(primary_key=True, max_length=16)  # short, random, URL-safe
    room_id: str = Field(foreign_key="room.id", index=True, max_length=32)
    label: str = Field(max_length=80)
    # poster | wechat_group | miniprogram | web | app | kol | store | other
    channel: str = Field(max_length=16)
    created_ms: int = Field(sa_type=BigInteger)
    archived: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class Order(SQLModel, table=True):
    """One shop order of a room, kept up to date by the shop webhook. Amounts are in minor units of
    ``currency`` and are never added up across currencies."""

    __table_args__ = (
        UniqueConstraint("room_id", "order_id", name="uq_order_room_order"),
        # What the reports group by (issue 22): source, product, discount, and the day it was paid.
        Index("ix_order_room_ref", "room_id", "last_ref"),
        Index("ix_order_room_first_ref", "room_id", "first_ref"),
        Index("ix_order_room_product", "room_id", "product_id"),
        Index("ix_order_room_discount", "room_id", "discount_id"),
        Index("ix_order_room_paid", "room_id", "paid_ms"),
    )

    id: int | None = Field(default=None, primary_key=True)
    room_id: str = Field(foreign_key="room.id", max_length=32)
    order_id: str = Field(max_length=80)  # the shop's id
    viewer_id: str | None = Field(default=None, max_length=32, index=True)
    product_id: int | None = None
    discount_id: int | None = None
    claim_id: int | None = None
    draw_id: int | None = None  # always None today: a draw prize is not a coupon (docs/revenue.md)
    message_id: int | None = None  # the follow-up message whose tracked link was clicked last
    first_ref: str | None = Field(default=None, max_length=16)
    last_ref: str | None = Field(default=None, max_length=16)
    currency: str | None = Field(default=None, max_length=3)  # ISO 4217
    amount_minor: int | None = Field(default=None, sa_type=BigInteger)
    refunded_minor: int = Field(default=0, sa_type=BigInteger)
    status: str = Field(default="placed", max_length=12)  # placed | paid | refunded | cancelled
    placed_ms: int | None = Field(default=None, sa_type=BigInteger)
    paid_ms: int | None = Field(default=None, sa_type=BigInteger)
    refunded_ms: int | None = Field(default=None, sa_type=BigInteger)
    updated_ms: int = Field(sa_type=BigInteger)


__all__ = ["Order", "SourceCode"]
