"""Source codes carried from the scan to the payment: attendance, intents, claims, the checkout link
and the shop's orders, with amounts, refunds, retries and events out of order (docs/revenue.md)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlmodel import select

from server.storage.models import Claim, IntentEvent
from tests.helpers import Client, Running, create_room
from tests.sources.support import attendance, orders, services_of, shop, source

PRODUCT = {"name": "Scarf", "price_minor": 19900, "currency": "CNY", "stock": 50, "sku": "SCARF-1",
           "shop_url": "https://shop.example/p/scarf?src=live"}  # fmt: skip


async def _join(running: Running, room_id: str, src: str | None, token: str | None = None) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=running.base) as http:
        r = await http.post(f"/api/rooms/{room_id}/join", json={"name": "Mei", "src": src, "token": token})
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def _shelf_and_deal(running: Running, room: dict[str, str]) -> tuple[Client, int, int]:
    host = await Client.connect(running.ws, "host", room["id"], {"token": room["host_token"], "name": "Ann"})
    product = (await host.request("product.save", PRODUCT))["data"]["result"]
    deal = await host.request(
        "discount.launch",
        {"product_id": product["id"], "percent_off": 30, "quantity": 5, "duration_secs": 60},
    )
    return host, product["id"], deal["data"]["result"]["id"]


async def test_the_code_travels_from_the_scan_to_the_paid_order(running: Running) -> None:
    """Scan -> join -> intent -> claim -> checkout link (lw_src) -> webhook order with amount,
    currency, first and last touch, product, discount and claim."""
    room = await create_room(running)
    poster = await source(running, room["id"], "POSTER1")
    group = await source(running, room["id"], "GROUPA1")
    joined = await _join(running, room["id"], poster)
    seen = await attendance(running, room["id"], joined["viewer_id"])
    assert (seen.first_ref, seen.last_ref) == (poster, poster)
    await _join(running, room["id"], group, joined["token"])  # later, the WeChat group's link
    seen = await attendance(running, room["id"], joined["viewer_id"])
    assert (seen.first_ref, seen.last_ref) == (poster, group)

    host, product_id, deal_id = await _shelf_and_deal(running, room)
    phone = await Client.connect(running.ws, "viewer", room["id"], {"token": joined["token"]})
    ack = await phone.request("intent", {"kind": "product.details", "product_id": product_id, "id": "i1"})
    assert ack["type"] == "ack", ack
    claim = (await phone.request("discount.claim", {"id": deal_id}))["data"]["result"]
    query = parse_qs(urlsplit(claim["checkout_url"]).query)
    assert query["lw_ref"] == [joined["viewer_id"]] and query["lw_src"] == [group]
    async with httpx.AsyncClient(base_url=running.base, cookies={"lw_viewer": ""}) as http:
        await http.post(f"/api/rooms/{room['id']}/join", json={"token": joined["token"]})
        buy = await http.get(f"/r/{room['id']}/buy/{product_id}")
    assert buy.status_code == 303 and f"lw_src={group}" in buy.headers["location"]
    async with services_of(running).db.session() as session:
        events = (await session.exec(select(IntentEvent).where(IntentEvent.room_id == room["id"]))).all()
        stored = await session.get(Claim, claim["id"])
    assert {e.kind: e.ref for e in events} == {
        "product.details": group, "discount.claim": group, "product.buy": group,
    }  # fmt: skip
    assert stored is not None and stored.ref == group

    paid = await shop(running, room["id"], "order.paid",
                      {"order_id": "SO-1", "coupon_code": claim["code"], "lw_src": group,
                       "amount_minor": 13930, "currency": "cny"})  # fmt: skip
    assert paid.status_code == 200, paid.text
    (order,) = await orders(running, room["id"])
    assert (order.status, order.amount_minor, order.currency, order.refunded_minor) == (
        "paid",
        13930,
        "CNY",
        0,
    )
    assert (order.first_ref, order.last_ref) == (poster, group)
    assert (order.viewer_id, order.product_id, order.discount_id, order.claim_id) == (
        joined["viewer_id"], product_id, deal_id, claim["id"],
    )  # fmt: skip
    assert order.paid_ms is not None and order.placed_ms is not None and order.draw_id is None
    async with services_of(running).db.session() as session:
        shop_event = (await session.exec(select(IntentEvent).where(IntentEvent.kind == "order.paid"))).one()
    assert shop_event.ref == group


async def test_unknown_or_archived_codes_are_ignored(running: Running) -> None:
    """A made-up code, another room's code or an archived one joins as an ordinary visit."""
    room, other = await create_room(running), await create_room(running)
    theirs = await source(running, other["id"], "THEIRS1")
    old = await source(running, room["id"], "OLDCODE", archived=True)
    for src in ("NOPE", theirs, old, "<script>", 7):
        joined = await _join(running, room["id"], src)  # type: ignore[arg-type]
        seen = await attendance(running, room["id"], joined["viewer_id"])
        assert (seen.first_ref, seen.last_ref) == (None, None)
    async with httpx.AsyncClient(base_url=running.base) as http:
        page = await http.get(f"/r/{room['id']}?src=NOPE")
    assert page.status_code == 200


