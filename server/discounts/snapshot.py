"""Selling's part of each snapshot (discounts, claims, funnel), of the viewer's
private state, and of the reducer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlmodel import col, select

from server.auth import Principal, Role
from server.discounts import actions, wire
from server.discounts.engine import HOST_CLAIMS, Engine
from server.domain import PersonalPart, Reducer
from server.intents import log as intents
from server.intents.webhook import shop_secret, webhook_path
from server.rooms.follow import is_following
from server.services import Services
from server.storage import now_ms
from server.storage.models import Claim, Follow, RoomViewer


async def contribute(services: Services, principal: Principal, snap: dict[str, Any]) -> None:
    db, room_id = services.db, principal.room_id
    engine = services.engines.find(Engine)
    assert engine is not None
    t = now_ms()
    recent = await actions.recent_discounts(db, room_id)
    counts = await engine.stock.counts_many(recent)
    snap["discounts"] = [wire.discount_shape(d, c, t) for d, c in zip(recent, counts, strict=True)]
    if principal.role is Role.HOST:
        snap["claims"] = [wire.host_claim_shape(c) for c in await actions.recent_claims(db, room_id)]
        snap["sales"] = await intents.funnel(db, room_id)
        snap["shop"] = {
            "webhook_path": webhook_path(room_id),
            "webhook_secret": shop_secret(services, room_id),
        }


async def personal(services: Services, principal: Principal, out: dict[str, Any]) -> None:
    assert principal.viewer_id is not None
    db = services.db
    out["following"] = await is_following(db, principal.room_id, principal.viewer_id)
    async with db.session() as session:
        seen = await session.get(RoomViewer, (principal.room_id, principal.viewer_id))
    out["joined_ms"] = seen.joined_ms if seen is not None else None
    mine = await actions.my_claims(db, principal.room_id, principal.viewer_id)
    out["my_claims"] = [wire.claim_view_shape(c) for c in mine]


def has_state(room_id: Any, viewer_ids: Any) -> list[Select[Any]]:
    return [
        select(Follow.viewer_id).where(Follow.room_id == room_id, col(Follow.viewer_id).in_(viewer_ids)),
        select(Claim.viewer_id).where(Claim.room_id == room_id, col(Claim.viewer_id).in_(viewer_ids)),
    ]


def empty(joined_ms: int | None) -> dict[str, Any]:
    return {"following": False, "joined_ms": joined_ms, "my_claims": []}


def merge_discount(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """A whole discount over the one held: counters with an older version never win."""
    merged = dict(new)
    if old is not None and old.get("v", 0) > new.get("v", 0):
        for key in ("quantity", "claimed", "remaining"):
            merged[key] = old[key]
        if merged["status"] in ("live", "sold_out"):
            merged["status"] = "sold_out" if merged["remaining"] <= 0 else "live"
        merged["v"] = old["v"]
    return merged


def reduce_discount(snap: dict[str, Any], data: dict[str, Any]) -> None:
    by_id = {d["id"]: d for d in snap.get("discounts", [])}
    by_id[data["id"]] = merge_discount(by_id.get(data["id"]), data)
    snap["discounts"] = [by_id[k] for k in sorted(by_id)][-actions.RECENT_DISCOUNTS :]


def reduce_stock(snap: dict[str, Any], data: dict[str, Any]) -> None:
    for d in snap.get("discounts", []):
        counts = data["counts"].get(str(d["id"]))
        if counts is None or counts["v"] < d.get("v", 0):
            continue
        d.update(
            claimed=counts["claimed"],
            remaining=counts["remaining"],
            quantity=counts["quantity"],
            v=counts["v"],
        )
        if d["status"] != "ended":
            d["status"] = counts["status"]


def reduce_claims(snap: dict[str, Any], data: dict[str, Any]) -> None:
    by_id = {c["id"]: c for c in snap.get("claims", [])}
    for claim in data["claims"]:
        by_id[claim["id"]] = dict(claim)
    snap["claims"] = [by_id[k] for k in sorted(by_id)][-HOST_CLAIMS:]


def reduce_sales(snap: dict[str, Any], data: dict[str, Any]) -> None:
    snap["sales"] = {
        "products": {k: dict(v) for k, v in data["products"].items()},
        "followers": data["followers"],
    }


# This domain's part of the snapshot, of the viewer's private state, and of the reducer.
PERSONAL = PersonalPart(personal, has_state, empty)
REDUCERS: dict[str, Reducer] = {
    "discount": reduce_discount,
    "stock": reduce_stock,
    "claims": reduce_claims,
    "sales": reduce_sales,
}
