"""HTTP routes of selling: the catalog import, the tracked buy link, and the shop's webhook."""

from __future__ import annotations

from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from server import netguard
from server.accounts.audit import audit_http
from server.auth import Scope
from server.errors import Conflict
from server.httputil import read_body
from server.intents import log as intents
from server.intents.log import SalesBoard
from server.intents.webhook import receive
from server.products import wire
from server.products.actions import do_import, load_product
from server.products.rules import checkout_url
from server.rooms import sources
from server.rooms.identity import require_host, viewer_from_cookie
from server.services import Services
from server.storage.models import Claim, Discount

MAX_IMPORT_BYTES = 512 * 1024  # 500 products with long descriptions


async def import_products(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/products/import (host): a CSV or JSON list of products."""
    services: Services = request.app.state.services
    principal = await require_host(
        request, Scope.PRODUCTS, cookie=True
    )  # on the console's cookie: same-origin only
    body = await read_body(request, MAX_IMPORT_BYTES)
    result = await do_import(services, principal.room_id, body, request.headers.get("content-type", ""))
    audit_http(services, principal, "products.import", "products", wire.imported_shape(result))
    return JSONResponse(wire.imported_shape(result))


async def buy(request: Request) -> Response:
    """GET /r/{room}/buy/{product}: record the click, then go to the shop (with the viewer's coupon)."""
    services: Services = request.app.state.services
    room_id = request.path_params["room_id"]
    raw = request.path_params["product_id"]
    product = await load_product(services.db, room_id, int(raw) if raw.isascii() and raw.isdigit() else raw)
    if not product.shop_url:
        raise Conflict("this product has no shop link yet")
    viewer_id = viewer_from_cookie(services, request)
    # A browser's prefetch or a link preview is not a click.
    prefetch = "prefetch" in (request.headers.get("sec-purpose", "") + request.headers.get("purpose", ""))
    code = None
    if viewer_id is not None:
        async with services.db.session() as session:
            code = (
                await session.exec(
                    select(Claim.code)
                    .join(Discount, col(Discount.id) == col(Claim.discount_id))
                    .where(
                        Claim.viewer_id == viewer_id,
                        Claim.room_id == room_id,
                        Discount.product_id == product.id,
                        col(Claim.status).in_(("reserved", "redeemed")),
                    )
                    .order_by(col(Claim.id).desc())
                )
            ).first()
    if viewer_id is not None and not prefetch:
        await intents.record(
            services.db,
            room_id=room_id,
            viewer_id=viewer_id,
            kind="product.buy",
            product_id=product.id,
            board=services.engines.find(SalesBoard),
        )
    src = await sources.last_ref(services.db, room_id, viewer_id)
    url = checkout_url(product.shop_url, code, viewer_id, src)
    assert url is not None
    # Its host's addresses were checked when the link was saved; here only what needs no DNS (a
    # link saved before that check, a local name). The phone resolves the name itself: what this
    # server's resolver answers now would prove nothing about where the phone goes.
    netguard.check_shape(url, netguard.allow_list(services.settings.outbound_allow), what="shop_url")
    return RedirectResponse(url, status_code=303, headers={"cache-control": "no-store"})


routes = [
    Route("/api/rooms/{room_id}/products/import", import_products, methods=["POST"]),
    Route("/api/rooms/{room_id}/shop/events", receive, methods=["POST"]),
    Route("/r/{room_id}/buy/{product_id}", buy, methods=["GET"]),
]
