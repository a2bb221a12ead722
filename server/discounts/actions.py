"""Discounts: launch, change, stop; claims in batches through the exact-stock step; holds that lapse.

A rush of claims on one discount is served in batches (group commit): whatever arrived while the
previous batch was in its atomic step forms the next one. Each claim keeps the time the server
received it, and that time, not the batch's, decides whether it came too late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from server.auth import Principal, Scope
from server.discounts import rules
from server.discounts.events import ClaimsTick, DiscountChanged, StockTick
from server.discounts.rules import Outcome
from server.discounts.stock import Counts, Stock
from server.domain import ActionContext, ActionTable
from server.errors import Conflict, Forbidden, NotFound
from server.intents import log as intents
from server.products.actions import load_product
from server.products.rules import currency_digits
from server.realtime.hub import Hub
from server.realtime.protocol import direct_frame
from server.rooms.actions import display_names
from server.services import Services
from server.storage import Database, now_ms
from server.storage.models import Claim, Discount, Follow, Item, Product, RoomViewer, Viewer
from server.text import clean_id
from server.ticker import Ticker
from server.ttlcache import TtlCache

log = logging.getLogger("livewall.discounts")

# Direct (unsequenced) frames this domain sends, with their one-line docs.
DIRECT_TYPES = {"claim": "one of the viewer's claims changed (expired, released, redeemed)"}

# Counters of a rush reach every screen in ticks of this length (10 frames a second at most).
STOCK_TICK_SECS = 0.1
# Starts, ends and lapsed holds are looked for this often (the end itself is exact: see rules.decide).
CLOCK_TICK_SECS = 0.25
# One atomic step takes at most this many claims; more wait for the next step.
MAX_CLAIM_BATCH = 500
# A rush reads the discount's rules once per this period per process; a change made here applies at
# once, one made in another process within this time (the counters and the end are always exact).
DISCOUNT_CACHE_SECS = 1.0
RECENT_DISCOUNTS = 20
HOST_CLAIMS = 200
MY_CLAIMS = 50
EXPIRE_BATCH = 500
TOLD_KEPT = 10_000
# A rush is over once no claim came for this long.
RUSH_QUIET_SECS = 0.5

_discounts: TtlCache[tuple[str, int], Discount] = TtlCache(DISCOUNT_CACHE_SECS, max_entries=10_000)


# --- shapes -------------------------------------------------------------------------------------


def discount_shape(d: Discount, c: Counts, t_ms: int | None = None) -> dict[str, Any]:
    """A discount as every surface sees it, with its live counters."""
    t = now_ms() if t_ms is None else t_ms
    stored = "ended" if c.stopped or d.status == "ended" else d.status
    return {
        "id": d.id,
        "product_id": d.product_id,
        "price_minor": d.price_minor,
        "list_price_minor": d.list_price_minor,
        "percent_off": d.percent_off,
        "currency": d.currency,
        "digits": currency_digits(d.currency),
        "quantity": c.quantity,
        "claimed": c.claimed,
        "remaining": c.remaining,
        "per_viewer_limit": d.per_viewer_limit,
        "audience": d.audience,
        "watch_minutes": d.watch_minutes,
        "hold_secs": d.hold_secs,
        "starts_ms": c.starts_ms,
        "ends_ms": c.ends_ms,
        "status": rules.phase(stored, c.quantity, c.claimed, c.starts_ms, c.ends_ms, t),
        "end_reason": d.end_reason,
        "ended_ms": d.ended_ms,
        "created_ms": d.created_ms,
        "v": c.version,
    }


def claim_shape(claim: Claim, product: Product | None) -> dict[str, Any]:
    """A claim as its viewer sees it: the code and the checkout link."""
    return {
        "id": claim.id,
        "discount_id": claim.discount_id,
        "product_id": product.id if product is not None else None,
        "code": claim.code,
        "checkout_url": rules.checkout_url(product.shop_url if product else None, claim.code, claim.viewer_id)
        if claim.status in ("reserved", "redeemed")
        else None,
        "status": claim.status,
        "price_minor": claim.price_minor,
        "currency": product.currency if product is not None else None,
        "digits": currency_digits(product.currency) if product is not None else None,
        "created_ms": claim.created_ms,
        "expires_ms": claim.expires_ms,
    }


def host_claim(claim: Claim, name: str | None, product_id: int) -> dict[str, Any]:
    return {
        "id": claim.id,
        "discount_id": claim.discount_id,
        "product_id": product_id,
        "viewer_id": claim.viewer_id,
        "name": name,
        "code": claim.code,
        "status": claim.status,
        "created_ms": claim.created_ms,
    }


# --- reads --------------------------------------------------------------------------------------


async def load_discount(db: Database, room_id: str, discount_id: object) -> Discount:
    async with db.session() as session:
        d = await session.get(Discount, clean_id(discount_id))
    if d is None or d.room_id != room_id:
        raise NotFound("no such discount in this room")
    return d


async def discount_cached(db: Database, room_id: str, discount_id: object) -> Discount:
    key = clean_id(discount_id)

    async def load() -> Discount:
        return await load_discount(db, room_id, discount_id)

    return await _discounts.get((room_id, key), load)


async def recent_discounts(db: Database, room_id: str) -> list[Discount]:
    async with db.session() as session:
        rows = await session.exec(
            select(Discount)
            .where(Discount.room_id == room_id)
            .order_by(col(Discount.id).desc())
            .limit(RECENT_DISCOUNTS)
        )
        return list(reversed(rows.all()))


# Claims show their product's link and currency: a rush reads each product once per this period.
_products: TtlCache[tuple[int, int], Product | None] = TtlCache(DISCOUNT_CACHE_SECS, max_entries=10_000)


async def _product_of(db: Database, product_id: int) -> Product | None:
    async def load() -> Product | None:
        async with db.session() as session:
            return await session.get(Product, product_id)

    return await _products.get((id(db), product_id), load)


# --- the engine: batches, ticks, clock ----------------------------------------------------------


@dataclass
class _Batch:
    waiting: list[tuple[str, int, asyncio.Future[Claim | Outcome]]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


class Engine(Ticker):
    """Per-process: claim batching, the 100 ms counter ticks and the clock of starts, ends and holds."""

    def __init__(
        self, db: Database, hub: Hub, stock: Stock, *, board: intents.SalesBoard | None = None
    ) -> None:
        super().__init__(STOCK_TICK_SECS, "stock")
        self.db = db
        self.hub = hub
        self.stock = stock
        self._batches: dict[int, _Batch] = {}
        self._counts: dict[str, dict[int, Counts]] = {}
        # discount id -> the version of the figures last published (here or, with Redis, by any
        # process): a tick carries only figures that changed since, and after a sell-out, when
        # every batch is refusals only, there are none.
        self._told: dict[int, int] = {}
        self._claims: dict[str, dict[int, dict[str, Any]]] = {}
        self._clock_task: asyncio.Task[None] | None = None
        self.board = board  # told when claims' intent events are stored
        self._last_claim = -RUSH_QUIET_SECS  # monotonic time of the last claim received

    # claims

    async def claim(self, d: Discount, viewer_id: str, t_ms: int) -> Claim | Outcome:
        assert d.id is not None
        batch = self._batches.get(d.id)
        if batch is None:
            batch = self._batches[d.id] = _Batch()
        loop = asyncio.get_running_loop()
        self._last_claim = loop.time()
        future: asyncio.Future[Claim | Outcome] = loop.create_future()
        batch.waiting.append((viewer_id, t_ms, future))
        if batch.task is None or batch.task.done():
            batch.task = asyncio.create_task(self._drain(d, batch))
        return await future

    async def _drain(self, d: Discount, batch: _Batch) -> None:
        def build(viewer_id: str, t_ms: int) -> Claim:
            assert d.id is not None
            return Claim(
                discount_id=d.id,
                room_id=d.room_id,
                viewer_id=viewer_id,
                code=rules.new_code(),
                price_minor=d.price_minor,
                created_ms=t_ms,
                expires_ms=t_ms + d.hold_secs * 1000,
            )

        def alongside(claims: list[Claim]) -> list[Any]:
            # Each claim's intent event, in the claims' transaction: no second write per winner.
            return [
                intents.event_row(
                    room_id=c.room_id,
                    viewer_id=c.viewer_id,
                    kind="discount.claim",
                    product_id=d.product_id,
                    discount_id=c.discount_id,
                    claim_id=c.id,
                )
                for c in claims
            ]

        while batch.waiting:
            taken, batch.waiting = batch.waiting[:MAX_CLAIM_BATCH], batch.waiting[MAX_CLAIM_BATCH:]

            def decided(verdicts: list[Outcome | None], taken: list[Any] = taken) -> None:
                # Refusals are answered as soon as the atomic step gives them, not after the
                # winners' claims are stored (with Redis most of a rush is refusals).
                for (_, _, future), verdict in zip(taken, verdicts, strict=True):
                    if verdict is not None and not future.done():
                        future.set_result(verdict)

            requests = [(v, t) for v, t, _ in taken]
            try:
                try:
                    results, counts = await self.stock.claim(d, requests, build, decided, alongside)
                except IntegrityError:  # two codes collided (40 random bits): the batch is redone
                    results, counts = await self.stock.claim(d, requests, build, decided, alongside)
            except Exception as exc:
                for _, _, future in taken:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.counts_changed(d, counts)
            if any(isinstance(r, Claim) for r in results):
                intents.recorded(self.board, d.room_id, {"discount.claim"})
            for (_, _, future), result in zip(taken, results, strict=True):
                if not future.done():
                    future.set_result(result)
        if self._batches.get(d.id or 0) is batch:
            del self._batches[d.id or 0]  # nothing waits: a later claim starts a new batch

    def rushing(self) -> bool:
        """Claims are being served (some in the last moment): background work may wait."""
        return bool(self._batches) or asyncio.get_running_loop().time() - self._last_claim < RUSH_QUIET_SECS

    # ticks

    def counts_changed(self, d: Discount, counts: Counts) -> None:
        assert d.id is not None
        if counts.version <= self._told.get(d.id, -1):
            return  # these figures (or newer) are out already
        room = self._counts.setdefault(d.room_id, {})
        old = room.get(d.id)
        if old is None or counts.version >= old.version:
            room[d.id] = counts
        self.wake()

    def claim_changed(self, room_id: str, claim: dict[str, Any]) -> None:
        """Tell the hosts at the next tick (``host_claim`` shape; names are read then, all at once)."""
        self._claims.setdefault(room_id, {})[int(claim["id"])] = claim
        self.wake()

    async def flush(self) -> None:
        counts, self._counts = self._counts, {}
        claims, self._claims = self._claims, {}
        t = now_ms()
        for room_id, by_id in counts.items():
            fresh = {i: c.version for i, c in by_id.items() if c.version > self._told.get(i, -1)}
            mine = await self.stock.first_to_tell(room_id, fresh) if fresh else set()
            if len(self._told) > TOLD_KEPT:
                self._told.clear()  # at worst one tick that repeats figures
            for discount_id in fresh:
                self._told[discount_id] = max(self._told.get(discount_id, -1), fresh[discount_id])
            payload: dict[str, dict[str, Any]] = {}
            for discount_id, c in by_id.items():
                if discount_id not in mine:
                    continue
                status = rules.phase(
                    "ended" if c.stopped else "live", c.quantity, c.claimed, c.starts_ms, c.ends_ms, t
                )
                payload[str(discount_id)] = {
                    "claimed": c.claimed,
                    "remaining": c.remaining,
                    "quantity": c.quantity,
                    "status": status,
                    "v": c.version,
                }
            if payload:
                await self.hub.publish(room_id, StockTick(counts=payload))
        for room_id, by_claim in claims.items():
            newest = [by_claim[k] for k in sorted(by_claim)][-HOST_CLAIMS:]  # what a console keeps
            names = await display_names(self.db, {claim["viewer_id"] for claim in newest})
            for claim in newest:
                claim["name"] = names.get(claim["viewer_id"])
            await self.hub.publish(room_id, ClaimsTick(claims=newest))

    # clock

    async def _clock(self) -> None:
        while True:
            await asyncio.sleep(CLOCK_TICK_SECS)
            try:
                await self.tick_clock(now_ms())
            except Exception:
                log.exception("discount clock failed")

    async def tick_clock(self, t: int) -> None:
        """Start what is due, end what is over, return lapsed holds to stock."""
        async with self.db.session() as session:
            due = (
                await session.exec(
                    select(Discount).where(
                        col(Discount.status).in_(("scheduled", "live")),
                        (col(Discount.ends_ms) <= t)
                        | ((col(Discount.status) == "scheduled") & (col(Discount.starts_ms) <= t)),
                    )
                )
            ).all()
            lapsed = (
                await session.exec(
                    select(Claim)
                    .where(Claim.status == "reserved", col(Claim.expires_ms) <= t)
                    .order_by(col(Claim.expires_ms))
                    .limit(EXPIRE_BATCH)
                )
            ).all()
        for d in due:
            ending = d.ends_ms <= t
            await self._transition(d, "ended" if ending else "live", t)
        for claim in lapsed:
            await self.close_claim(claim, "expired", t)

    async def _transition(self, d: Discount, status: str, t: int) -> None:
        values: dict[str, Any] = {"status": status}
        if status == "ended":
            values.update(end_reason="time", ended_ms=d.ends_ms)
        # Only if still due: a host may have just moved the end (or the start).
        due = col(Discount.ends_ms) <= t if status == "ended" else col(Discount.starts_ms) <= t
        async with self.db.session() as session:
            result = await session.exec(
                update(Discount)
                .where(col(Discount.id) == d.id, col(Discount.status) == d.status, due)
                .values(**values)
            )
            await session.commit()
        if result.rowcount != 1:
            return  # another process did it
        for key, value in values.items():
            setattr(d, key, value)
        _discounts.forget((d.room_id, d.id or 0))
        await self.publish_discount(d, t)

    async def publish_discount(self, d: Discount, t: int | None = None) -> dict[str, Any]:
        shape = discount_shape(d, await self.stock.counts(d), t)
        await self.hub.publish(d.room_id, DiscountChanged(discount=shape))
        return shape

    async def close_claim(self, claim: Claim, status: str, t: int) -> Claim | None:
        """End a reserved claim (expired or released): its unit goes back to stock."""
        async with self.db.session() as session:
            d = await session.get(Discount, claim.discount_id)
        assert d is not None and claim.id is not None
        counts = await self.stock.release(d, claim.id, status, t)
        if counts is None:
            return None  # no longer reserved: redeemed, or closed by another process
        claim.status, claim.closed_ms = status, t
        self.counts_changed(d, counts)
        await self.announce_claim(claim, d)
        return claim

    async def announce_claim(self, claim: Claim, d: Discount) -> None:
        """Tell the claim's viewer (every device) and the room's hosts that a claim changed."""
        product = await _product_of(self.db, d.product_id)
        await self.hub.send_private(
            claim.room_id, claim.viewer_id, direct_frame("claim", claim_shape(claim, product))
        )
        self.claim_changed(claim.room_id, host_claim(claim, None, d.product_id))

    async def start(self) -> None:
        await super().start()
        self._clock_task = asyncio.create_task(self._clock(), name="livewall-discount-clock")

    async def stop(self) -> None:
        if self._clock_task is not None:
            self._clock_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock_task
        await super().stop()


def _engine(services: Services) -> Engine:
    return services.engines.get(Engine)


# --- hosts --------------------------------------------------------------------------------------


async def do_launch(services: Services, principal: Principal, data: dict[str, Any]) -> dict[str, Any]:
    """Start a discount on a product of the room (now, or after ``starts_in_secs``)."""
    product = await load_product(services.db, principal.room_id, data.get("product_id"))
    launch = rules.clean_launch(data, product.price_minor)
    t = now_ms()
    starts = t + launch.starts_in_secs * 1000
    d = Discount(
        room_id=principal.room_id,
        product_id=launch.product_id,
        price_minor=launch.price.price_minor,
        list_price_minor=product.price_minor,
        percent_off=launch.price.percent_off,
        currency=product.currency,
        quantity=launch.quantity,
        per_viewer_limit=launch.per_viewer_limit,
        audience=launch.audience,
        watch_minutes=launch.watch_minutes,
        hold_secs=launch.hold_secs,
        starts_ms=starts,
        ends_ms=starts + launch.duration_secs * 1000,
        status="scheduled" if launch.starts_in_secs else "live",
        created_ms=t,
    )
    async with services.db.session() as session:
        session.add(d)
        await session.commit()
        await session.refresh(d)
    return await _engine(services).publish_discount(d, t)


async def do_update(services: Services, principal: Principal, data: dict[str, Any]) -> dict[str, Any]:
    """Extend (or shorten) a discount, add stock, or change its price, live."""
    d = await load_discount(services.db, principal.room_id, data.get("id"))
    change = rules.clean_change(data, d.list_price_minor)
    t = now_ms()
    engine = _engine(services)
    counts = await engine.stock.counts(d)
    rules.check_changeable("ended" if counts.stopped else d.status, counts.ends_ms, t)
    # Everything is checked before anything is written: a refused change changes nothing.
    end = (
        rules.new_end(counts.starts_ms, counts.ends_ms, change.extend_secs, t) if change.extend_secs else None
    )
    if change.price is not None:
        async with services.db.session() as session:
            await session.exec(
                update(Discount)
                .where(col(Discount.id) == d.id)
                .values(price_minor=change.price.price_minor, percent_off=change.price.percent_off)
            )
            await session.commit()
        d.price_minor, d.percent_off = change.price.price_minor, change.price.percent_off
    if end is not None:
        counts = await engine.stock.window(d, counts.starts_ms, end)
        d.ends_ms = end
    if change.add_stock:
        counts = await engine.stock.add(d, change.add_stock)
        d.quantity = counts.quantity
    _discounts.forget((d.room_id, d.id or 0))
    engine.counts_changed(d, counts)
    return await engine.publish_discount(d, t)


async def do_stop(services: Services, principal: Principal, discount_id: object) -> dict[str, Any]:
    """End a discount now, for everyone."""
    d = await load_discount(services.db, principal.room_id, discount_id)
    t = now_ms()
    engine = _engine(services)
    counts = await engine.stock.counts(d)
    rules.check_changeable("ended" if counts.stopped else d.status, counts.ends_ms, t)
    await engine.stock.stop(d, t)
    d.status, d.end_reason, d.ended_ms = "ended", "stopped", t
    _discounts.forget((d.room_id, d.id or 0))
    return await engine.publish_discount(d, t)


# --- viewers ------------------------------------------------------------------------------------


async def check_eligible(db: Database, d: Discount, viewer_id: str, t: int) -> None:
    """The discount's audience: everyone, watchers of N minutes, followers, or askers about the product."""
    if d.audience == "everyone":
        return
    async with db.session() as session:
        if d.audience == "followers":
            if await session.get(Follow, (d.room_id, viewer_id)) is None:
                raise Forbidden(
                    "this discount is for followers of the room: follow to claim", code="not_eligible"
                )
        elif d.audience == "watchers":
            seen = await session.get(RoomViewer, (d.room_id, viewer_id))
            need = (d.watch_minutes or 0) * 60_000
            if seen is None or t - seen.joined_ms < need:
                raise Forbidden(
                    f"this discount is for viewers watching at least {d.watch_minutes} minutes",
                    code="not_eligible",
                )
        elif d.audience == "askers":
            asked = (
                await session.exec(
                    select(Item.id).where(
                        Item.room_id == d.room_id,
                        Item.viewer_id == viewer_id,
                        Item.product_id == d.product_id,
                    )
                )
            ).first()
            if asked is None:
                raise Forbidden(
                    "this discount is for viewers who asked about the product", code="not_eligible"
                )


