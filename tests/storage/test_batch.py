"""Batched inserts and reads: many concurrent rows share transactions, each caller gets its own stored
row; keys asked for at the same moment are read together."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlmodel import select

from server.rooms.actions import create_room
from server.storage import Database, now_ms
from server.storage.batch import BatchGetter, BatchInserter, BatchWriter
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


def _item(room_id: str, viewer_id: str, text: str) -> dict[str, object]:
    return {
        "room_id": room_id,
        "viewer_id": viewer_id,
        "kind": "comment",
        "text": text,
        "status": "visible",
        "votes": 0,
        "created_ms": now_ms(),
    }


async def test_inserter_returns_each_callers_key_in_few_commits(db: Database) -> None:
    """300 concurrent Core inserts: each caller gets the key of its own row, in far fewer commits."""
    room, _ = await create_room(db, title="t")
    viewer = await _viewer(db)
    commits = 0

    def count(_conn: object) -> None:
        nonlocal commits
        commits += 1

    event.listen(db.engine.sync_engine, "commit", count)
    inserter = BatchInserter(db, Item.__table__)  # type: ignore[attr-defined]
    keys = await asyncio.gather(*[inserter.add(_item(room.id, viewer.id, f"c{i}")) for i in range(300)])
    assert len(set(keys)) == 300 and commits < 30
    async with db.session() as session:
        rows = (await session.exec(select(Item.id, Item.text))).all()
    assert {key: f"c{i}" for i, key in enumerate(keys)} == dict(rows)


async def test_inserter_bad_row_fails_alone(db: Database) -> None:
    room, _ = await create_room(db, title="t")
    viewer = await _viewer(db)
    inserter = BatchInserter(db, Item.__table__)  # type: ignore[attr-defined]
    results = await asyncio.gather(
        inserter.add(_item(room.id, viewer.id, "ok")),
        inserter.add(_item(room.id, "no-such-viewer", "bad")),
        return_exceptions=True,
    )
    assert isinstance(results[0], int) and isinstance(results[1], Exception)
    async with db.session() as session:
        assert (await session.exec(select(Item.text))).all() == ["ok"]


async def test_getter_reads_the_keys_of_one_moment_together() -> None:
    calls: list[set[str]] = []
    release = asyncio.Event()

    async def fetch(keys: set[str]) -> dict[str, str]:
        calls.append(set(keys))
        await release.wait()
        return {k: k.upper() for k in keys if k != "gone"}

    getter: BatchGetter[str, str | None] = BatchGetter(fetch, None)
    first = [asyncio.create_task(getter.get(k)) for k in ("a", "b", "a", "gone")]
    await asyncio.sleep(0.01)
    late = asyncio.create_task(getter.get("c"))  # asked while the first read runs: the next read
    await asyncio.sleep(0.01)
    release.set()
    assert await asyncio.gather(*first) == ["A", "B", "A", None]
    assert await late == "C"
    assert calls == [{"a", "b", "gone"}, {"c"}]


async def test_getter_failure_reaches_every_waiter_and_the_next_read_works() -> None:
    fail = True

    async def fetch(keys: set[str]) -> dict[str, int]:
        if fail:
            raise RuntimeError("database down")
        return dict.fromkeys(keys, 1)

    getter: BatchGetter[str, int] = BatchGetter(fetch, 0)
    results = await asyncio.gather(getter.get("a"), getter.get("b"), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    fail = False
    assert await getter.get("a") == 1
