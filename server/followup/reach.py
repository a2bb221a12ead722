"""Which channels follow-up can send on, as every process sees it.

Messages go out from the processes that deliver (a server's embedded loop, ``livewall worker``),
and each has its own settings: the servers of a cluster may have no SMTP while their worker has. So
each delivering process announces its configured channels in the database while it runs, and the
union of those heard from lately is what a phone is offered and what the console calls configured.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, update
from sqlmodel import col, select

from server.storage import Database, now_ms
from server.storage.batch import per_database
from server.storage.followup import FollowupProcess
from server.ttlcache import TtlCache

# A delivering process says it is alive this often; one not heard from for three periods is gone
# (stopped or crashed) and its channels no longer count.
ANNOUNCE_MS = 60_000
FRESH_MS = 3 * ANNOUNCE_MS
# Records of processes gone this long are deleted (each start is a new process id).
FORGET_MS = 86_400_000
# Phone pages read the configured channels on every load (a QR-code scan storm): from a cache this
# young; a refusal reads afresh first, so a worker that just started is never refused for this.
CACHE_SECS = 5.0


def _cache(db: Database) -> TtlCache[str, frozenset[str]]:
    return per_database(db, "followup-reach", lambda: TtlCache(CACHE_SECS, max_entries=1))


async def announce(db: Database, process_id: str, channels: Iterable[str]) -> None:
    """Record (or refresh) that this process delivers on these channels."""
    t = now_ms()
    names = ",".join(sorted(channels))
    async with db.session() as session:
        updated = await session.exec(
            update(FollowupProcess)
            .where(col(FollowupProcess.id) == process_id)
            .values(channels=names, seen_ms=t)
        )
        if not updated.rowcount:
            session.add(FollowupProcess(id=process_id, channels=names, seen_ms=t))
        await session.exec(delete(FollowupProcess).where(col(FollowupProcess.seen_ms) < t - FORGET_MS))
        await session.commit()
    _cache(db).forget("")


async def forget(db: Database, process_id: str) -> None:
    """This process stops delivering: its channels no longer count."""
    async with db.session() as session:
        await session.exec(delete(FollowupProcess).where(col(FollowupProcess.id) == process_id))
        await session.commit()
    _cache(db).forget("")


async def _load(db: Database) -> frozenset[str]:
    async with db.session() as session:
        rows = await session.exec(
            select(FollowupProcess.channels).where(col(FollowupProcess.seen_ms) >= now_ms() - FRESH_MS)
        )
        return frozenset(name for names in rows.all() for name in names.split(",") if name)


async def configured(db: Database, *, fresh: bool = False) -> frozenset[str]:
    """The channels some running delivering process has configured."""
    cache = _cache(db)
    if fresh:
        cache.forget("")
    return await cache.get("", lambda: _load(db))
