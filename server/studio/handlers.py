"""The studio's client actions: a console launches a preset prepared in the studio. Declared to the
app in this package's ``domain.py``."""

from __future__ import annotations

from typing import Any

from server.auth import Scope
from server.discounts import wire as discounts_wire
from server.domain import ActionContext, ActionTable
from server.studio import presets

ACTIONS = ActionTable()


@ACTIONS.action("discount.preset", scope=Scope.DEALS, doc="host: launch a discount prepared in the studio")
async def _ws_discount_preset(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    view = await presets.launch_discount(ctx.services, ctx.principal, data.get("id"))
    return discounts_wire.discount_view_shape(view)


@ACTIONS.action("draw.preset", scope=Scope.DRAWS, doc="host: set up a draw prepared in the studio")
async def _ws_draw_preset(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    view = await presets.launch_draw(ctx.services, ctx.principal, data.get("id"))
    return view.shape(host=True)
