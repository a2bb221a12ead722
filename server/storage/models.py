"""SQLModel tables. Times are integer milliseconds since the epoch (UTC), the unit of the wire protocol."""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Text, false, true
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
    # The studio (issue 21): the organisation that owns the room, and how the show is announced.
    org_id: str = Field(
        default="default",
        foreign_key="organisation.id",
        max_length=32,
        index=True,
        sa_column_kwargs={"server_default": "default"},
    )
    scheduled_ms: int | None = Field(default=None, sa_type=BigInteger)  # the announced start
    description: str | None = Field(default=None, max_length=2000)
    cover: str | None = Field(default=None, max_length=64)  # a stored image's name (server/media.py)
    host_key_enabled: bool = Field(default=True, sa_column_kwargs={"server_default": true()})
    cloned_from: str | None = Field(default=None, max_length=32)


class RevokedToken(SQLModel, table=True):
    """A logged-out host token, refused until it would have expired anyway (server/rooms/access.py).
    ``id`` is the token's hash (``auth.token_id``): the deny list holds nothing that logs in."""

    id: str = Field(primary_key=True, max_length=64)
    room_id: str = Field(foreign_key="room.id", max_length=32)
    expires_ms: int = Field(sa_type=BigInteger, index=True)


class Viewer(SQLModel, table=True):
    """One audience member's identity, kept across rooms by a signed cookie or API token."""

    id: str = Field(primary_key=True, max_length=32)
    display_name: str | None = Field(default=None, max_length=40)
    # The phone's language (en | zh-CN): messages to a viewer who left no contact are written in it.
    locale: str | None = Field(default=None, max_length=8)
    created_ms: int = Field(sa_type=BigInteger)


class RoomViewer(SQLModel, table=True):
    """A viewer's attendance of a room (the audience list that segments are built from)."""

    room_id: str = Field(primary_key=True, foreign_key="room.id", max_length=32)
    viewer_id: str = Field(primary_key=True, foreign_key="viewer.id", max_length=32)
    joined_ms: int = Field(sa_type=BigInteger)
    # Sources (docs/revenue.md): the entry link of the first visit, and of the latest that named one.
    first_ref: str | None = Field(default=None, max_length=16)
    last_ref: str | None = Field(default=None, max_length=16)
    last_message_id: int | None = None  # the follow-up message whose tracked link was clicked last


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
    description: str | None = Field(default=None, max_length=2000)
    # Removed from the shelf; kept for the claims and events that name it.
    archived: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    created_ms: int = Field(sa_type=BigInteger)


class RoomSettings(SQLModel, table=True):
    """Live-adjustable room settings for the audience's voice (one row per room, created on demand)."""

    room_id: str = Field(primary_key=True, foreign_key="room.id", max_length=32)
    moderation: str = Field(default="post", max_length=8)  # post | pre
    slow_mode_secs: float = 0.0  # seconds between a viewer's posts; 0 = off
    blocklist: str | None = None  # JSON list of words; None = the default list
    layout: str = Field(default="wall", max_length=16)  # wall | spotlight | top | clean
    spotlight_item_id: int | None = None
    pinned_product_id: int | None = None
    pinned_ms: int | None = Field(default=None, sa_type=BigInteger)


class Item(SQLModel, table=True):
    """A comment, question or piece of product feedback from a viewer."""

    id: int | None = Field(default=None, primary_key=True)
    room_id: str = Field(foreign_key="room.id", index=True, max_length=32)
    viewer_id: str = Field(foreign_key="viewer.id", index=True, max_length=32)
    author: str | None = Field(default=None, max_length=40)  # display name when posted
    kind: str = Field(max_length=16)  # comment | question | suggestion | concern | need
    text: str = Field(max_length=300)
    product_id: int | None = Field(default=None, foreign_key="product.id")
    status: str = Field(default="visible", max_length=16)  # pending | visible | answered | hidden
    votes: int = 0
    blocked_word: str | None = Field(default=None, max_length=50)
    answer: str | None = Field(default=None, max_length=1000)  # public, typed by the host
    reply: str | None = Field(default=None, max_length=1000)  # private, to the asker only
    claimed_by: str | None = Field(default=None, max_length=40)  # moderator handling it
    created_ms: int = Field(sa_type=BigInteger)
    answered_ms: int | None = Field(default=None, sa_type=BigInteger)


class Vote(SQLModel, table=True):
    """One viewer's upvote of one item (a viewer votes once; withdrawing deletes the row)."""

    item_id: int = Field(primary_key=True, foreign_key="item.id")
    # Indexed alone too: a welcome storm asks which of 500 viewers voted in a room.
    viewer_id: str = Field(primary_key=True, foreign_key="viewer.id", index=True, max_length=32)
    created_ms: int = Field(sa_type=BigInteger)


