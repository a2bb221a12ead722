"""SQLModel tables. Times are integer milliseconds since the epoch (UTC), the unit of the wire protocol."""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel


class Room(SQLModel, table=True):
    """A live-stream room: one session of a show, shared by viewers, host and screen."""

    id: str = Field(primary_key=True, max_length=32)
    title: str = Field(max_length=200)
    status: str = Field(default="scheduled", max_length=16)  # scheduled | live | ended
    created_ms: int = Field(sa_type=BigInteger)
    started_ms: int | None = Field(default=None, sa_type=BigInteger)
    ended_ms: int | None = Field(default=None, sa_type=BigInteger)
    host_key_hash: str = Field(max_length=200)
    host_key_gen: int = 1  # bumped when the host key is replaced: old host sessions stop working
    screen_key_gen: int = 1  # bumped to revoke the big-screen link
    peak_viewers: int = 0


class Viewer(SQLModel, table=True):
    """One audience member's identity, kept across rooms by a signed cookie or API token."""

    id: str = Field(primary_key=True, max_length=32)
    display_name: str | None = Field(default=None, max_length=40)
    created_ms: int = Field(sa_type=BigInteger)


class RoomViewer(SQLModel, table=True):
    """A viewer's attendance of a room (the audience list that segments are built from)."""

    room_id: str = Field(primary_key=True, foreign_key="room.id", max_length=32)
    viewer_id: str = Field(primary_key=True, foreign_key="viewer.id", max_length=32)
    joined_ms: int = Field(sa_type=BigInteger)


class Announcement(SQLModel, table=True):
    """A message from the host to everyone in the room."""

    id: int | None = Field(default=None, primary_key=True)
    room_id: str = Field(foreign_key="room.id", index=True, max_length=32)
    text: str = Field(max_length=500)
    created_ms: int = Field(sa_type=BigInteger)


class Product(SQLModel, table=True):
    """An item on the room's shelf. Prices are in minor units (cents, fen) to keep arithmetic exact."""

    id: int | None = Field(default=None, primary_key=True)
    room_id: str = Field(foreign_key="room.id", index=True, max_length=32)
    name: str = Field(max_length=200)
    image_url: str | None = Field(default=None, max_length=1000)
    price_minor: int
    currency: str = Field(default="CNY", max_length=3)
    stock: int = 0
    sku: str | None = Field(default=None, max_length=64)
    shop_url: str | None = Field(default=None, max_length=1000)
    created_ms: int = Field(sa_type=BigInteger)
