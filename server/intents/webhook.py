"""The shop's signed webhook: coupon redemptions and the life of orders, into the event log.

Signed as Standard Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``: HMAC-SHA256
with the room's ``whsec_`` secret), verified by the ``standardwebhooks`` package, which also refuses
timestamps more than 5 minutes off (replays). Idempotent by ``webhook-id``: a duplicate delivery is
answered 200 and changes nothing. Documented in docs/shop-webhooks.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson
from sqlalchemy import update
from sqlmodel import col, select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from server.errors import BadMessage, InvalidInput, Unauthorized
from server.httputil import read_body
from server.intents import log as intents
from server.intents import orders
from server.intents.log import SalesBoard
from server.intents.wire import parse_event, parse_money, parse_refs
from server.rooms import sources
from server.rooms.actions import load_room
from server.services import Services
from server.storage import now_ms
from server.storage.models import Claim, Discount, Product, RoomViewer

# Events that mean the coupon was used: its unit is sold and no longer returns to stock.
REDEEMING = ("coupon.redeemed", "order.placed", "order.paid")
MAX_WEBHOOK_BYTES = 64 * 1024
WEBHOOK_ID_MAX_CHARS = 64


def shop_secret(services: Services, room_id: str) -> str:
    """The room's webhook secret, derived from the server's secret key (nothing to store or leak)."""
    assert services.settings.secret_key is not None
    raw = hmac.new(services.settings.secret_key.encode(), f"shop-webhook:{room_id}".encode(), hashlib.sha256)
    return "whsec_" + base64.b64encode(raw.digest()).decode()


def webhook_path(room_id: str) -> str:
    return f"/api/rooms/{room_id}/shop/events"


def verify(secret: str, body: bytes, headers: dict[str, str]) -> Any:
    """The payload if the signature and timestamp hold, else Unauthorized(bad_signature)."""
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except (WebhookVerificationError, ValueError, TypeError) as exc:  # malformed headers raise these too
        raise Unauthorized(f"webhook refused: {exc or 'bad signature'}", code="bad_signature") from None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadMessage("the body is not valid JSON", code="bad_json") from None


async def receive(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/shop/events: one signed shop event."""
    services: Services = request.app.state.services
    room = await load_room(services.db, request.path_params["room_id"])
    body = await read_body(request, MAX_WEBHOOK_BYTES)
    payload = verify(shop_secret(services, room.id), body, dict(request.headers))
    webhook_id = request.headers["webhook-id"]
    if len(webhook_id) > WEBHOOK_ID_MAX_CHARS:
        raise InvalidInput(f"webhook-id is at most {WEBHOOK_ID_MAX_CHARS} characters")
    event = parse_event(payload)
    kind, data = event.kind, event.data
    event_id = f"shop:{room.id}:{webhook_id}"
    if await intents.seen(services.db, event_id):
        return JSONResponse({"ok": True, "duplicate": True, "type": kind})
    refs = parse_refs(data)
    money = parse_money(data)
    code, viewer_id, sku = refs.coupon_code, refs.viewer_id, refs.sku
    claim: Claim | None = None
    product_id: int | None = None
    discount_id: int | None = None
    async with services.db.session() as session:
        if code is not None:
            claim = (await session.exec(select(Claim).where(Claim.code == code.upper()))).first()
            if claim is None or claim.room_id != room.id:
                raise InvalidInput("no such coupon code in this room", code="unknown_coupon")
            viewer_id, discount_id = claim.viewer_id, claim.discount_id
            discount = await session.get(Discount, claim.discount_id)
            product_id = discount.product_id if discount is not None else None
        elif viewer_id is not None and await session.get(RoomViewer, (room.id, viewer_id)) is None:
            raise InvalidInput("no such viewer in this room", code="unknown_viewer")
        if product_id is None and sku is not None:
            product_id = (
                await session.exec(select(Product.id).where(Product.room_id == room.id, Product.sku == sku))
            ).first()
    who = await _attribution(services, room.id, refs.src, viewer_id, claim, product_id, discount_id)
    ordering = kind in orders.ORDER_EVENTS and refs.order_id is not None
    if ordering:
        assert refs.order_id is not None
        orders.check_currency(await orders.find(services.db, room.id, refs.order_id), money)
    fresh = await intents.record(
        services.db,
        room_id=room.id,
        viewer_id=viewer_id,
        kind=kind,
        source="shop",
        product_id=product_id,
        discount_id=discount_id,
        claim_id=claim.id if claim is not None else None,
        order_id=refs.order_id,
        ref=who.last_ref,
        data=data,
        event_id=event_id,
        board=services.engines.find(SalesBoard),
    )
    if fresh and ordering:
        assert refs.order_id is not None
        await orders.upsert(services.db, room.id, refs.order_id, kind, money, who, now_ms())
    late = claim is not None and kind in REDEEMING and claim.status in ("expired", "released")
    if fresh and claim is not None and kind in REDEEMING and not late:
        await _redeem(services, claim, record=kind != "coupon.redeemed")
    answer: dict[str, object] = {"ok": True, "duplicate": not fresh, "type": kind}
    if late:  # the hold had lapsed: its unit went back to stock (docs/shop-webhooks.md)
        answer["late"] = True
    return JSONResponse(answer)


async def _attribution(
    services: Services,
    room_id: str,
    src: str | None,
    viewer_id: str | None,
    claim: Claim | None,
    product_id: int | None,
    discount_id: int | None,
) -> orders.Attribution:
    """Last touch: the checkout link's ``lw_src`` if it is a code of this room, else the viewer's
    latest entry link, else the claim's; first touch: the viewer's first entry link, else the last."""
    attendance = await sources.viewer_refs(services.db, room_id, viewer_id)
    last = await sources.known_source(services.db, room_id, src)
    if last is None and attendance is not None:
        last = attendance.last_ref
    if last is None and claim is not None:
        last = claim.ref
    first = attendance.first_ref if attendance is not None and attendance.first_ref else last
    return orders.Attribution(
        viewer_id=viewer_id,
        product_id=product_id,
        discount_id=discount_id,
        claim_id=claim.id if claim is not None else None,
        message_id=attendance.last_message_id if attendance is not None else None,
        first_ref=first,
        last_ref=last,
    )


async def _redeem(services: Services, claim: Claim, *, record: bool) -> None:
    """A reserved claim becomes redeemed: its hold no longer lapses. An order that used the coupon
    also logs ``coupon.redeemed`` (once per claim) when the shop did not send that event itself."""
    t = now_ms()
    async with services.db.session() as session:
        result = await session.exec(
            update(Claim)
            .where(col(Claim.id) == claim.id, col(Claim.status) == "reserved")
            .values(status="redeemed", closed_ms=t)
        )
        await session.commit()
        discount = await session.get(Discount, claim.discount_id)
    if result.rowcount == 1 and discount is not None:
        claim.status, claim.closed_ms = "redeemed", t
        for hook in services.registry.claim_redeemed_hooks:  # the discounts tell viewer and hosts
            await hook(services, claim, discount)
        if record:
            await intents.record(
                services.db,
                room_id=claim.room_id,
                viewer_id=claim.viewer_id,
                kind="coupon.redeemed",
                product_id=discount.product_id,
                discount_id=discount.id,
                claim_id=claim.id,
                event_id=f"redeem:{claim.id}",
                board=services.engines.find(SalesBoard),
            )
