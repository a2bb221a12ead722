"""Batched inserts: many concurrent rows share transactions, each caller gets its own stored row."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import event

from server.rooms.actions import create_room
from server.storage import Database, now_ms
from server.storage.batch import BatchWriter
from server.storage.models import Item, Viewer


@pytest.fixture
async def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    database = Database(f"sqlite:///{tmp_path / 'b.db'}")
    await asyncio.to_thread(database.migrate)
    yield database
    await database.dispose()


async def _viewer(db: Database) -> Viewer:
    viewer = Viewer(id="v1", display_name="v", created_ms=now_ms())
    async with db.session() as session:
        session.add(viewer)
        await session.commit()
    return viewer


async def test_concurrent_rows_share_commits(db: Database) -> None:
    """300 concurrent adds are all stored with ids, in far fewer commits than rows."""
    room, _ = await create_room(db, title="t")
    commits = 0

    def count(_conn: object) -> None:
        nonlocal commits
        commits += 1

    viewer = await _viewer(db)
    event.listen(db.engine.sync_engine, "commit", count)
    writer: BatchWriter[Item] = BatchWriter(db)
    rows = await asyncio.gather(
        *[
            writer.add(
                Item(room_id=room.id, viewer_id=viewer.id, kind="comment", text=f"c{i}", created_ms=now_ms())
            )
            for i in range(300)
        ]
    )
    assert len({r.id for r in rows}) == 300 and all(r.id for r in rows)
    assert commits < 30


async def test_a_bad_row_fails_alone(db: Database) -> None:
    """A row that violates a constraint fails its own caller; the rows beside it are stored."""
    room, _ = await create_room(db, title="t")
    viewer = await _viewer(db)
    writer: BatchWriter[Item] = BatchWriter(db)
    good = Item(room_id=room.id, viewer_id=viewer.id, kind="comment", text="ok", created_ms=now_ms())
    bad = Item(room_id=room.id, viewer_id="no-such-viewer", kind="comment", text="bad", created_ms=now_ms())
    results = await asyncio.gather(writer.add(good), writer.add(bad), return_exceptions=True)
    assert isinstance(results[0], Item) and results[0].id
    assert isinstance(results[1], Exception)
