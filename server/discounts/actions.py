"""Discounts: hosts launch, change and stop them; viewers claim a unit and give it back.

Each action parses its message into a typed command (``wire``), gathers the facts, lets the pure
``rules`` decide, writes, and publishes after the write. Claims themselves are served in batches by
the engine (``engine.Engine``).
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col, select

from server.auth import Principal
from server.discounts import rules, wire
from server.discounts.engine import HOST_CLAIMS, Engine, load_discount
from server.discounts.rules import Outcome, Standing
from server.errors import Conflict, NotFound
from server.services import Services
from server.storage import Database, now_ms
from server.storage.models import Claim, Discount, Follow, Item, Product, RoomViewer, Viewer

RECENT_DISCOUNTS = 20
MY_CLAIMS = 50


def _engine(services: Services) -> Engine:
    return services.engines.get(Engine)


# --- reads --------------------------------------------------------------------------------------


async def recent_discounts(db: Database, room_id: str) -> list[Discount]:
    async with db.session() as session:
        rows = await session.exec(
            select(Discount)
            .where(Discount.room_id == room_id)
            .order_by(col(Discount.id).desc())
            .limit(RECENT_DISCOUNTS)
        )
        return list(reversed(rows.all()))


async def my_claims(db: Database, room_id: str, viewer_id: str) -> list[wire.ClaimView]:
    async with db.session() as session:
        rows = (
            await session.exec(
                select(Claim, Product)
                .join(Discount, col(Discount.id) == col(Claim.discount_id))
                .join(Product, col(Product.id) == col(Discount.product_id))
                .where(Claim.room_id == room_id, Claim.viewer_id == viewer_id)
                .order_by(col(Claim.id).desc())
                .limit(MY_CLAIMS)
            )
        ).all()
    return [wire.ClaimView(c, p) for c, p in reversed(rows)]


async def recent_claims(db: Database, room_id: str) -> list[wire.HostClaim]:
    async with db.session() as session:
        rows = (
            await session.exec(
                select(Claim, Viewer.display_name, Discount.product_id)
                .join(Viewer, col(Viewer.id) == col(Claim.viewer_id))
                .join(Discount, col(Discount.id) == col(Claim.discount_id))
                .where(Claim.room_id == room_id)
                .order_by(col(Claim.id).desc())
                .limit(HOST_CLAIMS)
            )
        ).all()
    return [wire.HostClaim.of(c, name, product_id) for c, name, product_id in reversed(rows)]


# --- hosts --------------------------------------------------------------------------------------


async def do_launch(
    services: Services, principal: Principal, product: Product, launch: wire.Launch
) -> wire.DiscountView:
    """Start a discount on a product of the room (now, or after ``starts_in_secs``)."""
    t = now_ms()
    starts = t + launch.starts_in_secs * 1000
    d = Discount(
        room_id=principal.room_id,
        product_id=launch.product_id,
        price_minor=launch.price.price_minor,
        list_price_minor=product.price_minor,
        percent_off=launch.price.percent_off,
        currency=product.currency,
        quantity=launch.quantity,
        per_viewer_limit=launch.per_viewer_limit,
        audience=launch.audience,
        watch_minutes=launch.watch_minutes,
        hold_secs=launch.hold_secs,
        starts_ms=starts,
        ends_ms=starts + launch.duration_secs * 1000,
        status="scheduled" if launch.starts_in_secs else "live",
        created_ms=t,
    )
    async with services.db.session() as session:
        session.add(d)
        await session.commit()
        await session.refresh(d)
    return await _engine(services).publish_discount(d, t)


async def do_update(services: Services, d: Discount, change: wire.Change) -> wire.DiscountView:
    """Extend (or shorten) a discount, add stock, or change its price, live."""
    t = now_ms()
    engine = _engine(services)
    counts = await engine.stock.counts(d)
    rules.check_changeable("ended" if counts.stopped else d.status, counts.ends_ms, t)
    # Everything is checked before anything is written: a refused change changes nothing.
    end = (
        rules.new_end(counts.starts_ms, counts.ends_ms, change.extend_secs, t) if change.extend_secs else None
    )
    if change.price is not None:
        async with services.db.session() as session:
            await session.exec(
                update(Discount)
                .where(col(Discount.id) == d.id)
                .values(price_minor=change.price.price_minor, percent_off=change.price.percent_off)
            )
            await session.commit()
        d.price_minor, d.percent_off = change.price.price_minor, change.price.percent_off
    if end is not None:
        counts = await engine.stock.window(d, counts.starts_ms, end)
        d.ends_ms = end
    if change.add_stock:
        counts = await engine.stock.add(d, change.add_stock)
        d.quantity = counts.quantity
    engine.forget(d)
    engine.counts_changed(d, counts)
    return await engine.publish_discount(d, t)


async def do_stop(services: Services, principal: Principal, discount_id: int) -> wire.DiscountView:
    """End a discount now, for everyone."""
    d = await load_discount(services.db, principal.room_id, discount_id)
    t = now_ms()
    engine = _engine(services)
    counts = await engine.stock.counts(d)
    rules.check_changeable("ended" if counts.stopped else d.status, counts.ends_ms, t)
    await engine.stock.stop(d, t)
    d.status, d.end_reason, d.ended_ms = "ended", "stopped", t
    engine.forget(d)
    return await engine.publish_discount(d, t)


# --- viewers ------------------------------------------------------------------------------------


async def standing(db: Database, d: Discount, viewer_id: str) -> Standing:
    """The one fact about the viewer that the discount's audience asks about (none for everyone)."""
    fact = rules.fact_for(d.audience)
    if fact is None:
        return Standing()
    async with db.session() as session:
        if fact == "following":
            return Standing(following=await session.get(Follow, (d.room_id, viewer_id)) is not None)
        if fact == "joined_ms":
            seen = await session.get(RoomViewer, (d.room_id, viewer_id))
            return Standing(joined_ms=seen.joined_ms if seen is not None else None)
        asked = (
            await session.exec(
                select(Item.id).where(
                    Item.room_id == d.room_id, Item.viewer_id == viewer_id, Item.product_id == d.product_id
                )
            )
        ).first()
        return Standing(asked=asked is not None)


