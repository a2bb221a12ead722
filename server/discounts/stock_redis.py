"""Exact stock on Redis: counters shared by every server process, decided by Lua scripts; the
database keeps the claims and the configuration (``SqlStock``'s part, inherited)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select

from server.discounts.rules import Outcome
from server.discounts.stock import (
    ACTIVE_CLAIMS,
    REDIS_KEY_GRACE_MS,
    Alongside,
    BuildClaim,
    ClaimResult,
    Counts,
    Decided,
    SqlStock,
)
from server.storage import Database, now_ms
from server.storage.models import Claim, Discount

# Fields: q quantity, c claimed, l per-viewer limit, s starts_ms, e ends_ms, x stopped, v version.
# Mirrors rules.decide: ended, not started, sold out, per-viewer limit, in this order.
_CLAIM = """
local d = redis.call('HMGET', KEYS[1], 'q', 'c', 'l', 's', 'e', 'x', 'v')
if not d[1] then return {-1} end
local q, c, l, s, e, x, v = tonumber(d[1]), tonumber(d[2]), tonumber(d[3]), tonumber(d[4]),
  tonumber(d[5]), tonumber(d[6]), tonumber(d[7])
local out = {0, 0}
local n = (#ARGV) / 2
for i = 1, n do
  local viewer, t = ARGV[2 * i - 1], tonumber(ARGV[2 * i])
  local code
  if x == 1 or t >= e then code = 2
  elseif t < s then code = 1
  elseif c >= q then code = 3
  else
    local h = tonumber(redis.call('HGET', KEYS[2], viewer) or '0')
    if h >= l then code = 4
    else
      code = 0
      c = c + 1
      redis.call('HINCRBY', KEYS[2], viewer, 1)
    end
  end
  out[i + 2] = code
end
if c ~= tonumber(d[2]) then
  v = v + 1
  redis.call('HSET', KEYS[1], 'c', c, 'v', v)
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
end
out[1] = c
out[2] = v
return out
"""

# Give one unit back: claimed and the viewer's holding go down by one (never below zero).
_RELEASE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local c = tonumber(redis.call('HGET', KEYS[1], 'c'))
if c > 0 then redis.call('HSET', KEYS[1], 'c', c - 1) end
local h = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if h > 1 then redis.call('HSET', KEYS[2], ARGV[1], h - 1) else redis.call('HDEL', KEYS[2], ARGV[1]) end
redis.call('HINCRBY', KEYS[1], 'v', 1)
return {0}
"""

# Change fields and bump the version in one step: ARGV is field, mode, value triples (mode "set"
# or "add").
_CHANGE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
for i = 1, #ARGV - 1, 3 do
  if ARGV[i + 1] == 'add' then redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 2])
  else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2]) end
