"""The products' part of each snapshot (the shelf and the pinned product) and of the reducer."""

from __future__ import annotations

from typing import Any

from server.auth import Principal
from server.domain import Reducer
from server.products import wire
from server.products.actions import pinned
from server.rooms.actions import room_products
from server.services import Services


async def contribute(services: Services, principal: Principal, snap: dict[str, Any]) -> None:
    snap["products"] = wire.shelf_shape(await room_products(services.db, principal.room_id))
    snap["pinned"] = wire.pin_shape(await pinned(services.db, principal.room_id))


def reduce_products(snap: dict[str, Any], data: dict[str, Any]) -> None:
    snap["products"] = [dict(p) for p in data["products"]]


def reduce_pinned(snap: dict[str, Any], data: dict[str, Any]) -> None:
    snap["pinned"] = dict(data)


REDUCERS: dict[str, Reducer] = {"products": reduce_products, "pinned": reduce_pinned}
