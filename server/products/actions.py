"""The shelf, the pinned product, and the purchase-intent signals of phones."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from urllib.parse import urlsplit

from sqlmodel import col, select

from server import netguard
from server.auth import Principal
from server.errors import Conflict, NotFound
from server.intents import log as intents
from server.intents.log import SalesBoard
from server.products import rules, wire
from server.products.events import PinChanged, ProductsChanged
from server.rooms.actions import load_room, room_products
from server.services import Services
from server.storage import Database, now_ms
from server.storage.models import Discount, Product, RoomSettings
from server.text import clean_id

MAX_PRODUCTS_PER_ROOM = 1000
# Shop hosts of one import looked up at once (each lookup holds a resolver thread).
SHOP_LOOKUPS_AT_ONCE = 8


async def load_product(db: Database, room_id: str, product_id: object) -> Product:
    """A product of the room that is on the shelf, or NotFound."""
    async with db.session() as session:
        product = await session.get(Product, clean_id(product_id, "product_id"))
    if product is None or product.room_id != room_id or product.archived:
        raise NotFound("no such product in this room")
    return product


async def _publish_shelf(services: Services, room_id: str) -> None:
    shelf = wire.shelf_shape(await room_products(services.db, room_id))
    await services.hub.publish(room_id, ProductsChanged(products=shelf))


async def check_shop_urls(services: Services, products: Sequence[rules.ProductFields]) -> None:
    """Refuse (422) shop links whose host is, or resolves to, a non-public address: the buy button
    sends phones there through this server's redirect (server/netguard.py). One lookup per host."""
    allow = netguard.allow_list(services.settings.outbound_allow)
    first: dict[str, tuple[int, str]] = {}
    for number, product in enumerate(products, start=1):
        if product.shop_url:
            first.setdefault((urlsplit(product.shop_url).hostname or "").lower(), (number, product.shop_url))
    gate = asyncio.Semaphore(SHOP_LOOKUPS_AT_ONCE)

    async def check(url: str) -> None:
        async with gate:
            await netguard.check_url(url, allow, what="shop_url")

    found = sorted(first.values())
    results = await asyncio.gather(*(check(url) for _, url in found), return_exceptions=True)
    for (number, _), result in zip(found, results, strict=True):
        if isinstance(result, netguard.Refused) and len(products) > 1:
            raise netguard.Refused(f"product {number}: {result.message}")
        if isinstance(result, BaseException):
            raise result


def _apply(product: Product, fields: rules.ProductFields) -> None:
    for key, value in vars(fields).items():
        setattr(product, key, value)


async def do_save(services: Services, principal: Principal, save: wire.SaveProduct) -> Product:
    """Add a product, or edit one (``product_id``)."""
    fields = save.fields
    await check_shop_urls(services, [fields])
    room_id = principal.room_id
    if save.product_id is not None:
        product = await load_product(services.db, room_id, save.product_id)
    else:
        if len(await room_products(services.db, room_id)) >= MAX_PRODUCTS_PER_ROOM:
            raise Conflict(f"a room holds at most {MAX_PRODUCTS_PER_ROOM} products")
        product = Product(room_id=room_id, name=fields.name, price_minor=0, created_ms=now_ms())
    _apply(product, fields)
    async with services.db.session() as session:
        session.add(product)
        await session.commit()
        await session.refresh(product)
    await _publish_shelf(services, room_id)
    return product


