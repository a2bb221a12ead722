"""Exact stock in both backends: random sequences of claims, releases, restocks and stops never
break the invariant, and both backends agree with the pure model step by step."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from server.discounts import rules
from server.discounts.rules import Outcome
from server.discounts.stock import ACTIVE_CLAIMS, SqlStock, Stock
from server.discounts.stock_redis import RedisStock
from server.rooms.actions import create_room
from server.storage import Database, now_ms
from server.storage.models import Claim, Discount, IntentEvent, Product, Viewer

VIEWERS = [f"viewer{i}" for i in range(6)]
T0 = now_ms()  # real times: Redis keys expire after the end

Op = tuple[str, Any]
ops = st.lists(
    st.one_of(
        st.tuples(st.just("claim"), st.lists(st.sampled_from(VIEWERS), min_size=1, max_size=8)),
        st.tuples(st.just("release"), st.integers(0, 50)),
        st.tuples(st.just("add"), st.integers(1, 3)),
        st.tuples(st.just("stop"), st.none()),
    ),
    max_size=25,
)


class World:
    """A database with one room, product and viewers; a new discount per example."""

    def __init__(self, db: Database, room_id: str, product_id: int) -> None:
        self.db = db
        self.room_id = room_id
        self.product_id = product_id
        self.codes = itertools.count()

    async def discount(self, quantity: int, limit: int) -> Discount:
        d = Discount(
            room_id=self.room_id, product_id=self.product_id, price_minor=100, list_price_minor=200,
            currency="CNY", quantity=quantity, per_viewer_limit=limit, starts_ms=0, ends_ms=T0 + 3_600_000,
            created_ms=0,
        )  # fmt: skip
        async with self.db.session() as session:
            session.add(d)
            await session.commit()
            await session.refresh(d)
        return d

    def build(self, d: Discount) -> Any:
        def make(viewer_id: str, t_ms: int) -> Claim:
            assert d.id is not None
            return Claim(
                discount_id=d.id, room_id=d.room_id, viewer_id=viewer_id, code=f"C{next(self.codes)}",
                price_minor=d.price_minor, created_ms=t_ms, expires_ms=t_ms + 1000,
            )  # fmt: skip

        return make

    async def active(self, d: Discount) -> dict[str, int]:
        async with self.db.session() as session:
            rows = await session.exec(
                select(Claim.viewer_id, func.count())
                .where(Claim.discount_id == d.id, col(Claim.status).in_(ACTIVE_CLAIMS))
                .group_by(col(Claim.viewer_id))
            )
            return {v: int(n) for v, n in rows.all()}

    async def reserved_ids(self, d: Discount) -> list[int]:
        async with self.db.session() as session:
            rows = await session.exec(
                select(Claim.id)
                .where(Claim.discount_id == d.id, Claim.status == "reserved")
                .order_by(col(Claim.id))
            )
            return [int(i or 0) for i in rows.all()]


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    path: Path = tmp_path_factory.mktemp("stock") / "stock.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    room, _ = await create_room(db, title="stock")
    async with db.session() as session:
        product = Product(room_id=room.id, name="p", price_minor=200, created_ms=0)
        session.add(product)
        session.add_all([Viewer(id=v, created_ms=0) for v in VIEWERS])
        await session.commit()
        await session.refresh(product)
    assert product.id is not None
    yield World(db, room.id, product.id)
    await db.dispose()


async def run_sequence(world: World, stock: Stock, quantity: int, limit: int, sequence: list[Op]) -> None:
    d = await world.discount(quantity, limit)
    model_quantity, stopped = quantity, False
    t = T0
    for op, arg in sequence:
        t += 1
        held = await world.active(d)
        claimed_before = sum(held.values())
        if op == "claim":
            requests = [(v, t) for v in arg]
            state = rules.StockState(model_quantity, claimed_before, limit, 0, T0 + 3_600_000, stopped)
            expected, _ = rules.allocate(state, held, requests)
            results, counts = await stock.claim(d, requests, world.build(d))
            got = [r if isinstance(r, Outcome) else Outcome.OK for r in results]
            assert got == expected
        elif op == "release":
            reserved = await world.reserved_ids(d)
            if reserved:
                counts_or_none = await stock.release(d, reserved[arg % len(reserved)], "released", t)
                assert counts_or_none is not None
            again = await stock.release(d, reserved[arg % len(reserved)], "released", t) if reserved else None
            assert again is None  # a claim is given back once
        elif op == "add":
            model_quantity += arg
            await stock.add(d, arg)
        else:
            stopped = True
            await stock.stop(d, t)
        counts = await stock.counts(d)
        held = await world.active(d)
        # The invariant: the counter is the number of active claims, never above the quantity
        # (a stop or a release can only lower it), and no viewer over the limit.
        assert counts.claimed == sum(held.values())
        assert counts.quantity == model_quantity
        assert counts.claimed <= max(model_quantity, 0)
        assert all(n <= limit for n in held.values())
        assert counts.stopped == stopped


SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(quantity=st.integers(0, 6), limit=st.integers(1, 3), sequence=ops)
async def test_sql_stock_keeps_the_invariant(
    world: World, quantity: int, limit: int, sequence: list[Op]
) -> None:
    """Embedded (one transaction per step): claims match the model, the count matches the claims."""
    await run_sequence(world, SqlStock(world.db), quantity, limit, sequence)


@pytest.mark.redis
@SETTINGS
@given(quantity=st.integers(0, 6), limit=st.integers(1, 3), sequence=ops)
async def test_redis_stock_keeps_the_invariant(
    world: World, redis_url: str, quantity: int, limit: int, sequence: list[Op]
) -> None:
    """Redis (one Lua script per step): the same sequences give the same outcomes and counts."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        await run_sequence(world, RedisStock(world.db, client), quantity, limit, sequence)
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_redis_rebuilds_lost_counters_from_the_claims(world: World, redis_url: str) -> None:
    """If Redis loses a discount's counters, they are rebuilt from the stored claims: no unit is
    handed out twice."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        stock = RedisStock(world.db, client)
        d = await world.discount(3, 1)
        results, counts = await stock.claim(d, [("viewer0", T0), ("viewer1", T0)], world.build(d))
        assert counts.claimed == 2
        await client.delete(*RedisStock._keys(d))
        results, counts = await stock.claim(
            d, [("viewer0", T0), ("viewer2", T0), ("viewer3", T0)], world.build(d)
        )
        assert [r if isinstance(r, Outcome) else "ok" for r in results] == [
            Outcome.LIMIT,
            "ok",
            Outcome.SOLD_OUT,
        ]
        assert counts.claimed == 3
    finally:
        await client.aclose()


async def test_claim_times_are_the_receipt_times(world: World) -> None:
    """A batch decided after the end still honours claims received before it, and refuses the late one."""
    stock = SqlStock(world.db)
    d = await world.discount(5, 1)
    end = d.ends_ms
    results, _ = await stock.claim(d, [("viewer0", end - 1), ("viewer1", end)], world.build(d))
    assert isinstance(results[0], Claim) and results[1] is Outcome.ENDED
    assert now_ms() > 0


async def _stocks(world: World, redis_url: str | None) -> tuple[Stock, Any]:
    if redis_url is None:
        return SqlStock(world.db), None
    client = aioredis.Redis.from_url(redis_url)
    return RedisStock(world.db, client), client


@pytest.mark.parametrize("backend", ["sql", pytest.param("redis", marks=pytest.mark.redis)])
async def test_refusals_leave_the_version_alone(
    world: World, request: pytest.FixtureRequest, backend: str
) -> None:
    """A batch of refusals changes nothing, so the version (what ticks are published on) stays."""
    stock, client = await _stocks(world, request.getfixturevalue("redis_url") if backend == "redis" else None)
    try:
        d = await world.discount(1, 1)
        _, counts = await stock.claim(d, [("viewer0", T0)], world.build(d))
        sold_out = counts.version
        results, counts = await stock.claim(d, [("viewer1", T0), ("viewer0", T0)], world.build(d))
        assert results == [Outcome.SOLD_OUT, Outcome.SOLD_OUT]
        assert counts.version == sold_out and counts.claimed == 1
        await stock.add(d, 1)
        _, counts = await stock.claim(d, [("viewer1", T0)], world.build(d))
        assert counts.version > sold_out and counts.claimed == 2
    finally:
        if client is not None:
            await client.aclose()


@pytest.mark.redis
async def test_redis_refusals_are_told_before_the_claims_are_stored(world: World, redis_url: str) -> None:
    """With Redis the Lua step's verdicts are final: refusals are told before the winners' claims are
    built and stored; the embedded store tells nothing before its commit."""
    steps: list[Any] = []

    def build(d: Discount) -> Any:
        make = world.build(d)

        def record(viewer_id: str, t_ms: int) -> Claim:
            steps.append(("build", viewer_id))
            return make(viewer_id, t_ms)

        return record

    client = aioredis.Redis.from_url(redis_url)
    try:
        d = await world.discount(1, 1)
        requests = [("viewer0", T0), ("viewer1", T0), ("viewer2", d.ends_ms)]
        results, _ = await RedisStock(world.db, client).claim(d, requests, build(d), steps.append)
        assert steps == [[None, Outcome.SOLD_OUT, Outcome.ENDED], ("build", "viewer0")]
        assert isinstance(results[0], Claim) and results[1:] == [Outcome.SOLD_OUT, Outcome.ENDED]
    finally:
        await client.aclose()
    steps.clear()
    d = await world.discount(1, 1)
    await SqlStock(world.db).claim(d, requests[:2], build(d), steps.append)
    assert steps == [("build", "viewer0")]


@pytest.mark.redis
async def test_each_version_is_told_by_one_process(world: World, redis_url: str) -> None:
    """Two processes' engines see the same figures: the first to publish a version wins, an older
    or equal one is not published again, a newer one is."""
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
    try:
        one, two = (RedisStock(world.db, c) for c in clients)
        d = await world.discount(5, 1)
        assert d.id is not None
        _, counts = await one.claim(d, [("viewer0", T0)], world.build(d))
        v = counts.version
        assert await one.first_to_tell(d.room_id, {d.id: v}) == {d.id}
        assert await two.first_to_tell(d.room_id, {d.id: v}) == set()
        assert await two.first_to_tell(d.room_id, {d.id: v - 1}) == set()
        assert await two.first_to_tell(d.room_id, {d.id: v + 1}) == {d.id}
        # Counters Redis does not hold (evicted): tell anyway, and create nothing.
        assert await one.first_to_tell(d.room_id, {999_999: 1}) == {999_999}
        assert not await clients[0].exists(RedisStock._keys_of(d.room_id, 999_999)[0])
        # The claim script still works on a hash that carries the told version.
        results, counts = await two.claim(d, [("viewer1", T0)], world.build(d))
        assert isinstance(results[0], Claim) and counts.claimed == 2
    finally:
        for c in clients:
            await c.aclose()
    assert await SqlStock(world.db).first_to_tell(d.room_id, {d.id: 1, 7: 3}) == {d.id, 7}


@pytest.mark.parametrize("backend", ["sql", pytest.param("redis", marks=pytest.mark.redis)])
async def test_rows_alongside_are_stored_with_the_claims(
    world: World, request: pytest.FixtureRequest, backend: str
) -> None:
    """The claims' intent events go in the claims' transaction, with the claims' ids; if that
    transaction fails, neither is stored and (Redis) the units go back."""
    stock, client = await _stocks(world, request.getfixturevalue("redis_url") if backend == "redis" else None)
    try:
        d = await world.discount(3, 1)

        def events(claims: list[Claim], clash: bool = False) -> list[Any]:
            return [
                IntentEvent(
                    # a clash reuses the first claim's event id: the transaction cannot commit
                    event_id=f"{d.id}:{'viewer0' if clash else c.viewer_id}",
                    room_id=c.room_id,
                    viewer_id=c.viewer_id,
                    kind="discount.claim",
                    claim_id=c.id,
                    created_ms=0,
                )
                for c in claims
            ]

        results, _ = await stock.claim(d, [("viewer0", T0), ("viewer1", T0)], world.build(d), None, events)
        granted = [r.id for r in results if isinstance(r, Claim)]
        async with world.db.session() as session:
            stored = (
                await session.exec(select(IntentEvent).where(col(IntentEvent.claim_id).in_(granted)))
            ).all()
        assert sorted((e.viewer_id, e.claim_id) for e in stored) == [
            ("viewer0", granted[0]),
            ("viewer1", granted[1]),
        ]

        with pytest.raises(IntegrityError):  # the event id is taken: the whole batch fails
            await stock.claim(d, [("viewer2", T0)], world.build(d), None, lambda cs: events(cs, clash=True))
        assert await world.active(d) == {"viewer0": 1, "viewer1": 1}
        assert (await stock.counts(d)).claimed == 2
    finally:
        if client is not None:
            await client.aclose()
