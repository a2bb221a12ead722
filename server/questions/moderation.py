"""The room's rules for its audience, set by hosts: sanctions (mute, ban, pardon), moderation mode,
slow mode, screen layout and the keyword blocklist. Each change is logged, then published."""

from __future__ import annotations

import orjson

from server.auth import Principal
from server.errors import NotFound
from server.questions import rules, store, wire
from server.questions.events import BlocklistChanged, SanctionsChanged, SettingsChanged
from server.rooms.actions import load_room
from server.services import Services
from server.storage import now_ms
from server.storage.models import RoomSettings, Sanction, Viewer


async def do_sanction(services: Services, principal: Principal, sanction: wire.SanctionViewer) -> None:
    """Mute a viewer for N minutes, ban them for the session, or pardon them."""
    async with services.db.session() as session:
        if await session.get(Viewer, sanction.viewer_id) is None:
            raise NotFound("no such viewer")
        row = await session.get(Sanction, (principal.room_id, sanction.viewer_id)) or Sanction(
            room_id=principal.room_id, viewer_id=sanction.viewer_id
        )
        row.banned, row.mute_until_ms = rules.apply_sanction(
            sanction.mode, sanction.minutes, now_ms(), banned=row.banned, mute_until_ms=row.mute_until_ms
        )
        session.add(row)
        await session.commit()
    store.forget(services.db, "sanctions", principal.room_id)
    await store.log_moderation(
        services.db, principal, sanction.mode, viewer_id=sanction.viewer_id, detail=sanction.detail
    )
    in_force = await store.sanctions_in_force(services.db, principal.room_id)
    await services.hub.publish(
        principal.room_id, SanctionsChanged(sanctions=[wire.sanction_shape(s) for s in in_force])
    )


async def do_settings(services: Services, principal: Principal, change: wire.UpdateSettings) -> RoomSettings:
    """Change moderation mode, slow mode, screen layout or the blocklist, live."""
    await load_room(services.db, principal.room_id)
    async with services.db.session() as session:
        row = await session.get(RoomSettings, principal.room_id) or RoomSettings(room_id=principal.room_id)
        if change.moderation is not None:
            row.moderation = change.moderation
        if change.slow_mode_secs is not None:
            row.slow_mode_secs = change.slow_mode_secs
        if change.layout is not None:
            row.layout = change.layout
        if change.blocklist is not None:
            row.blocklist = orjson.dumps(change.blocklist).decode()
        session.add(row)
        await session.commit()
        await session.refresh(row)
    store.forget(services.db, "settings", principal.room_id)
    await store.log_moderation(services.db, principal, "settings", detail=change.detail)
    await services.hub.publish(
        principal.room_id,
        SettingsChanged(moderation=row.moderation, slow_mode_secs=row.slow_mode_secs, layout=row.layout),
    )
    if change.blocklist is not None:
        await services.hub.publish(principal.room_id, BlocklistChanged(words=store.blocklist_words(row)))
    return row