class Sanction(SQLModel, table=True):
    """A viewer muted until a time, or banned for the session, in one room."""

    room_id: str = Field(primary_key=True, foreign_key="room.id", max_length=32)
    viewer_id: str = Field(primary_key=True, foreign_key="viewer.id", max_length=32)
    mute_until_ms: int | None = Field(default=None, sa_type=BigInteger)
    banned: bool = False


class ModerationLog(SQLModel, table=True):
    """Every moderation action, kept for the export and for disputes."""

    id: int | None = Field(default=None, primary_key=True)
    room_id: str = Field(foreign_key="room.id", index=True, max_length=32)
    actor: str = Field(max_length=40)
    action: str = Field(max_length=24)
    item_id: int | None = None
    viewer_id: str | None = Field(default=None, max_length=32)
    detail: str | None = Field(default=None, max_length=2000)
    created_ms: int = Field(sa_type=BigInteger)


class Discount(SQLModel, table=True):
    """A time-limited offer on a product with a limited quantity (a flash deal).

    With the embedded backend ``claimed`` is the live count, changed only by one conditional
    statement per claim batch; with Redis the live counts are in Redis and this row keeps the
    configuration and the final figures.
    """

    id: int | None = Field(default=None, primary_key=True)
    room_id: str = Field(foreign_key="room.id", index=True, max_length=32)
    product_id: int = Field(foreign_key="product.id")
    price_minor: int = Field(sa_type=BigInteger)  # the deal price
    list_price_minor: int = Field(sa_type=BigInteger)
    percent_off: int | None = None
    currency: str = Field(max_length=3)
    quantity: int  # units put on the deal, including those added later
    claimed: int = 0  # units reserved or redeemed
    version: int = 0  # bumped by every change of the counters, so clients keep the newest figures
    per_viewer_limit: int = 1
    audience: str = Field(default="everyone", max_length=16)  # everyone | watchers | followers | askers
    watch_minutes: int | None = None
    hold_secs: int = 900
    starts_ms: int = Field(sa_type=BigInteger)
    ends_ms: int = Field(sa_type=BigInteger)
    # Stored lifecycle: scheduled | live | ended. "sold_out" is never stored: clients are told it when
    # claimed reaches quantity, and it lifts by itself when units come back.
    status: str = Field(default="live", max_length=16, index=True)
    end_reason: str | None = Field(default=None, max_length=16)  # time | stopped
    created_ms: int = Field(sa_type=BigInteger)
    ended_ms: int | None = Field(default=None, sa_type=BigInteger)


class Claim(SQLModel, table=True):
    """One unit of a discount reserved by a viewer, with the coupon code that redeems it."""

    id: int | None = Field(default=None, primary_key=True)
    discount_id: int = Field(foreign_key="discount.id", index=True)
    room_id: str = Field(foreign_key="room.id", index=True, max_length=32)
    viewer_id: str = Field(foreign_key="viewer.id", index=True, max_length=32)
    code: str = Field(unique=True, max_length=24)
    status: str = Field(default="reserved", max_length=16, index=True)  # reserved|redeemed|released|expired
    price_minor: int = Field(sa_type=BigInteger)
    created_ms: int = Field(sa_type=BigInteger)
    expires_ms: int = Field(sa_type=BigInteger, index=True)
    closed_ms: int | None = Field(default=None, sa_type=BigInteger)  # redeemed, released or expired
    ref: str | None = Field(default=None, max_length=16)  # the viewer's source code when claiming


class Follow(SQLModel, table=True):
    """A viewer follows a room (the audience of follower-only deals)."""

    room_id: str = Field(primary_key=True, foreign_key="room.id", max_length=32)
    viewer_id: str = Field(primary_key=True, foreign_key="viewer.id", max_length=32)
    created_ms: int = Field(sa_type=BigInteger)


