"""Group inserts that arrive close together into one transaction (a comment storm is thousands a second).

Each caller still awaits its own row: ``await writer.add(row)`` returns once the row is committed,
with its primary key, so an acknowledgement always means "stored".
"""

from __future__ import annotations

import asyncio
import logging
from typing import Generic, TypeVar

from sqlmodel import SQLModel

from server.storage.db import Database

log = logging.getLogger("livewall.storage")

Row = TypeVar("Row", bound=SQLModel)

# One transaction takes at most this many rows; more wait for the next one.
MAX_BATCH_ROWS = 500


class BatchWriter(Generic[Row]):
    """Commits rows in batches: whatever arrived while the previous batch was being written."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._waiting: list[tuple[Row, asyncio.Future[Row]]] = []
        self._task: asyncio.Task[None] | None = None

    async def add(self, row: Row) -> Row:
        future: asyncio.Future[Row] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH_ROWS], self._waiting[MAX_BATCH_ROWS:]
            try:
                await self._write([row for row, _ in batch])
            except Exception:
                # One bad row must not sink the others: write them one by one.
                for row, future in batch:
                    try:
                        await self._write([row])
                    except Exception as exc:
                        if not future.done():
                            future.set_exception(exc)
                    else:
                        if not future.done():
                            future.set_result(row)
                continue
            for row, future in batch:
                if not future.done():
                    future.set_result(row)

    async def _write(self, rows: list[Row]) -> None:
        async with self.db.session() as session:
            session.add_all(rows)
            await session.commit()


_shared: dict[tuple[int, str], BatchWriter[SQLModel]] = {}


def shared_writer(db: Database, table: type[Row]) -> BatchWriter[Row]:
    """The process's writer for one table of one database (all its callers share transactions)."""
    key = (id(db), table.__name__)
    writer = _shared.get(key)
    if writer is None or writer.db is not db:
        writer = _shared[key] = BatchWriter(db)
    return writer  # type: ignore[return-value]
