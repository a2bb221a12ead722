"""The discounts' engine, one per process: claims served in batches through the exact-stock step, the
100 ms counter ticks, and the clock of starts, ends and lapsed holds.

A rush of claims on one discount is served in batches (group commit): whatever arrived while the
previous batch was in its atomic step forms the next one. Each claim keeps the time the server
received it, and that time, not the batch's, decides whether it came too late.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, col, select

from server.discounts import rules, wire
from server.discounts.events import ClaimsTick, DiscountChanged, StockTick
from server.discounts.rules import Outcome
from server.discounts.stock import Counts, Stock
from server.errors import NotFound
from server.intents import log as intents
from server.realtime.hub import Hub
from server.realtime.protocol import direct_frame
from server.rooms import sources
from server.rooms.actions import display_names
from server.storage import Database, now_ms
from server.storage.models import Claim, Discount, Product
from server.ticker import Clock, Ticker
from server.ttlcache import TtlCache

log = logging.getLogger("livewall.discounts")

# Counters of a rush reach every screen in ticks of this length (10 frames a second at most).
STOCK_TICK_SECS = 0.1
# Starts, ends and lapsed holds are looked for this often (the end itself is exact: see rules.decide).
CLOCK_TICK_SECS = 0.25
# One atomic step takes at most this many claims; more wait for the next step.
MAX_CLAIM_BATCH = 500
# A rush reads the discount's rules once per this period per process; a change made here applies at
# once, one made in another process within this time (the counters and the end are always exact).
# Claims show their product's link and currency: a rush reads each product once per this period too.
DISCOUNT_CACHE_SECS = 1.0
CACHED_MAX = 10_000
HOST_CLAIMS = 200  # what a console keeps
EXPIRE_BATCH = 500
TOLD_KEPT = 10_000
# A rush is over once no claim came for this long.
RUSH_QUIET_SECS = 0.5


async def load_discount(db: Database, room_id: str, discount_id: int) -> Discount:
    """A discount of the room, or NotFound."""
    async with db.session() as session:
        d = await session.get(Discount, discount_id)
    if d is None or d.room_id != room_id:
        raise NotFound("no such discount in this room")
    return d


# A claim waiting for its batch: the viewer, the time it was received, and its answer to come.
Waiting = tuple[str, int, asyncio.Future[Claim | Outcome]]


@dataclass
class _Batch:
    waiting: list[Waiting] = field(default_factory=list)
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
        self._claims: dict[str, dict[int, wire.HostClaim]] = {}
        self._clock = Clock(CLOCK_TICK_SECS, "discount-clock", self.tick_clock)
        self.board = board  # told when claims' intent events are stored
        self._last_claim = -RUSH_QUIET_SECS  # monotonic time of the last claim received
        self._discounts: TtlCache[tuple[str, int], Discount] = TtlCache(DISCOUNT_CACHE_SECS, CACHED_MAX)
        self._products: TtlCache[int, Product | None] = TtlCache(DISCOUNT_CACHE_SECS, CACHED_MAX)

    # reads a rush repeats

    async def discount(self, room_id: str, discount_id: int) -> Discount:
        """The discount as read at most ``DISCOUNT_CACHE_SECS`` ago (or NotFound)."""

        async def load() -> Discount:
            return await load_discount(self.db, room_id, discount_id)

        return await self._discounts.get((room_id, discount_id), load)

    def forget(self, d: Discount) -> None:
        """The discount's rules changed here: the next read is fresh."""
        self._discounts.forget((d.room_id, d.id or 0))

    async def product_of(self, product_id: int) -> Product | None:
        async def load() -> Product | None:
            async with self.db.session() as session:
                return await session.get(Product, product_id)

        return await self._products.get(product_id, load)

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
        refs: dict[str, str | None] = {}  # each claimer's last-touch source (docs/revenue.md)

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
                ref=refs.get(viewer_id),
            )

        def alongside(claims: list[Claim]) -> list[SQLModel]:
            # Each claim's intent event, in the claims' transaction: no second write per winner.
            return [
                intents.event_row(
                    room_id=c.room_id,
                    viewer_id=c.viewer_id,
                    kind="discount.claim",
                    product_id=d.product_id,
                    discount_id=c.discount_id,
                    claim_id=c.id,
                    ref=c.ref,
                )
                for c in claims
            ]

        while batch.waiting:
            taken, batch.waiting = batch.waiting[:MAX_CLAIM_BATCH], batch.waiting[MAX_CLAIM_BATCH:]

            def decided(verdicts: list[Outcome | None], taken: list[Waiting] = taken) -> None:
                # Refusals are answered as soon as the atomic step gives them, not after the
                # winners' claims are stored (with Redis most of a rush is refusals).
                for (_, _, future), verdict in zip(taken, verdicts, strict=True):
                    if verdict is not None and not future.done():
                        future.set_result(verdict)

            requests = [(v, t) for v, t, _ in taken]
            try:
                refs.update(await sources.last_refs(self.db, d.room_id, {v for v, _ in requests}))
            except Exception:  # a claim never fails for want of its attribution
                log.exception("reading the claimers' sources failed")
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

    def claim_changed(self, room_id: str, claim: wire.HostClaim) -> None:
        """Tell the hosts at the next tick (names are read then, all at once)."""
        assert claim.id is not None
        self._claims.setdefault(room_id, {})[claim.id] = claim
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
            payload = wire.stock_shape({i: c for i, c in by_id.items() if i in mine}, t)
            if payload:
                await self.hub.publish(room_id, StockTick(counts=payload))
        for room_id, by_claim in claims.items():
            newest = [by_claim[k] for k in sorted(by_claim)][-HOST_CLAIMS:]  # what a console keeps
            names = await display_names(self.db, {claim.viewer_id for claim in newest})
            shapes = [wire.host_claim_shape(claim.named(names.get(claim.viewer_id))) for claim in newest]
            await self.hub.publish(room_id, ClaimsTick(claims=shapes))

    # clock

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
        values: dict[str, object] = {"status": status}
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
        self.forget(d)
        await self.publish_discount(d, t)

    async def publish_discount(self, d: Discount, t: int | None = None) -> wire.DiscountView:
        """Tell the room a discount changed, with its live counters; returns what was told."""
        counts = await self.stock.counts(d)
        view = wire.DiscountView(d, counts, now_ms() if t is None else t)
        await self.hub.publish(d.room_id, DiscountChanged(discount=wire.discount_view_shape(view)))
        return view

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

    async def announce_claim(self, claim: Claim, d: Discount, *, wait: bool = True) -> wire.ClaimView:
        """Tell the claim's viewer (every device) and the room's hosts that a claim changed; returns
        the viewer's view of it. ``wait=False`` posts the viewer's frame without awaiting it (a
        winner's answer does not wait for their other devices)."""
        view = wire.ClaimView(claim, await self.product_of(d.product_id))
        frame = direct_frame("claim", wire.claim_view_shape(view))
        if wait:
            await self.hub.send_private(claim.room_id, claim.viewer_id, frame)
        else:
            self.hub.post_private(claim.room_id, claim.viewer_id, frame)
        self.claim_changed(claim.room_id, wire.HostClaim.of(claim, None, d.product_id))
        return view

    async def start(self) -> None:
        await super().start()
        self._clock.start()

    async def stop(self) -> None:
        await self._clock.stop()
        await super().stop()