class IntentEvent(SQLModel, table=True):
    """The event log of purchase intent and outcomes, from rooms and from the shop; follow-up
    messaging reads it. ``event_id`` makes every event idempotent (a retried delivery is ignored)."""

    # The funnel counts distinct viewers per room, kind and product every second during a rush.
    __table_args__ = (
        Index("ix_intentevent_funnel", "room_id", "kind", "product_id", "viewer_id"),
        # Shop events that name only an order are matched to the order's earlier events.
        Index("ix_intentevent_order", "room_id", "order_id"),
        Index("ix_intentevent_ref", "room_id", "ref"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=80)
    room_id: str = Field(foreign_key="room.id", index=True, max_length=32)
    viewer_id: str | None = Field(default=None, index=True, max_length=32)
    kind: str = Field(
        max_length=32
    )  # product.view | product.details | product.buy | discount.claim | order.paid ...
    source: str = Field(default="room", max_length=8)  # room | shop
    product_id: int | None = None
    discount_id: int | None = None
    claim_id: int | None = None
    order_id: str | None = Field(default=None, max_length=80)
    data: str | None = Field(default=None, sa_type=Text)  # JSON: what else the source said (up to 64 KiB)
    ref: str | None = Field(default=None, max_length=16)  # the viewer's source code at the time
    created_ms: int = Field(sa_type=BigInteger)
    # Taken up by follow-up messaging (journey entries, goals, conversions); false until then.
    routed: bool = Field(default=False, sa_column_kwargs={"server_default": false()}, index=True)


class Draw(SQLModel, table=True):
    """A lucky draw: who may enter, the prizes, the commitment and, once drawn, the revealed seed."""

    id: int | None = Field(default=None, primary_key=True)
    room_id: str = Field(foreign_key="room.id", index=True, max_length=32)
    code: str = Field(unique=True, max_length=16)  # public id of the draw (verification page)
    title: str = Field(max_length=200)
    mode: str = Field(max_length=16)  # everyone | join | keyword | askers | claimers | buyers | shake
    keyword: str | None = Field(default=None, max_length=40)
    tiers: str = Field(sa_type=Text)  # JSON [{name, image_url, count, eligible}]
    tier_order_random: bool = False
    weights: str | None = Field(default=None, max_length=1000)  # JSON {action: extra chances}
    exclude_winners: bool = False
    max_wins: int | None = None  # per viewer, across this room's draws
    window_secs: int = 0
    claim_secs: int = 3600
    status: str = Field(default="open", max_length=16, index=True)  # open | frozen | drawn | cancelled
    seed: str = Field(max_length=64)  # hex; secret until drawn
    seed_sha256: str = Field(max_length=64)
    entrants_sha256: str | None = Field(default=None, max_length=64)
    tier_order: str | None = Field(default=None, max_length=400)  # JSON list, fixed when drawn
    absent: str = Field(default="[]", sa_type=Text)  # JSON list of places re-drawn, in order
    created_ms: int = Field(sa_type=BigInteger)
    closes_ms: int = Field(sa_type=BigInteger)  # the entry window's end
    frozen_ms: int | None = Field(default=None, sa_type=BigInteger)
    drawn_ms: int | None = Field(default=None, sa_type=BigInteger)
    claim_until_ms: int | None = Field(default=None, sa_type=BigInteger)


class DrawEntry(SQLModel, table=True):
    """One viewer in one draw; ``entrant`` is the pseudonym the public record uses."""

    draw_id: int = Field(primary_key=True, foreign_key="draw.id")
    viewer_id: str = Field(primary_key=True, foreign_key="viewer.id", index=True, max_length=32)
    entrant: str = Field(max_length=16, index=True)
    name: str | None = Field(default=None, max_length=40)  # display name when entering
    weight: int = 1
    shakes: int = 0
    tiers: str | None = Field(default=None, max_length=400)  # JSON list of eligible tiers; None = all
    frozen: bool = False  # in the committed entrant list (set when entries close)
    created_ms: int = Field(sa_type=BigInteger)


class DrawWinner(SQLModel, table=True):
    """A place of a drawn draw and who holds it; a re-drawn place keeps its replaced rows (absent)."""

    id: int | None = Field(default=None, primary_key=True)
    draw_id: int = Field(foreign_key="draw.id", index=True)
    place: int
    tier: int
    viewer_id: str = Field(foreign_key="viewer.id", index=True, max_length=32)
    entrant: str = Field(max_length=16)
    status: str = Field(default="won", max_length=16)  # won | confirmed | absent | claimed
    claim_name: str | None = Field(default=None, max_length=80)
    claim_phone: str | None = Field(default=None, max_length=32)  # E.164
    claim_email: str | None = Field(default=None, max_length=254)
    consent: bool = False
    consent_text: str | None = Field(default=None, max_length=500)
    claimed_ms: int | None = Field(default=None, sa_type=BigInteger)
    created_ms: int = Field(sa_type=BigInteger)


# The follow-up tables live in their own module; importing it registers them on the same metadata.
from server.storage.accounts import *  # noqa: E402, F403
from server.storage.followup import *  # noqa: E402, F403
from server.storage.revenue import *  # noqa: E402, F403
