"""Storage: engine and sessions, SQLModel tables, Alembic migrations. No business rules here."""

from server.storage.db import Database, now_ms

__all__ = ["Database", "now_ms"]
