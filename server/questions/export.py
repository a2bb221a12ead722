"""A room's questions for the host to keep: every item, vote and moderation action, as JSON or CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from server.httputil import csv_cell
from server.questions import wire
from server.storage import Database
from server.storage.models import Item, ModerationLog, Vote


async def export(db: Database, room_id: str) -> dict[str, Any]:
    """Every item (with votes, answers, replies), every vote and every moderation action of a room."""
    async with db.session() as session:
        items = (await session.exec(select(Item).where(Item.room_id == room_id).order_by(col(Item.id)))).all()
        ids = [i.id for i in items]
        votes = (
            (
                await session.exec(
                    select(Vote).where(col(Vote.item_id).in_(ids)).order_by(col(Vote.created_ms))
                )
            ).all()
            if ids
            else []
        )
        log = (
            await session.exec(
                select(ModerationLog).where(ModerationLog.room_id == room_id).order_by(col(ModerationLog.id))
            )
        ).all()
        count = (
            await session.exec(select(func.count()).select_from(Item).where(Item.room_id == room_id))
        ).one()
    return wire.export_shape(room_id, items, votes, log, count)


EXPORT_COLUMNS = ("id", "kind", "status", "text", "author", "viewer_id", "product_id", "votes", "answer",
                  "reply", "blocked_word", "created_ms", "answered_ms")  # fmt: skip


def export_csv(data: Mapping[str, Any]) -> str:
    """The items of an export as CSV (spreadsheet-safe: formulas are neutralised)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for item in data["items"]:
        writer.writerow([csv_cell(item.get(column)) for column in EXPORT_COLUMNS])
    return out.getvalue()
