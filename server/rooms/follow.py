"""Following a room (followers may get exclusive prices; the hosts' sales board counts them)."""

from __future__ import annotations

from sqlalchemy import delete
from sqlmodel import col

from server.auth import Principal
from server.rooms import wire
from server.services import Services
from server.storage import Database, now_ms
from server.storage.models import Follow


async def is_following(db: Database, room_id: str, viewer_id: str) -> bool:
    async with db.session() as session:
        return await session.get(Follow, (room_id, viewer_id)) is not None


async def do_follow(services: Services, principal: Principal, follow: wire.Follow) -> bool:
    """Follow or unfollow the room; a change is told to the domains that count followers (hooks)."""
    assert principal.viewer_id is not None
    on = follow.on
    async with services.db.session() as session:
        exists = await session.get(Follow, (principal.room_id, principal.viewer_id)) is not None
        if on and not exists:
            session.add(Follow(room_id=principal.room_id, viewer_id=principal.viewer_id, created_ms=now_ms()))
        elif not on and exists:
            await session.exec(
                delete(Follow).where(
                    col(Follow.room_id) == principal.room_id, col(Follow.viewer_id) == principal.viewer_id
                )
            )
        await session.commit()
    if on != exists:
        for hook in services.registry.follow_hooks:
            hook(services, principal.room_id)
    return on