async def do_import(services: Services, room_id: str, body: bytes, content_type: str) -> wire.Imported:
    """Import a CSV or JSON list of products: a product with the SKU of one on the shelf updates it.
    All or nothing: one bad row and nothing is saved."""
    await load_room(services.db, room_id)
    rows = rules.parse_import(body, content_type)
    await check_shop_urls(services, rows)
    existing = await room_products(services.db, room_id)
    by_sku = {p.sku: p for p in existing if p.sku}
    added = sum(1 for r in rows if not (r.sku and r.sku in by_sku))
    if len(existing) + added > MAX_PRODUCTS_PER_ROOM:
        raise Conflict(f"a room holds at most {MAX_PRODUCTS_PER_ROOM} products")
    now = now_ms()
    async with services.db.session() as session:
        for fields in rows:
            product = by_sku.get(fields.sku) if fields.sku else None
            if product is None:
                product = Product(room_id=room_id, name=fields.name, price_minor=0, created_ms=now)
                if fields.sku:
                    by_sku[fields.sku] = product
            _apply(product, fields)
            session.add(product)
        await session.commit()
    await _publish_shelf(services, room_id)
    return wire.Imported(added=added, updated=len(rows) - added)


async def _running_discount(db: Database, product_id: int) -> bool:
    async with db.session() as session:
        found = (
            await session.exec(
                select(Discount.id).where(
                    Discount.product_id == product_id, col(Discount.status).in_(("scheduled", "live"))
                )
            )
        ).first()
    return found is not None


async def do_remove(services: Services, principal: Principal, product_id: int) -> None:
    """Take a product off the shelf (kept for the claims and events that name it)."""
    product = await load_product(services.db, principal.room_id, product_id)
    assert product.id is not None
    if await _running_discount(services.db, product.id):
        raise Conflict("stop the discount on this product first", code="bad_state")
    async with services.db.session() as session:
        product.archived = True
        session.add(product)
        settings = await session.get(RoomSettings, principal.room_id)
        unpin = settings is not None and settings.pinned_product_id == product.id
        if settings is not None and unpin:
            settings.pinned_product_id, settings.pinned_ms = None, None
            session.add(settings)
        await session.commit()
    await _publish_shelf(services, principal.room_id)
    if unpin:
        await services.hub.publish(principal.room_id, PinChanged(product_id=None, pinned_ms=None))


async def pinned(db: Database, room_id: str) -> wire.Pin:
    """The room's pinned product (or none)."""
    async with db.session() as session:
        settings = await session.get(RoomSettings, room_id)
    if settings is None:
        return wire.Pin(None, None)
    return wire.Pin(settings.pinned_product_id, settings.pinned_ms)


async def do_pin(services: Services, principal: Principal, product_id: int | None) -> wire.Pin:
    """Pin a product (a card on every phone and the big screen), or unpin with None."""
    if product_id is not None:
        await load_product(services.db, principal.room_id, product_id)
    pinned_ms = now_ms() if product_id is not None else None
    async with services.db.session() as session:
        settings = await session.get(RoomSettings, principal.room_id) or RoomSettings(
            room_id=principal.room_id
        )
        settings.pinned_product_id = product_id
        settings.pinned_ms = pinned_ms
        session.add(settings)
        await session.commit()
    pin = wire.Pin(settings.pinned_product_id, pinned_ms)
    await services.hub.publish(principal.room_id, PinChanged(**wire.pin_shape(pin)))
    return pin


async def do_intent(services: Services, principal: Principal, signal: wire.IntentSignal) -> None:
    """Record a phone's purchase-intent signal (a pinned card seen, details opened, back from checkout)."""
    assert principal.viewer_id is not None
    product = await load_product(services.db, principal.room_id, signal.product_id)
    if signal.discount_id is not None:
        async with services.db.session() as session:
            discount = await session.get(Discount, signal.discount_id)
        if discount is None or discount.room_id != principal.room_id or discount.product_id != product.id:
            raise NotFound("no such discount on this product")
    client_id = signal.client_id
    await intents.record(
        services.db,
        room_id=principal.room_id,
        viewer_id=principal.viewer_id,
        kind=signal.kind,
        product_id=product.id,
        discount_id=signal.discount_id,
        event_id=f"v:{principal.viewer_id}:{client_id}" if client_id else None,
        board=services.engines.find(SalesBoard),
    )
