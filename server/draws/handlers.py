"""The client actions of draws: each parses its message (``wire``), acts (``actions``) and answers
with a shape. Declared to the app in this domain's ``domain.py``."""

from __future__ import annotations

from typing import Any

from server.auth import Scope
from server.domain import ActionContext, ActionTable
from server.draws import actions, claims, wire

ACTIONS = ActionTable()


@ACTIONS.action("draw.create", scope=Scope.DRAWS, doc="host: set up a draw (commits to its seed)")
async def _ws_create(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    view = await actions.do_create(ctx.services, ctx.principal, wire.parse_create(data))
    return view.shape(host=True)


@ACTIONS.action(
    "draw.close", scope=Scope.DRAWS, doc="host: close the entry window now (commits to the entrants)"
)
async def _ws_close(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    view = await actions.do_close(ctx.services, ctx.principal, wire.parse_ref(data))
    return view.shape(host=True)


@ACTIONS.action("draw.run", scope=Scope.DRAWS, doc="host: draw the winners (reveals the seed); only once")
async def _ws_run(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    view = await actions.do_run(ctx.services, ctx.principal, wire.parse_ref(data))
    return view.shape(host=True)


@ACTIONS.action("draw.confirm", scope=Scope.DRAWS, doc="host: confirm the winner of a place")
async def _ws_confirm(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    view = await actions.do_confirm(ctx.services, ctx.principal, wire.parse_place(data))
    return view.shape(host=True)


@ACTIONS.action(
    "draw.absent", scope=Scope.DRAWS, doc="host: mark a winner absent and re-draw only that place"
)
async def _ws_absent(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    view, replaced = await actions.do_absent(ctx.services, ctx.principal, wire.parse_place(data))
    return wire.redrawn_shape(view, replaced)


@ACTIONS.action("draw.cancel", scope=Scope.DRAWS, doc="host: cancel a draw that has not been drawn")
async def _ws_cancel(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    view = await actions.do_cancel(ctx.services, ctx.principal, wire.parse_ref(data))
    return view.shape(host=True)


@ACTIONS.action("draw.enter", scope=Scope.PARTICIPATE, doc="viewer: join a draw during its entry window")
async def _ws_enter(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return (await actions.do_enter(ctx.services, ctx.principal, wire.parse_ref(data))).shape()


@ACTIONS.action("draw.shake", scope=Scope.PARTICIPATE, doc="viewer: shakes counted in a shake race")
async def _ws_shake(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return (await actions.do_shake(ctx.services, ctx.principal, wire.parse_shake(data))).shape()


@ACTIONS.action(
    "draw.claim", scope=Scope.PARTICIPATE, doc="viewer (a winner): leave contact details to get the prize"
)
async def _ws_claim(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return wire.claimed_shape(await claims.do_claim(ctx.services, ctx.principal, wire.parse_claim(data)))
