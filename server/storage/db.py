"""Database engine from a URL (SQLite by default, PostgreSQL by URL) and schema migration on start."""

from __future__ import annotations

import fcntl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

MIGRATIONS = "server.storage:migrations"


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


class Database:
    """Owns the async engine; ``session()`` yields a unit of work."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.async_url, self.sync_url = driver_urls(url)
        self.is_sqlite = self.async_url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if not self.is_sqlite:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(self.async_url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    async def dispose(self) -> None:
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
