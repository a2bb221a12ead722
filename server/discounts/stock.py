"""Exact stock: the atomic step that gives units to claimants, embedded (SQL) or shared (Redis).

Both backends apply ``rules.allocate`` to a batch of claims in one atomic step:
- ``SqlStock``: one transaction that first locks the discount row (an UPDATE, so SQLite takes its
  write lock and PostgreSQL its row lock before anything is read), then reads the viewers' holdings,
  allocates, inserts the claims and writes the new count.
- ``RedisStock`` (``stock_redis.py``): one Lua script over the discount's hash and its per-viewer
  holdings; the claims are then stored in the database, and given back to Redis if that fails.
Every change bumps ``version`` so clients keep the newest figures whatever order events arrive in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import func, update
from sqlmodel import SQLModel, col, select

from server.discounts import rules
from server.discounts.rules import Outcome
from server.realtime.backends.base import Backend, SharedRedis
from server.storage import Database
from server.storage.models import Claim, Discount

ACTIVE_CLAIMS = ("reserved", "redeemed")
# Redis keys outlive the discount by the longest hold, so late releases still find their counters.
REDIS_KEY_GRACE_MS = (rules.MAX_HOLD_SECS + 3600) * 1000


@dataclass(frozen=True)
class Counts:
    """The live figures of one discount."""

    quantity: int
    claimed: int
    version: int
    stopped: bool
    starts_ms: int
    ends_ms: int

    @property
    def remaining(self) -> int:
        return max(0, self.quantity - self.claimed)


ClaimResult = Outcome | Claim
BuildClaim = Callable[[str, int], Claim]
# Told the atomic step's verdicts before the winners' claims are stored: a refusal per request, or
# None for a winner. Refusals are final at that point, so they can be answered at once.
Decided = Callable[[list[Outcome | None]], None]
# Rows stored in the same transaction as the granted claims, once these have their ids (the
# claims' intent events: a claim and its event are stored together or not at all).
Alongside = Callable[[list[Claim]], Sequence[SQLModel]]


class Stock(Protocol):
    async def claim(
        self,
        d: Discount,
        requests: Sequence[tuple[str, int]],
        build: BuildClaim,
        decided: Decided | None = None,
        alongside: Alongside | None = None,
    ) -> tuple[list[ClaimResult], Counts]: ...

    async def first_to_tell(self, room_id: str, versions: dict[int, int]) -> set[int]: ...

    async def release(self, d: Discount, claim_id: int, status: str, t_ms: int) -> Counts | None: ...

    async def add(self, d: Discount, units: int) -> Counts: ...

    async def window(self, d: Discount, starts_ms: int, ends_ms: int) -> Counts: ...

    async def stop(self, d: Discount, t_ms: int) -> Counts: ...

    async def counts(self, d: Discount) -> Counts: ...

    async def counts_many(self, ds: Sequence[Discount]) -> list[Counts]: ...


def _counts(d: Discount) -> Counts:
    return Counts(d.quantity, d.claimed, d.version, d.status == "ended", d.starts_ms, d.ends_ms)


def _state(c: Counts, limit: int) -> rules.StockState:
    return rules.StockState(c.quantity, c.claimed, limit, c.starts_ms, c.ends_ms, c.stopped)


async def _held(session: Any, discount_id: int, viewers: set[str]) -> dict[str, int]:
    rows = await session.exec(
        select(Claim.viewer_id, func.count())
        .where(
            Claim.discount_id == discount_id,
            col(Claim.status).in_(ACTIVE_CLAIMS),
            col(Claim.viewer_id).in_(viewers),
        )
        .group_by(col(Claim.viewer_id))
    )
    return {viewer: int(n) for viewer, n in rows.all()}


def _bump(**values: Any) -> Any:
    return update(Discount).values(version=col(Discount.version) + 1, **values)


class SqlStock:
    """Counters in the discount row; every step is one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def _locked(self, session: Any, discount_id: int, *, bump: bool = True, **values: Any) -> Discount:
        """Lock the row (a write first) and read it back as the transaction sees it. Without
        ``bump`` the write changes nothing (a batch of refusals leaves the version alone)."""
        write = _bump(**values) if bump else update(Discount).values(version=col(Discount.version))
        await session.exec(write.where(col(Discount.id) == discount_id))
        row: Discount = (await session.exec(select(Discount).where(Discount.id == discount_id))).one()
        return row

    async def claim(
        self,
        d: Discount,
        requests: Sequence[tuple[str, int]],
        build: BuildClaim,
        decided: Decided | None = None,
        alongside: Alongside | None = None,
    ) -> tuple[list[ClaimResult], Counts]:
        """Decide and store in one transaction; ``decided`` is not called (nothing is final before
        the commit)."""
        assert d.id is not None
        async with self.db.session() as session:
            row = await self._locked(session, d.id, bump=False)
            held = await _held(session, d.id, {viewer for viewer, _ in requests})
            outcomes, claimed = rules.allocate(_state(_counts(row), row.per_viewer_limit), held, requests)
            results: list[ClaimResult] = []
            rows: list[Claim] = []
            for (viewer_id, t_ms), outcome in zip(requests, outcomes, strict=True):
                if outcome is Outcome.OK:
                    claim = build(viewer_id, t_ms)
                    rows.append(claim)
                    results.append(claim)
                else:
                    results.append(outcome)
            if rows:
                session.add_all(rows)
                if alongside is not None:
                    await session.flush()
                    session.add_all(alongside(rows))
                await session.exec(_bump(claimed=claimed).where(col(Discount.id) == d.id))
                row.claimed, row.version = claimed, row.version + 1
            await session.commit()
        return results, _counts(row)

    async def release(self, d: Discount, claim_id: int, status: str, t_ms: int) -> Counts | None:
        assert d.id is not None
        async with self.db.session() as session:
            result = await session.exec(
                update(Claim)
                .where(col(Claim.id) == claim_id, col(Claim.status) == "reserved")
                .values(status=status, closed_ms=t_ms)
            )
            if result.rowcount != 1:
                await session.rollback()
                return None
            row = await self._locked(session, d.id, claimed=col(Discount.claimed) - 1)
            await session.commit()
        return _counts(row)

    async def add(self, d: Discount, units: int) -> Counts:
        assert d.id is not None
        async with self.db.session() as session:
            row = await self._locked(session, d.id, quantity=col(Discount.quantity) + units)
            await session.commit()
        return _counts(row)

    async def window(self, d: Discount, starts_ms: int, ends_ms: int) -> Counts:
        assert d.id is not None
        async with self.db.session() as session:
            row = await self._locked(session, d.id, starts_ms=starts_ms, ends_ms=ends_ms)
            await session.commit()
        return _counts(row)

    async def stop(self, d: Discount, t_ms: int) -> Counts:
        assert d.id is not None
        async with self.db.session() as session:
            row = await self._locked(session, d.id, status="ended", end_reason="stopped", ended_ms=t_ms)
            await session.commit()
        return _counts(row)

    async def counts(self, d: Discount) -> Counts:
        async with self.db.session() as session:
            row = await session.get(Discount, d.id)
        assert row is not None
        return _counts(row)

    async def counts_many(self, ds: Sequence[Discount]) -> list[Counts]:
        """Figures of several discounts; ``ds`` are rows just read, which hold them here."""
        return [_counts(d) for d in ds]

    async def first_to_tell(self, room_id: str, versions: dict[int, int]) -> set[int]:
        """Of these discounts (id -> version of the figures this process holds), the ones whose
        figures it should publish. One process owns the embedded store's rooms: all of them."""
        return set(versions)


def make_stock(db: Database, backend: Backend) -> Stock:
    """Redis counters when the hub's backend shares a Redis between processes, else the database's."""
    shared = backend.capability(SharedRedis)
    if shared is None:
        return SqlStock(db)
    from server.discounts.stock_redis import RedisStock

    return RedisStock(db, shared.redis)