end
redis.call('HINCRBY', KEYS[1], 'v', 1)
local grace = tonumber(ARGV[#ARGV])
redis.call('PEXPIREAT', KEYS[1], tonumber(redis.call('HGET', KEYS[1], 'e')) + grace)
redis.call('PEXPIREAT', KEYS[2], tonumber(redis.call('HGET', KEYS[1], 'e')) + grace)
return {0}
"""

# Note that the figures of version ARGV[1] are being published, unless the same or newer ones were:
# 1 = publish them, 0 = another process already did. The field is 't' in the discount's hash (none:
# the counters are not in Redis, so tell anyway).
_TELL = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
local v = tonumber(ARGV[1])
if v <= tonumber(redis.call('HGET', KEYS[1], 't') or '-1') then return 0 end
redis.call('HSET', KEYS[1], 't', v)
return 1
"""

# Load a discount's counters from the database unless Redis has them: ARGV = fields, then held
# counts as viewer, n pairs after a '|' marker.
_LOAD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local i = 1
while ARGV[i] ~= '|' do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
i = i + 1
while i <= #ARGV do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
return 1
"""


class RedisStock(SqlStock):
    """Counters in Redis, shared by every server process; the database keeps the claims and config."""

    def __init__(self, db: Database, redis: Any) -> None:
        super().__init__(db)
        self.redis = redis
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)
        self._load = redis.register_script(_LOAD)
        self._change_script = redis.register_script(_CHANGE)
        self._tell = redis.register_script(_TELL)

    @staticmethod
    def _keys(d: Discount) -> list[str]:
        return RedisStock._keys_of(d.room_id, d.id or 0)

    @staticmethod
    def _keys_of(room_id: str, discount_id: int) -> list[str]:
        # The room id (random) keeps two databases sharing one Redis from mixing their discounts.
        # One hash tag for both keys: a Redis Cluster keeps them in one slot, as the scripts need.
        base = f"lw:disc:{{{room_id}:{discount_id}}}"
        return [base, f"{base}:held"]

    async def first_to_tell(self, room_id: str, versions: dict[int, int]) -> set[int]:
        """Every process sees the rush's figures; the first to publish a version wins the right,
        so the room gets one tick per change, not one per process."""
        pipe = self.redis.pipeline(transaction=False)
        ids = list(versions)
        for discount_id in ids:
            await self._tell(
                keys=self._keys_of(room_id, discount_id)[:1], args=[versions[discount_id]], client=pipe
            )
        told = await pipe.execute()
        return {discount_id for discount_id, ok in zip(ids, told, strict=True) if int(ok) == 1}

    async def _ensure(self, d: Discount) -> None:
        """Put the counters in Redis from the database (after a launch, or if Redis lost them)."""
        assert d.id is not None
        async with self.db.session() as session:
            row = await session.get(Discount, d.id)
            assert row is not None
            rows = await session.exec(
                select(Claim.viewer_id, func.count())
                .where(Claim.discount_id == d.id, col(Claim.status).in_(ACTIVE_CLAIMS))
                .group_by(col(Claim.viewer_id))
            )
            held = rows.all()
        claimed = sum(int(n) for _, n in held)
        fields: list[Any] = [
            "q", row.quantity, "c", claimed, "l", row.per_viewer_limit, "s", row.starts_ms,
            "e", row.ends_ms, "x", 1 if row.status == "ended" else 0, "v", row.version,
        ]  # fmt: skip
        args = [*fields, "|"]
        for viewer, n in held:
            args += [viewer, int(n)]
        keys = self._keys(d)
        if await self._load(keys=keys, args=args):
            # A discount that ended long ago still gets its grace from now (an expiry in the past
            # would delete the counters at once).
            expire_at = max(row.ends_ms, now_ms()) + REDIS_KEY_GRACE_MS
            await self.redis.pexpireat(keys[0], expire_at)
            await self.redis.pexpireat(keys[1], expire_at)

    async def claim(
        self,
        d: Discount,
        requests: Sequence[tuple[str, int]],
        build: BuildClaim,
        decided: Decided | None = None,
        alongside: Alongside | None = None,
    ) -> tuple[list[ClaimResult], Counts]:
        """The Lua step decides; ``decided`` hears the verdicts at once (refusals are final); then
        the winners' claims are stored, their units given back if that fails."""
        assert d.id is not None
        args: list[Any] = []
        for viewer_id, t_ms in requests:
            args += [viewer_id, t_ms]
        out = await self._claim(keys=self._keys(d), args=args)
        if out[0] == -1:
            await self._ensure(d)
            out = await self._claim(keys=self._keys(d), args=args)
        codes = [int(x) for x in out[2:]]
        order = (Outcome.OK, Outcome.NOT_STARTED, Outcome.ENDED, Outcome.SOLD_OUT, Outcome.LIMIT)
        if decided is not None:
            decided([order[code] if code else None for code in codes])
        results: list[ClaimResult] = []
        rows: list[Claim] = []
        for (viewer_id, t_ms), code in zip(requests, codes, strict=True):
            if code == 0:
                claim = build(viewer_id, t_ms)
                rows.append(claim)
                results.append(claim)
            else:
                results.append(order[code])
        if rows:
            try:
                async with self.db.session() as session:
                    session.add_all(rows)
                    if alongside is not None:
                        await session.flush()
                        session.add_all(alongside(rows))
                    await session.commit()
            except BaseException:
                for claim in rows:  # the units were never given: back to stock
                    await self._release(keys=self._keys(d), args=[claim.viewer_id])
                raise
        return results, await self.counts(d)

    async def release(self, d: Discount, claim_id: int, status: str, t_ms: int) -> Counts | None:
        assert d.id is not None
        async with self.db.session() as session:
            claim = await session.get(Claim, claim_id)
            result = await session.exec(
                update(Claim)
                .where(col(Claim.id) == claim_id, col(Claim.status) == "reserved")
                .values(status=status, closed_ms=t_ms)
            )
            await session.commit()
        if result.rowcount != 1 or claim is None:
            return None
        if (await self._release(keys=self._keys(d), args=[claim.viewer_id]))[0] == -1:
            await self._ensure(d)  # rebuilt from the claims, which already count this one as closed
        return await self.counts(d)

    async def _change(self, d: Discount, *triples: Any) -> Counts:
        assert d.id is not None
        args = [*triples, REDIS_KEY_GRACE_MS]
        if (await self._change_script(keys=self._keys(d), args=args))[0] == -1:
            await self._ensure(d)  # the database row already has the change
        return await self.counts(d)

    async def add(self, d: Discount, units: int) -> Counts:
        await super().add(d, units)
        return await self._change(d, "q", "add", units)

    async def window(self, d: Discount, starts_ms: int, ends_ms: int) -> Counts:
        await super().window(d, starts_ms, ends_ms)
        return await self._change(d, "s", "set", starts_ms, "e", "set", ends_ms)

    async def stop(self, d: Discount, t_ms: int) -> Counts:
        await super().stop(d, t_ms)
        return await self._change(d, "x", "set", 1)

    async def counts(self, d: Discount) -> Counts:
        assert d.id is not None
        raw = await self.redis.hmget(self._keys(d)[0], ["q", "c", "v", "x", "s", "e"])
        if raw[0] is None:
            await self._ensure(d)
            raw = await self.redis.hmget(self._keys(d)[0], ["q", "c", "v", "x", "s", "e"])
        if raw[0] is None:  # gone again (evicted): the database's figures
            return await super().counts(d)
        q, c, v, x, s, e = (int(value) for value in raw)
        return Counts(q, c, v, x == 1, s, e)

    async def counts_many(self, ds: Sequence[Discount]) -> list[Counts]:
        pipe = self.redis.pipeline(transaction=False)
        for d in ds:
            pipe.hmget(self._keys(d)[0], ["q", "c", "v", "x", "s", "e"])
        out: list[Counts] = []
        for d, raw in zip(ds, await pipe.execute(), strict=True):
            if raw[0] is None:
                out.append(await self.counts(d))
            else:
                q, c, v, x, s, e = (int(value) for value in raw)
                out.append(Counts(q, c, v, x == 1, s, e))
        return out