async def check_eligible(db: Database, d: Discount, viewer_id: str, t: int) -> None:
    """The discount's audience: everyone, watchers of N minutes, followers, or askers about the product."""
    rules.check_audience(d.audience, d.watch_minutes, await standing(db, d, viewer_id), t)


async def do_claim(
    services: Services, principal: Principal, discount_id: int, t_ms: int | None = None
) -> wire.ClaimView:
    """Reserve one unit for the viewer; the server's receipt time decides if it came in time."""
    assert principal.viewer_id is not None
    t = now_ms() if t_ms is None else t_ms
    engine = _engine(services)
    d = await engine.discount(principal.room_id, discount_id)
    await check_eligible(services.db, d, principal.viewer_id, t)
    result = await engine.claim(d, principal.viewer_id, t)
    if isinstance(result, Outcome):
        raise Conflict(rules.OUTCOME_MESSAGES[result], code=result.value)
    # Stored with its intent event (``discount.claim``) in the batch's transaction. The viewer's
    # other phones and tabs learn of the code too (this one has it in the ack, which does not wait
    # for them).
    return await engine.announce_claim(result, d, wait=False)


async def do_release(services: Services, principal: Principal, claim_id: int) -> wire.ClaimView:
    """A viewer gives a reserved unit back."""
    async with services.db.session() as session:
        claim = await session.get(Claim, claim_id)
    if claim is None or claim.room_id != principal.room_id or claim.viewer_id != principal.viewer_id:
        raise NotFound("no such claim of yours in this room")
    engine = _engine(services)
    closed = await engine.close_claim(claim, "released", now_ms())
    if closed is None:
        raise Conflict("this claim is no longer reserved (used, expired or given back)", code="bad_state")
    d = await load_discount(services.db, claim.room_id, claim.discount_id)
    return wire.ClaimView(closed, await engine.product_of(d.product_id))
