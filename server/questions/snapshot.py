"""The questions domain's part of each snapshot, of the viewer's private state, and of the reducer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlmodel import col, select

from server.auth import Principal, Role
from server.domain import PersonalPart, Reducer
from server.questions import rules, store, wire
from server.services import Services
from server.storage import Database
from server.storage.models import Item, Vote

WALL_ITEMS = 50  # the newest shown items a surface starts with
HOST_COMMENTS = 100  # the newest comments in the host's moderation view
MINE = 100


async def top(db: Database, room_id: str) -> list[dict[str, Any]]:
    """The top questions as the wall shows them (in the snapshot and, when they change, a wall tick)."""
    return [wire.public_item(i) for i in await store.top_questions(db, room_id)]


async def contribute(services: Services, principal: Principal, snap: dict[str, Any]) -> None:
    db, room_id = services.db, principal.room_id
    settings = await store.load_settings(db, room_id)
    snap["settings"] = wire.settings_shape(settings)
    spotlight = None
    if settings.spotlight_item_id is not None:
        async with db.session() as session:
            item = await session.get(Item, settings.spotlight_item_id)
        spotlight = wire.public_or_none(item)
    snap["spotlight"] = spotlight
    async with db.session() as session:
        rows = await session.exec(
            select(Item)
            .where(Item.room_id == room_id, col(Item.status).in_(rules.SHOWN))
            .order_by(col(Item.id).desc())
            .limit(WALL_ITEMS)
        )
        snap["wall"] = [wire.public_item(i) for i in reversed(rows.all())]
        if principal.role is Role.HOST:
            queue = await session.exec(
                select(Item)
                .where(Item.room_id == room_id, col(Item.kind) != "comment")
                .order_by(col(Item.id))
            )
            snap["queue"] = [wire.host_item(i) for i in queue.all()]
            comments = await session.exec(
                select(Item)
                .where(Item.room_id == room_id, Item.kind == "comment")
                .order_by(col(Item.id).desc())
                .limit(HOST_COMMENTS)
            )
            snap["comments"] = [wire.host_item(i) for i in reversed(comments.all())]
    snap["top"] = await top(db, room_id)
    if principal.role is Role.HOST:
        snap["blocklist"] = store.blocklist_words(settings)
        snap["sanctions"] = [wire.sanction_shape(s) for s in await store.sanctions_in_force(db, room_id)]


async def personal(services: Services, principal: Principal, out: dict[str, Any]) -> None:
    assert principal.viewer_id is not None
    async with services.db.session() as session:
        mine = await session.exec(
            select(Item)
            .where(Item.room_id == principal.room_id, Item.viewer_id == principal.viewer_id)
            .order_by(col(Item.id).desc())
            .limit(MINE)
        )
        out["mine"] = [wire.mine_item(i) for i in reversed(mine.all())]
        votes = await session.exec(
            select(Vote.item_id)
            .join(Item, col(Item.id) == col(Vote.item_id))
            .where(Item.room_id == principal.room_id, Vote.viewer_id == principal.viewer_id)
        )
        out["my_votes"] = sorted(votes.all())


def has_state(room_id: Any, viewer_ids: Any) -> list[Select[Any]]:
    return [
        select(Item.viewer_id).where(Item.room_id == room_id, col(Item.viewer_id).in_(viewer_ids)),
        select(Vote.viewer_id)
        .join(Item, col(Item.id) == col(Vote.item_id))
        .where(Item.room_id == room_id, col(Vote.viewer_id).in_(viewer_ids)),
    ]


def empty(_joined_ms: int | None) -> dict[str, Any]:
    return {"mine": [], "my_votes": []}


def _apply_votes(items: list[dict[str, Any]], votes: dict[str, int]) -> None:
    for item in items:
        count = votes.get(str(item["id"]))
        if count is not None:
            item["votes"] = count


def reduce_wall(snap: dict[str, Any], data: dict[str, Any]) -> None:
    by_id = {item["id"]: item for item in snap.get("wall", [])}
    for item in data.get("items", []):
        by_id[item["id"]] = dict(item)
    for item_id in data.get("removed", []):
        by_id.pop(item_id, None)
    wall = [by_id[k] for k in sorted(by_id) if rules.is_shown(by_id[k]["status"])]
    snap["wall"] = wall[-WALL_ITEMS:]
    _apply_votes(snap["wall"], data.get("votes", {}))
    if data.get("top") is not None:
        snap["top"] = [dict(i) for i in data["top"]]
    spotlight = snap.get("spotlight")
    if spotlight is not None:
        for item in data.get("items", []):
            if item["id"] == spotlight["id"]:
                snap["spotlight"] = dict(item)
        _apply_votes([snap["spotlight"]], data.get("votes", {}))


def reduce_queue(snap: dict[str, Any], data: dict[str, Any]) -> None:
    queue = {item["id"]: item for item in snap.get("queue", [])}
    comments = {item["id"]: item for item in snap.get("comments", [])}
    for item in data.get("items", []):
        (comments if item["kind"] == "comment" else queue)[item["id"]] = dict(item)
    snap["queue"] = [queue[k] for k in sorted(queue)]
    snap["comments"] = [comments[k] for k in sorted(comments)][-HOST_COMMENTS:]
    _apply_votes(snap["queue"], data.get("votes", {}))
    _apply_votes(snap["comments"], data.get("votes", {}))


def _set(key: str, field: str | None = None) -> Any:
    def reducer(snap: dict[str, Any], data: dict[str, Any]) -> None:
        snap[key] = data[field] if field is not None else dict(data)

    return reducer


# This domain's part of the snapshot, of the viewer's private state, and of the reducer.
PERSONAL = PersonalPart(personal, has_state, empty)
REDUCERS: dict[str, Reducer] = {
    "wall": reduce_wall,
    "queue": reduce_queue,
    "spotlight": _set("spotlight", "item"),
    "room.settings": _set("settings"),
    "blocklist": _set("blocklist", "words"),
    "sanctions": _set("sanctions", "sanctions"),
}
