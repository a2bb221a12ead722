"""The client actions of products: each parses its message (``wire``), acts (``actions``) and answers
with a shape. Declared to the app in this domain's ``domain.py``."""

from __future__ import annotations

from typing import Any

from server.auth import Scope
from server.domain import ActionContext, ActionTable
from server.products import actions, wire

ACTIONS = ActionTable()


@ACTIONS.action(
    "product.save", scope=Scope.PRODUCTS, doc="host: add a product to the shelf, or edit one (id)"
)
async def _ws_save(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return wire.product_shape(await actions.do_save(ctx.services, ctx.principal, wire.parse_save(data)))


@ACTIONS.action("product.remove", scope=Scope.PRODUCTS, doc="host: take a product off the shelf")
async def _ws_remove(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    await actions.do_remove(ctx.services, ctx.principal, wire.parse_product_ref(data))
    return {}


@ACTIONS.action(
    "product.pin", scope=Scope.PRODUCTS, doc="host: pin a product on phones and the big screen (null unpins)"
)
async def _ws_pin(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    pin = await actions.do_pin(ctx.services, ctx.principal, wire.parse_pin(data))
    return {"pinned": wire.pin_shape(pin)}


@ACTIONS.action(
    "intent",
    scope=Scope.PARTICIPATE,
    doc="viewer: a purchase-intent signal (pinned card seen, details, back from checkout)",
)
async def _ws_intent(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    await actions.do_intent(ctx.services, ctx.principal, wire.parse_intent(data))
    return {}
