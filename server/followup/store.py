"""Rows every part of follow-up writes: insert-or-ignore (idempotent by a unique key), a message due
now, and a room's follow-up settings created with the ready-made journeys and templates."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import literal_column
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from server.followup import defaults, rules
from server.storage import now_ms
from server.storage.followup import (
    FollowupSettings,
    Journey,
    Template,
)


async def insert_ignore(session: AsyncSession, table: type[SQLModel], values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True if the row was inserted."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    maker = pg_insert if dialect == "postgresql" else sqlite_insert
    # RETURNING says whether a row went in: the driver's rowcount is -1 here on PostgreSQL (psycopg).
    statement: Any = maker(table).values(**values).on_conflict_do_nothing().returning(literal_column("1"))
    result = await session.exec(statement)
    return result.first() is not None


def new_message(t: int, **fields: Any) -> dict[str, Any]:
    """The column values of a message due now, for ``insert_ignore`` (core inserts get no defaults)."""
    return {
        "context": "{}",
        "transactional": False,
        "status": "scheduled",
        "attempts": 0,
        "next_ms": t,
        "lease_ms": 0,
        "created_ms": t,
        **fields,
    }


async def ensure_room(session: AsyncSession, room_id: str) -> FollowupSettings:
    """The room's follow-up settings, creating them with the ready-made journeys and templates."""
    found = await session.get(FollowupSettings, room_id)
    if found is not None:
        return found
    t = now_ms()
    for spec in defaults.JOURNEYS:
        clean = rules.clean_journey(spec)
        await insert_ignore(
            session,
            Journey,
            {
                "room_id": room_id,
                "key": clean["key"],
                "name": clean["name"],
                "entry": clean["entry"],
                "key_by": clean["key_by"],
                "goal": clean["goal"],
                "conditions": orjson.dumps(clean["conditions"]).decode(),
                "steps": orjson.dumps(clean["steps"]).decode(),
                "status": "active",
                "created_ms": t,
                "updated_ms": t,
            },
        )
    for (key, locale), (subject, body) in defaults.TEMPLATES.items():
        await insert_ignore(
            session,
            Template,
            {
                "room_id": room_id,
                "key": key,
                "channel": "*",
                "locale": locale,
                "subject": subject,
                "body": body,
                "updated_ms": t,
            },
        )
    await insert_ignore(session, FollowupSettings, FollowupSettings(room_id=room_id).model_dump())
    await session.flush()
    found = await session.get(FollowupSettings, room_id)
    assert found is not None
    return found
