"""The client actions of rooms: each parses its message (``wire``), acts (``actions``) and answers
with a shape. Declared to the app in this domain's ``domain.py``."""

from __future__ import annotations

from typing import Any

from server.auth import Scope
from server.domain import ActionContext, ActionTable
from server.rooms import actions, follow, wire

ACTIONS = ActionTable()


@ACTIONS.action("room.start", scope=Scope.SHOW, doc="host: go live")
async def _ws_start(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return wire.status_shape(await actions.do_start(ctx.services, ctx.principal.room_id))


@ACTIONS.action("room.end", scope=Scope.SHOW, doc="host: end the live session")
async def _ws_end(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return wire.status_shape(await actions.do_end(ctx.services, ctx.principal.room_id))


@ACTIONS.action("announce", scope=Scope.SHOW, doc="host: post an announcement to every surface")
async def _ws_announce(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    item = await actions.do_announce(ctx.services, ctx.principal.room_id, wire.parse_announce(data))
    return wire.announced_shape(item)


@ACTIONS.action("viewer.rename", scope=Scope.PARTICIPATE, doc="viewer: set or clear the display name")
async def _ws_rename(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    assert ctx.principal.viewer_id is not None
    viewer = await actions.do_rename(ctx.services, ctx.principal.viewer_id, wire.parse_rename(data))
    return wire.renamed_shape(viewer)


@ACTIONS.action("room.follow", scope=Scope.PARTICIPATE, doc="viewer: follow or unfollow the room")
async def _ws_follow(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    following = await follow.do_follow(ctx.services, ctx.principal, wire.parse_follow(data))
    return wire.following_shape(following)