async def do_claim(
    services: Services, principal: Principal, discount_id: object, t_ms: int | None = None
) -> dict[str, Any]:
    """Reserve one unit for the viewer; the server's receipt time decides if it came in time."""
    assert principal.viewer_id is not None
    t = now_ms() if t_ms is None else t_ms
    d = await discount_cached(services.db, principal.room_id, discount_id)
    await check_eligible(services.db, d, principal.viewer_id, t)
    result = await _engine(services).claim(d, principal.viewer_id, t)
    if isinstance(result, Outcome):
        raise Conflict(rules.OUTCOME_MESSAGES[result], code=result.value)
    # Stored with its intent event (``discount.claim``) in the batch's transaction.
    product = await _product_of(services.db, d.product_id)
    _engine(services).claim_changed(d.room_id, host_claim(result, None, d.product_id))
    shape = claim_shape(result, product)
    # The viewer's other phones and tabs learn of the code too (this one has it in the ack, which
    # does not wait for them).
    services.hub.post_private(d.room_id, principal.viewer_id, direct_frame("claim", shape))
    return shape


async def do_release(services: Services, principal: Principal, claim_id: object) -> dict[str, Any]:
    """A viewer gives a reserved unit back."""
    async with services.db.session() as session:
        claim = await session.get(Claim, clean_id(claim_id))
    if claim is None or claim.room_id != principal.room_id or claim.viewer_id != principal.viewer_id:
        raise NotFound("no such claim of yours in this room")
    closed = await _engine(services).close_claim(claim, "released", now_ms())
    if closed is None:
        raise Conflict("this claim is no longer reserved (used, expired or given back)", code="bad_state")
    d = await load_discount(services.db, claim.room_id, claim.discount_id)
    return claim_shape(closed, await _product_of(services.db, d.product_id))


