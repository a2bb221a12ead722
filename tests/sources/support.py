"""What the sources tests share: a source code made in the database, a signed shop event, the rows."""

from __future__ import annotations

from typing import Any

import httpx
from sqlmodel import select

from server.intents.webhook import shop_secret
from server.services import Services
from server.storage import now_ms
from server.storage.models import RoomViewer
from server.storage.revenue import Order, SourceCode
from tests.helpers import Running
from tests.intents.test_webhook import signed


def services_of(running: Running) -> Services:
    found: Services = running.app.state.services
    return found


async def source(running: Running, room_id: str, code: str, *, archived: bool = False) -> str:
    async with services_of(running).db.session() as session:
        session.add(
            SourceCode(
                code=code,
                room_id=room_id,
                label=code,
                channel="poster",
                created_ms=now_ms(),
                archived=archived,
            )
        )
        await session.commit()
    return code


async def shop(
    running: Running, room_id: str, kind: str, data: dict[str, Any], msg_id: str | None = None
) -> httpx.Response:
    """One signed shop event posted to the room's webhook."""
    body, headers = signed(
        shop_secret(services_of(running), room_id), {"type": kind, "data": data}, msg_id=msg_id
    )
    async with httpx.AsyncClient(base_url=running.base) as http:
        return await http.post(f"/api/rooms/{room_id}/shop/events", content=body, headers=headers)


async def attendance(running: Running, room_id: str, viewer_id: str) -> RoomViewer:
    async with services_of(running).db.session() as session:
        found = await session.get(RoomViewer, (room_id, viewer_id))
    assert found is not None
    return found


async def orders(running: Running, room_id: str) -> list[Order]:
    async with services_of(running).db.session() as session:
        return list((await session.exec(select(Order).where(Order.room_id == room_id))).all())
