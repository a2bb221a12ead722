"""Draws' part of each snapshot, of the viewer's private state, and of the reducer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlmodel import col, select

from server.auth import Principal, Role
from server.domain import PersonalPart, Reducer
from server.draws import store
from server.services import Services
from server.storage.models import Draw, DrawEntry, DrawWinner


async def contribute(services: Services, principal: Principal, snap: dict[str, Any]) -> None:
    d = await store.current_draw(services.db, principal.room_id)
    host = principal.role is Role.HOST
    snap["draw"] = (await store.load_view(services.db, d)).shape(host=host) if d is not None else None
    if host:
        snap["draws"] = [
            view.shape(host=True) for view in await store.history(services.db, principal.room_id)
        ]


async def personal(services: Services, principal: Principal, out: dict[str, Any]) -> None:
    assert principal.viewer_id is not None
    out["my_draws"] = (await store.my_draws(services.db, principal.room_id, principal.viewer_id)).shape()


def has_state(room_id: Any, viewer_ids: Any) -> list[Select[Any]]:
    return [
        select(DrawEntry.viewer_id)
        .join(Draw, col(Draw.id) == col(DrawEntry.draw_id))
        .where(Draw.room_id == room_id, col(DrawEntry.viewer_id).in_(viewer_ids)),
        select(DrawWinner.viewer_id)
        .join(Draw, col(Draw.id) == col(DrawWinner.draw_id))
        .where(Draw.room_id == room_id, col(DrawWinner.viewer_id).in_(viewer_ids)),
    ]


def empty(_joined_ms: int | None) -> dict[str, Any]:
    return {"my_draws": {}}


def reduce_draw(snap: dict[str, Any], data: dict[str, Any]) -> None:
    current = snap.get("draw")
    if current is None or data["id"] >= current["id"]:
        snap["draw"] = dict(data)
    if "draws" in snap:
        by_id = {d["id"]: d for d in snap["draws"]}
        by_id[data["id"]] = dict(data)
        snap["draws"] = [by_id[k] for k in sorted(by_id)][-store.HISTORY :]


def reduce_entrants(snap: dict[str, Any], data: dict[str, Any]) -> None:
    for d in [snap.get("draw"), *snap.get("draws", [])]:
        if d is not None and d["id"] == data["id"] and d["status"] == "open":
            d["entrants"] = data["entrants"]


# This domain's part of the snapshot, of the viewer's private state, and of the reducer.
PERSONAL = PersonalPart(personal, has_state, empty)
REDUCERS: dict[str, Reducer] = {"draw": reduce_draw, "draw.entrants": reduce_entrants}
