"""What each role sees on connect, and the reference reducer that applies events to it.

The browser clients apply events the same way (static/js/state.js); tests check, for every event
type, that snapshot + event == a snapshot taken after it.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any

from server.auth import Principal, Role
from server.products.rules import currency_digits
from server.rooms import actions
from server.services import Services
from server.storage.models import Announcement, Product, Room

HOST_ANNOUNCEMENTS = 20

# Other domains add their part of the snapshot, of the viewer's private state, and of the reducer.
Contributor = Callable[[Services, Principal, dict[str, Any]], Awaitable[None]]
Reducer = Callable[[dict[str, Any], dict[str, Any]], None]
CONTRIBUTORS: list[Contributor] = []
PERSONAL: list[Contributor] = []
REDUCERS: dict[str, Reducer] = {}


def links(services: Services, room: Room) -> dict[str, str]:
    """Paths of the room's three surfaces (the screen path carries its secret key)."""
    screen_key = services.tokens.screen(room.id, room.screen_key_gen)
    return {
        "viewer": f"/r/{room.id}",
        "screen": f"/screen/{room.id}?k={screen_key}",
        "host": f"/host/{room.id}",
    }


def _room(room: Room) -> dict[str, Any]:
    return {
        "id": room.id,
        "title": room.title,
        "status": room.status,
        "started_ms": room.started_ms,
        "ended_ms": room.ended_ms,
    }


def _announcement(item: Announcement) -> dict[str, Any]:
    return {"id": item.id, "text": item.text, "created_ms": item.created_ms}


def product_shape(item: Product) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.name,
        "image_url": item.image_url,
        "price_minor": item.price_minor,
        "currency": item.currency,
        "digits": currency_digits(item.currency),
        "stock": item.stock,
        "shop_url": item.shop_url,
        "sku": item.sku,
        "description": item.description,
    }


async def build(services: Services, principal: Principal, *, viewers: int | None = None) -> dict[str, Any]:
    """The snapshot every connection of the principal's role shares, read from storage now."""
    room = await actions.load_room(services.db, principal.room_id)
    recent = await actions.recent_announcements(
        services.db, room.id, HOST_ANNOUNCEMENTS if principal.role is Role.HOST else 1
    )
    if viewers is None:
        viewers = await services.hub.backend.presence_total(room.id)
    snap: dict[str, Any] = {
        "room": _room(room),
        "announcement": _announcement(recent[0]) if recent else None,
        "presence": {"viewers": viewers, "peak": max(room.peak_viewers, viewers)},
        "products": [product_shape(p) for p in await actions.room_products(services.db, room.id)],
    }
    if principal.role is Role.HOST:
        snap["announcements"] = [_announcement(a) for a in recent]
        snap["links"] = links(services, room)
    for contribute in CONTRIBUTORS:
        await contribute(services, principal, snap)
    return snap


async def private_parts(services: Services, principal: Principal) -> dict[str, Any]:
    """The snapshot's part that is this principal's own (a viewer's ``me``), merged over the shared part."""
    if principal.role is Role.VIEWER and principal.viewer_id is not None:
        viewer = await actions.load_viewer(services.db, principal.viewer_id)
        return {"me": {"id": viewer.id, "name": viewer.display_name}}
    return {}


async def personal(services: Services, principal: Principal) -> dict[str, Any]:
    """A viewer's private state (their own items, their votes), sent in every welcome, resumed or not."""
    out: dict[str, Any] = {}
    for contribute in PERSONAL:
        await contribute(services, principal, out)
    return out


def apply_event(snapshot: dict[str, Any], kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """Reference reducer: the snapshot after one event (does not modify its input)."""
    snap = copy.deepcopy(snapshot)
    if kind == "room.status":
        snap["room"].update(data)
    elif kind == "announcement":
        snap["announcement"] = dict(data)
        if "announcements" in snap:
            rest = [a for a in snap["announcements"] if a["id"] != data["id"]]
            snap["announcements"] = [dict(data), *rest][:HOST_ANNOUNCEMENTS]
    elif kind == "presence":
        snap["presence"] = dict(data)
    elif kind in REDUCERS:
        REDUCERS[kind](snap, data)
    return snap