async def my_claims(db: Database, room_id: str, viewer_id: str) -> list[dict[str, Any]]:
    async with db.session() as session:
        rows = (
            await session.exec(
                select(Claim, Product)
                .join(Discount, col(Discount.id) == col(Claim.discount_id))
                .join(Product, col(Product.id) == col(Discount.product_id))
                .where(Claim.room_id == room_id, Claim.viewer_id == viewer_id)
                .order_by(col(Claim.id).desc())
                .limit(MY_CLAIMS)
            )
        ).all()
    return [claim_shape(c, p) for c, p in reversed(rows)]


async def recent_claims(db: Database, room_id: str) -> list[dict[str, Any]]:
    async with db.session() as session:
        rows = (
            await session.exec(
                select(Claim, Viewer.display_name, Discount.product_id)
                .join(Viewer, col(Viewer.id) == col(Claim.viewer_id))
                .join(Discount, col(Discount.id) == col(Claim.discount_id))
                .where(Claim.room_id == room_id)
                .order_by(col(Claim.id).desc())
                .limit(HOST_CLAIMS)
            )
        ).all()
    return [host_claim(c, name, product_id) for c, name, product_id in reversed(rows)]


# --- WebSocket actions --------------------------------------------------------------------------


# The client actions this domain handles (declared to the app in its domain.py).
ACTIONS = ActionTable()


@ACTIONS.action(
    "discount.launch", scope=Scope.CONTROL, doc="host: start a time-limited discount on a product"
)
async def _ws_launch(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return await do_launch(ctx.services, ctx.principal, data)


@ACTIONS.action(
    "discount.update", scope=Scope.CONTROL, doc="host: extend a discount, add stock or change its price"
)
async def _ws_update(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return await do_update(ctx.services, ctx.principal, data)


@ACTIONS.action("discount.stop", scope=Scope.CONTROL, doc="host: end a discount now")
async def _ws_stop(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return await do_stop(ctx.services, ctx.principal, data.get("id"))


@ACTIONS.action(
    "discount.claim", scope=Scope.PARTICIPATE, doc="viewer: claim one unit of a discount (a coupon code)"
)
async def _ws_claim(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return await do_claim(ctx.services, ctx.principal, data.get("id"))


@ACTIONS.action("discount.release", scope=Scope.PARTICIPATE, doc="viewer: give a reserved unit back")
async def _ws_release(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return await do_release(ctx.services, ctx.principal, data.get("id"))
