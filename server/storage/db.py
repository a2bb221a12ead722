"""Database engine from a URL (SQLite by default, PostgreSQL by URL) and schema migration on start."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

MIGRATIONS = "server.storage:migrations"
# PostgreSQL connections kept open per process: a follow-up worker has twenty sends in flight, each
# with its session, and a connection opened and closed per use (an overflow one) costs the event
# loop a TCP and authentication handshake, which delays every other send's record.
SENDS_POOL = 25


def now_ms() -> int:
    """Wall-clock time in integer milliseconds, the unit stored and sent on the wire."""
    return time.time_ns() // 1_000_000


def driver_urls(url: str) -> tuple[str, str]:
    """(async URL, sync URL) for a user-facing database URL such as ``sqlite:///x.db`` or ``postgresql://``."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return (
            parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False),
            parsed.set(drivername="sqlite").render_as_string(hide_password=False),
        )
    if backend in ("postgresql", "postgres"):
        both = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        return both, both
    raise ValueError(
        f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:/// or postgresql://"
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed during a write and lets two server processes share one file.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class WriteGate:
    """SQLite has one writer. This process's single-statement writes take turns here, the urgent
    ones first, instead of meeting on SQLite's lock, whose busy handler waits by sleeping (1, 2, 5,
    10 ... ms): a queue of twenty writes drains in a few milliseconds instead of tens."""

    def __init__(self) -> None:
        self._busy = False
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._normal: collections.deque[asyncio.Future[None]] = collections.deque()

    @asynccontextmanager
    async def turn(self, *, urgent: bool = False) -> AsyncIterator[None]:
        if self._busy:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            (self._urgent if urgent else self._normal).append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._next()  # handed the turn as it was cancelled: pass it on
                raise
        self._busy = True
        try:
            yield
        finally:
            self._next()

    def _next(self) -> None:
        for queue in (self._urgent, self._normal):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the turn passes straight to it; still busy
                    return
        self._busy = False


class Database:
    """Owns the async engine; ``session()`` yields a unit of work."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.async_url, self.sync_url = driver_urls(url)
        self.is_sqlite = self.async_url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if not self.is_sqlite:
            kwargs.update(pool_size=SENDS_POOL, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(self.async_url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        self._gate = WriteGate() if self.is_sqlite else None
        self._urgent_busy = 0
        self._urgent_clear = asyncio.Event()
        self._writer: AsyncConnection | None = None
        self._grouped: dict[int, tuple[Any, list[tuple[dict[str, Any], asyncio.Future[bool | None]]]]] = {}
        self._flushing: dict[int, asyncio.Task[None]] = {}
        database = make_url(self.sync_url).database if self.is_sqlite else None
        self._sqlite_file = database if database and database != ":memory:" else None
        self._here: sqlite3.Connection | None = None
        self._compiled: dict[int, Any] = {}

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    async def write_now(self, statement: Any, *, urgent: bool = False) -> int:
        """Run one writing statement on its own, committed as it runs (autocommit: no BEGIN/COMMIT
        round trips, the write lock held only while it executes); returns the rows it touched. For
        writes whose latency matters, such as recording that a provider accepted a message
        (``urgent``: on SQLite it goes before this process's other queued writes)."""
        if self._gate is None:
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                return int((await conn.execute(statement)).rowcount or 0)
        async with self._gate.turn(urgent=urgent):
            return await self._write(statement)

    async def _write(self, statement: Any, params: list[dict[str, Any]] | None = None) -> int:
        """On one connection kept in autocommit for these writes (on SQLite, holding the gate's
        turn): one trip per call, none to check a connection out (and ping it) and back in."""
        if self._writer is None:
            conn = await self.engine.connect()
            self._writer = await conn.execution_options(isolation_level="AUTOCOMMIT")
            if self.is_sqlite:
                # Checkpoints (copying the WAL back into the file, with an fsync) are left to the
                # other connections' commits: these writes must not stall behind one.
                await self._writer.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
        try:
            result = await (
                self._writer.execute(statement) if params is None else self._writer.execute(statement, params)
            )
            return int(result.rowcount or 0)
        except BaseException:
            writer, self._writer = self._writer, None
            with contextlib.suppress(Exception):
                await writer.close()
            raise

    async def write_urgent(self, statement: Any, params: dict[str, Any]) -> bool | None:
        """Run one single-row write of ``statement`` (a module-level constant with bind parameters)
        at once, committed as it runs; True if it touched its row, False if not, None if unknown.

        The rows of the same statement that arrive while a write of it is in flight go together in
        the next trip to the database (group commit), on one connection kept for these writes: none
        waits for others to arrive, and a burst is written in two trips instead of one each (SQLite
        has one writer; on PostgreSQL each trip would also check out and ping a pooled connection).
        The answer is None when some row of the group was not touched (the caller checks its own).

        On a SQLite file, the write is first tried right here, on a connection of this thread that
        never waits for SQLite's lock: one indexed row in WAL mode without fsync or checkpoint
        (tens of microseconds), so the record is durable before anything else runs. Only if
        another connection holds the lock at that instant does it go the way above."""
        self._urgent_busy += 1
        self._urgent_clear.clear()
        try:
            return await self._write_urgent(statement, params)
        finally:
            self._urgent_busy -= 1
            if not self._urgent_busy:
                self._urgent_clear.set()

    async def urgent_settled(self) -> None:
        """Wait while urgent writes of this process are under way: work that can wait a few
        milliseconds (starting the next send) leaves the event loop to them."""
        if self._urgent_busy:
            await self._urgent_clear.wait()

    async def _write_urgent(self, statement: Any, params: dict[str, Any]) -> bool | None:
        if self._sqlite_file is not None:
            touched = self._write_here(statement, params)
            if touched is not None:
                return touched
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool | None] = loop.create_future()
        waiting = self._grouped.setdefault(id(statement), (statement, []))[1]
        waiting.append((params, done))
        if len(waiting) == 1 and id(statement) not in self._flushing:
            self._flushing[id(statement)] = loop.create_task(self._flush(id(statement)))
        # Shielded: the write goes ahead for the whole group even if this caller is cancelled.
        return await asyncio.shield(done)

    def _write_here(self, statement: Any, params: dict[str, Any]) -> bool | None:
        """``write_urgent``'s immediate path on a SQLite file; None if the lock was taken."""
        if self._here is None:
            conn = sqlite3.connect(self._sqlite_file, timeout=0, isolation_level=None)  # type: ignore[arg-type]
            conn.execute("PRAGMA busy_timeout=0")  # never wait: the caller goes the queued way instead
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL: no fsync at commit (as the others)
            conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints are the other connections' work
            self._here = conn
        compiled = self._compiled.get(id(statement))
        if compiled is None:
            compiled = self._compiled[id(statement)] = statement.compile(dialect=self.engine.dialect)
        values = compiled.construct_params(params)
        try:
            cursor = self._here.execute(str(compiled), [values[name] for name in compiled.positiontup or ()])
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return None
            raise
        return cursor.rowcount == 1

    async def _flush(self, key: int) -> None:
        statement, waiting = self._grouped[key]
        try:
            while waiting:
                group = list(waiting)
                waiting.clear()
                try:
                    async with contextlib.AsyncExitStack() as stack:
                        if self._gate is not None:
                            await stack.enter_async_context(self._gate.turn(urgent=True))
                        touched = await self._write(statement, [p for p, _ in group])
                except Exception as exc:
                    for _, done in group:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                answer = True if touched == len(group) else (False if len(group) == 1 else None)
                for _, done in group:
                    if not done.done():
                        done.set_result(answer)
        finally:
            del self._flushing[key]

    async def dispose(self) -> None:
        if self._here is not None:
            self._here.close()
            self._here = None
        if self._writer is not None:
            writer, self._writer = self._writer, None
            with contextlib.suppress(Exception):
                await writer.close()
        await self.engine.dispose()

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (blocking; run once at start)."""
        migrate(self.url)


def migrate(url: str) -> None:
    """Apply every pending Alembic migration to the database at ``url``."""
    _async, sync_url = driver_urls(url)
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    cfg.set_main_option("sqlalchemy.url", sync_url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    database = make_url(sync_url).database
    if sync_url.startswith("sqlite") and database and database != ":memory:":
        # Two processes starting on one SQLite file must not both create the tables.
        lock_path = Path(database).with_suffix(".migrate.lock")
        with lock_path.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            command.upgrade(cfg, "head")
    else:
        command.upgrade(cfg, "head")
