"""The client actions of discounts: each parses its message (``wire``), acts (``actions``) and answers
with a shape. Declared to the app in this domain's ``domain.py``."""

from __future__ import annotations

from typing import Any

from server.auth import Scope
from server.discounts import actions, wire
from server.discounts.engine import load_discount
from server.domain import ActionContext, ActionTable
from server.products.actions import load_product

ACTIONS = ActionTable()


@ACTIONS.action("discount.launch", scope=Scope.DEALS, doc="host: start a time-limited discount on a product")
async def _ws_launch(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    product = await load_product(ctx.services.db, ctx.principal.room_id, data.get("product_id"))
    launch = wire.parse_launch(data, product.price_minor)
    view = await actions.do_launch(ctx.services, ctx.principal, product, launch)
    return wire.discount_view_shape(view)


@ACTIONS.action(
    "discount.update", scope=Scope.DEALS, doc="host: extend a discount, add stock or change its price"
)
async def _ws_update(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    d = await load_discount(ctx.services.db, ctx.principal.room_id, wire.parse_ref(data))
    view = await actions.do_update(ctx.services, d, wire.parse_change(data, d.list_price_minor))
    return wire.discount_view_shape(view)


@ACTIONS.action("discount.stop", scope=Scope.DEALS, doc="host: end a discount now")
async def _ws_stop(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    view = await actions.do_stop(ctx.services, ctx.principal, wire.parse_ref(data))
    return wire.discount_view_shape(view)


@ACTIONS.action(
    "discount.claim", scope=Scope.PARTICIPATE, doc="viewer: claim one unit of a discount (a coupon code)"
)
async def _ws_claim(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    view = await actions.do_claim(ctx.services, ctx.principal, wire.parse_ref(data))
    return wire.claim_view_shape(view)


@ACTIONS.action("discount.release", scope=Scope.PARTICIPATE, doc="viewer: give a reserved unit back")
async def _ws_release(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    view = await actions.do_release(ctx.services, ctx.principal, wire.parse_ref(data))
    return wire.claim_view_shape(view)