async def test_the_phone_page_records_a_returning_viewers_code(running: Running) -> None:
    """A returning phone opening /r/{room}?src=CODE counts the code as its latest touch."""
    room = await create_room(running)
    code = await source(running, room["id"], "KOL0001")
    joined = await _join(running, room["id"], None)
    async with httpx.AsyncClient(base_url=running.base) as http:
        await http.post(f"/api/rooms/{room['id']}/join", json={"token": joined["token"]})
        page = await http.get(f"/r/{room['id']}?src={code}")
        qr = await http.get(f"/r/{room['id']}/qr.svg?src={code}")
    assert page.status_code == 200 and qr.status_code == 200 and qr.text.startswith("<svg")
    seen = await attendance(running, room["id"], joined["viewer_id"])
    assert (seen.first_ref, seen.last_ref) == (code, code)


async def _viewer(running: Running, src: str | None = None) -> tuple[str, str]:
    room = await create_room(running)
    if src is not None:
        await source(running, room["id"], src)
    joined = await _join(running, room["id"], src)
    return room["id"], joined["viewer_id"]


async def test_paid_before_placed_and_retries_end_in_the_right_state(running: Running) -> None:
    """Out of order (paid, then placed) the order stays paid with the paid amount; a retried delivery
    (same webhook-id) changes nothing; a new delivery of the same event changes nothing either."""
    room_id, viewer = await _viewer(running, "WEB0001")
    order = {"order_id": "SO-2", "viewer_id": viewer, "currency": "USD"}
    assert (
        await shop(running, room_id, "order.paid", {**order, "amount_minor": 2500}, "m1")
    ).status_code == 200
    assert (
        await shop(running, room_id, "order.placed", {**order, "amount_minor": 2600}, "m2")
    ).status_code == 200
    again = await shop(running, room_id, "order.paid", {**order, "amount_minor": 2500}, "m1")
    assert again.json()["duplicate"] is True
    await shop(running, room_id, "order.paid", {**order, "amount_minor": 2500}, "m3")
    (row,) = await orders(running, room_id)
    assert (row.status, row.amount_minor, row.currency, row.viewer_id) == ("paid", 2500, "USD", viewer)
    assert (row.first_ref, row.last_ref) == ("WEB0001", "WEB0001")  # from the viewer's attendance
    assert row.placed_ms is not None and row.paid_ms is not None and row.placed_ms <= row.paid_ms


async def test_refunds_in_part_then_in_full(running: Running) -> None:
    """order.refunded keeps the largest total refunded heard; without a figure, the whole amount;
    a paid event arriving after the refund does not undo it."""
    room_id, viewer = await _viewer(running)
    order = {"order_id": "SO-3", "viewer_id": viewer, "currency": "CNY"}
    await shop(running, room_id, "order.paid", {**order, "amount_minor": 10000})
    await shop(running, room_id, "order.refunded", {**order, "refunded_minor": 3000})
    (row,) = await orders(running, room_id)
    assert (row.status, row.refunded_minor, row.amount_minor) == ("refunded", 3000, 10000)
    await shop(running, room_id, "order.refunded", {"order_id": "SO-3", "viewer_id": viewer})
    await shop(running, room_id, "order.paid", {**order, "amount_minor": 10000})
    (row,) = await orders(running, room_id)
    assert (row.status, row.refunded_minor) == ("refunded", 10000) and row.refunded_ms is not None
    await shop(running, room_id, "order.cancelled", {"order_id": "SO-4", "viewer_id": viewer})
    cancelled = [o for o in await orders(running, room_id) if o.order_id == "SO-4"]
    assert cancelled[0].status == "cancelled" and cancelled[0].amount_minor is None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"amount_minor": -1, "currency": "CNY"}, "data.amount_minor"),
        ({"amount_minor": 12.5, "currency": "CNY"}, "data.amount_minor"),
        ({"amount_minor": "100", "currency": "CNY"}, "data.amount_minor"),
        ({"amount_minor": True, "currency": "CNY"}, "data.amount_minor"),
        ({"amount_minor": 100, "currency": "RMB1"}, "data.currency"),
        ({"amount_minor": 100, "currency": "¥¥¥"}, "data.currency"),
        ({"amount_minor": 100}, "data.currency"),
        ({"refunded_minor": -5, "currency": "CNY"}, "data.refunded_minor"),
    ],
)
async def test_bad_amounts_are_refused_and_nothing_is_stored(
    running: Running, data: dict[str, Any], field: str
) -> None:
    """A bad amount or currency: 422 naming the field, no event and no order stored."""
    room_id, viewer = await _viewer(running)
    r = await shop(running, room_id, "order.paid", {"order_id": "SO-5", "viewer_id": viewer, **data})
    assert r.status_code == 422 and field in r.json()["error"]["message"]
    assert await orders(running, room_id) == []
    async with services_of(running).db.session() as session:
        assert (await session.exec(select(IntentEvent).where(IntentEvent.source == "shop"))).all() == []


async def test_another_currency_for_the_same_order_is_refused(running: Running) -> None:
    """An order has one currency: an event naming another is refused with 422 and stores nothing."""
    room_id, viewer = await _viewer(running)
    order = {"order_id": "SO-6", "viewer_id": viewer, "amount_minor": 5}
    await shop(running, room_id, "order.placed", {**order, "currency": "CNY"})
    r = await shop(running, room_id, "order.paid", {**order, "currency": "USD"})
    assert r.status_code == 422 and "data.currency" in r.json()["error"]["message"]
    (row,) = await orders(running, room_id)
    assert (row.status, row.currency) == ("placed", "CNY")
