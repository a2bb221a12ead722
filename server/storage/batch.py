"""Group inserts that arrive close together into one transaction (a comment storm is thousands a second).

Each caller still awaits its own row: ``await writer.add(row)`` returns once the row is committed,
with its primary key, so an acknowledgement always means "stored". Two kinds:
- ``BatchWriter``: ORM rows (``session.add_all``), for tables written at a moderate rate;
- ``BatchInserter``: plain dicts in one Core ``INSERT ... RETURNING`` per batch, for the hottest
  path (viewers' comments): constructing a SQLModel table object costs ~70 us and the ORM's unit of
  work as much again, a third of the server's CPU at 1,000 comments a second (py-spy).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Table, insert
from sqlmodel import SQLModel

from server.storage.db import Database

log = logging.getLogger("livewall.storage")

Row = TypeVar("Row", bound=SQLModel)
In = TypeVar("In")
Out = TypeVar("Out")
K = TypeVar("K")
V = TypeVar("V")

# One transaction takes at most this many rows; more wait for the next one.
MAX_BATCH_ROWS = 500


class _Batcher(Generic[In, Out]):
    """Writes whatever arrived while the previous batch was being written, in one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._waiting: list[tuple[In, asyncio.Future[Out]]] = []
        self._task: asyncio.Task[None] | None = None

    async def add(self, row: In) -> Out:
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH_ROWS], self._waiting[MAX_BATCH_ROWS:]
            try:
                results = await self._write([row for row, _ in batch])
            except Exception:
                # One bad row must not sink the others: write them one by one.
                for row, future in batch:
                    try:
                        (result,) = await self._write([row])
                    except Exception as exc:
                        if not future.done():
                            future.set_exception(exc)
                    else:
                        if not future.done():
                            future.set_result(result)
                continue
            for (_row, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _write(self, rows: list[In]) -> list[Out]:
        raise NotImplementedError


class BatchWriter(_Batcher[Row, Row]):
    """ORM rows; ``add`` returns the row itself, committed, with its primary key."""

    async def _write(self, rows: list[Row]) -> list[Row]:
        async with self.db.session() as session:
            session.add_all(rows)
            await session.commit()
        return rows


class BatchInserter(_Batcher[dict[str, Any], int]):
    """Dicts of column values for one table with an integer primary key; ``add`` returns the key."""

    def __init__(self, db: Database, table: Table, key: str = "id") -> None:
        super().__init__(db)
        self.statement = insert(table).returning(table.c[key], sort_by_parameter_order=True)

    async def _write(self, rows: list[dict[str, Any]]) -> list[int]:
        async with self.db.engine.begin() as conn:
            result = await conn.execute(self.statement, rows)
            return [int(key) for key in result.scalars()]


class BatchLinkedInserter(_Batcher[tuple[dict[str, Any], ...], None]):
    """Rows of several tables that belong together (a new viewer and their attendance): one tuple of
    column dicts per ``add``, in ``tables`` order (parents first), each table one executemany."""

    def __init__(self, db: Database, tables: tuple[Table, ...]) -> None:
        super().__init__(db)
        self.statements = [insert(table) for table in tables]

    async def _write(self, rows: list[tuple[dict[str, Any], ...]]) -> list[None]:
        async with self.db.engine.begin() as conn:
            for i, statement in enumerate(self.statements):
                await conn.execute(statement, [row[i] for row in rows])
        return [None] * len(rows)


class Missing:
    """What a read gives for a key it did not find, where None is a value a key can have."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING = Missing()


class BatchGetter(Generic[K, V]):
    """Reads by key, gathered: the keys asked for in the same loop turn (and while a read is running)
    are read together by ``fetch`` (one ``IN`` query), so a storm's first wave of cache misses is a
    few queries, not one per viewer on the database's single thread. Keys ``fetch`` leaves out get
    ``missing``."""

    def __init__(
        self, fetch: Callable[[set[K]], Awaitable[dict[K, V]]], missing: V, max_keys: int = 500
    ) -> None:
        self.fetch = fetch
        self.missing = missing
        self.max_keys = max_keys
        self._waiting: dict[K, asyncio.Future[V]] = {}
        self._task: asyncio.Task[None] | None = None

    async def get(self, key: K) -> V:
        future = self._waiting.get(key)
        if future is None:
            future = self._waiting[key] = asyncio.get_running_loop().create_future()
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._drain())
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let the rest of this loop turn ask too
        while self._waiting:
            keys = list(self._waiting)[: self.max_keys]
            batch = {key: self._waiting.pop(key) for key in keys}
            try:
                found = await self.fetch(set(keys))
            except Exception as exc:
                for future in batch.values():
                    if not future.done():
                        future.set_exception(exc)
                continue
            for key, future in batch.items():
                if not future.done():
                    future.set_result(found.get(key, self.missing))


T = TypeVar("T")

_per_database: dict[tuple[int, str], tuple[Database, Any]] = {}


def per_database(db: Database, name: str, make: Callable[[], T]) -> T:
    """The process's one ``name`` object for ``db`` (a writer, a reader), made on first use. Keyed by
    the database object itself: a test's new database never gets an earlier one's batcher."""
    key = (id(db), name)
    entry = _per_database.get(key)
    if entry is None or entry[0] is not db:
        entry = _per_database[key] = (db, make())
    return cast(T, entry[1])


def shared_writer(db: Database, table: type[Row]) -> BatchWriter[Row]:
    """The process's writer for one table of one database (all its callers share transactions)."""
    return per_database(db, f"writer:{table.__name__}", lambda: BatchWriter(db))


def shared_inserter(db: Database, table: type[SQLModel]) -> BatchInserter:
    """The process's Core inserter for one table of one database."""
    return per_database(
        db,
        f"inserter:{table.__name__}",
        lambda: BatchInserter(db, table.__table__),  # type: ignore[attr-defined]
    )
