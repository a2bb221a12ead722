"""Selling over real uvicorn: shelf, pin, launch, claim to sold out, changes, holds, follow, intents."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlmodel import select

from server.discounts.engine import Engine
from server.storage.models import IntentEvent
from tests.helpers import Client, Running, setup_room

PRODUCT = {
    "name": "羊绒围巾 Cashmere scarf",
    "price_minor": 19900,
    "currency": "CNY",
    "stock": 500,
    "sku": "SCARF-1",
    "shop_url": "https://shop.example/p/scarf?src=live",
}


async def _product(host: Client, **extra: Any) -> dict[str, Any]:
    ack = await host.request("product.save", {**PRODUCT, **extra})
    assert ack["type"] == "ack", ack
    result: dict[str, Any] = ack["data"]["result"]
    return result


async def _launch(host: Client, product_id: int, **extra: Any) -> dict[str, Any]:
    data = {"product_id": product_id, "percent_off": 30, "quantity": 2, "duration_secs": 60, **extra}
    ack = await host.request("discount.launch", data)
    assert ack["type"] == "ack", ack
    result: dict[str, Any] = ack["data"]["result"]
    return result


async def test_launch_claim_until_sold_out(running: Running) -> None:
    """Two units, three phones: two claims get codes and checkout links, the third is told sold out;
    every surface sees the counters and the sold-out state."""
    room, host, screen, phones, joined = await setup_room(running, viewers=3)
    product = await _product(host)
    shelf = await screen.recv_type("products")
    assert shelf["data"]["products"][0]["name"] == PRODUCT["name"]
    deal = await _launch(host, product["id"])
    assert deal["price_minor"] == 13930 and deal["status"] == "live" and deal["remaining"] == 2
    event = await screen.recv_type("discount")
    assert event["data"]["id"] == deal["id"]
    first = await phones[0].request("discount.claim", {"id": deal["id"]})
    claim = first["data"]["result"]
    assert claim["status"] == "reserved" and claim["code"].startswith("LW-")
    assert claim["checkout_url"].startswith("https://shop.example/p/scarf?src=live&coupon=LW-")
    second = await phones[1].request("discount.claim", {"id": deal["id"]})
    assert second["type"] == "ack"
    third = await phones[2].request("discount.claim", {"id": deal["id"]})
    assert third["type"] == "error" and third["data"]["code"] == "sold_out"
    while True:
        tick = await screen.recv_type("stock")
        counts = tick["data"]["counts"][str(deal["id"])]
        if counts["remaining"] == 0:
            break
    assert counts["status"] == "sold_out" and counts["claimed"] == 2
    claims = await host.recv_type("claims")
    assert {c["viewer_id"] for c in claims["data"]["claims"]} <= {j["viewer_id"] for j in joined}

    # Each granted claim was stored with its intent event (follow-up and the funnel read them).
    async with running.app.state.services.db.session() as session:
        events = (await session.exec(select(IntentEvent).where(IntentEvent.kind == "discount.claim"))).all()
    assert sorted((e.claim_id, e.viewer_id, e.product_id) for e in events) == sorted(
        (c["data"]["result"]["id"], j["viewer_id"], product["id"])
        for c, j in ((first, joined[0]), (second, joined[1]))
    )

    # After the sell-out, refusals change no figure: no further stock tick goes out for them.
    services = running.app.state.services
    engine = services.engines.get(Engine)
    await engine.flush()  # whatever the sell-out left pending
    published = services.metrics.registry.get_sample_value(
        "livewall_events_published_total", {"type": "stock"}
    )
    for phone in phones:
        refused = await phone.request("discount.claim", {"id": deal["id"]})
        assert refused["data"]["code"] in ("sold_out", "limit_reached")
    await engine.flush()
    assert (
        services.metrics.registry.get_sample_value("livewall_events_published_total", {"type": "stock"})
        == published
    )


async def test_limit_per_viewer_and_restock(running: Running) -> None:
    """A viewer may hold one unit; adding stock reopens a sold-out deal."""
    room, host, screen, (p1, p2), _ = await setup_room(running)
    product = await _product(host)
    deal = await _launch(host, product["id"], quantity=1)
    assert (await p1.request("discount.claim", {"id": deal["id"]}))["type"] == "ack"
    again = await p1.request("discount.claim", {"id": deal["id"]})
    assert again["data"]["code"] == "sold_out"
    more = await host.request("discount.update", {"id": deal["id"], "add_stock": 5})
    assert more["data"]["result"]["remaining"] == 5 and more["data"]["result"]["status"] == "live"
    again = await p1.request("discount.claim", {"id": deal["id"]})
    assert again["data"]["code"] == "limit_reached"
    assert (await p2.request("discount.claim", {"id": deal["id"]}))["type"] == "ack"


async def test_stop_refuses_claims(running: Running) -> None:
    """After the host stops a discount, claims are refused with discount_ended."""
    room, host, screen, (p1, _), _ = await setup_room(running)
    product = await _product(host)
    deal = await _launch(host, product["id"])
    stopped = await host.request("discount.stop", {"id": deal["id"]})
    assert stopped["data"]["result"]["status"] == "ended"
    refused = await p1.request("discount.claim", {"id": deal["id"]})
    assert refused["data"]["code"] == "discount_ended"


async def test_followers_only(running: Running) -> None:
    """A followers-only deal refuses a viewer until they follow."""
    room, host, screen, (p1, _), _ = await setup_room(running)
    product = await _product(host)
    deal = await _launch(host, product["id"], audience="followers")
    refused = await p1.request("discount.claim", {"id": deal["id"]})
    assert refused["data"]["code"] == "not_eligible" and "follow" in refused["data"]["message"]
    assert (await p1.request("room.follow", {"on": True}))["data"]["result"] == {"following": True}
    assert (await p1.request("discount.claim", {"id": deal["id"]}))["type"] == "ack"


async def test_buy_link_records_and_redirects(running: Running) -> None:
    """The buy link records a click and redirects to the shop with the viewer's coupon."""
    room, host, screen, (p1, _), joined = await setup_room(running)
    product = await _product(host)
    deal = await _launch(host, product["id"])
    claim = (await p1.request("discount.claim", {"id": deal["id"]}))["data"]["result"]
    async with httpx.AsyncClient(base_url=running.base) as http:
        await http.post(f"/api/rooms/{room['id']}/join", json={"token": joined[0]["token"]})
        r = await http.get(f"/r/{room['id']}/buy/{product['id']}")
    assert r.status_code == 303
    assert f"coupon={claim['code']}" in r.headers["location"]
    sales = await host.recv_type("sales", timeout=5)
    assert sales["data"]["products"][str(product["id"])]["clicks"] == 1


def _services(running: Running) -> Any:
    return running.app.state.services


async def _direct(client: Client, kind: str) -> dict[str, Any]:
    while True:
        msg = await client.recv()
        if msg["type"] == kind and "seq" not in msg:
            data: dict[str, Any] = msg["data"]
            return data


async def test_one_millisecond_late_is_refused(running: Running) -> None:
    """The server's receipt time decides: a claim at the end instant is refused, one just before is not."""
    from server.auth import Principal, Role
    from server.discounts import wire
    from server.discounts.actions import do_claim
    from server.errors import Conflict

    room, host, _, _, joined = await setup_room(running)
    deal = await _launch(host, (await _product(host))["id"])
    services = _services(running)
    late = Principal(Role.VIEWER, room["id"], joined[0]["viewer_id"])
    with pytest.raises(Conflict) as refused:
        await do_claim(services, late, deal["id"], t_ms=deal["ends_ms"])
    assert refused.value.code == "discount_ended" and "ended" in refused.value.message
    on_time = Principal(Role.VIEWER, room["id"], joined[1]["viewer_id"])
    claim = wire.claim_view_shape(await do_claim(services, on_time, deal["id"], t_ms=deal["ends_ms"] - 1))
    assert claim["status"] == "reserved"


async def test_scheduled_start_and_timed_end(running: Running) -> None:
    """A deal that starts in a minute refuses claims (not_started), goes live at its start and ends at
    its end, announced to every surface."""
    room, host, screen, (p1, _), _ = await setup_room(running)
    deal = await _launch(host, (await _product(host))["id"], starts_in_secs=60)
    assert deal["status"] == "scheduled"
    early = await p1.request("discount.claim", {"id": deal["id"]})
    assert early["data"]["code"] == "not_started"
    engine = _services(running).engines.get(Engine)
    await engine.tick_clock(deal["starts_ms"])
    live = await screen.recv_type("discount")
    while live["data"]["status"] != "live":
        live = await screen.recv_type("discount")
    await engine.tick_clock(deal["ends_ms"])
    ended = await screen.recv_type("discount")
    assert ended["data"]["status"] == "ended" and ended["data"]["end_reason"] == "time"


async def test_lapsed_hold_returns_to_stock(running: Running) -> None:
    """A claim not used within its hold expires: the unit returns, the viewer and the hosts are told."""
    room, host, screen, (p1, p2), _ = await setup_room(running)
    deal = await _launch(host, (await _product(host))["id"], quantity=1, hold_secs=30)
    claim = (await p1.request("discount.claim", {"id": deal["id"]}))["data"]["result"]
    assert (await p2.request("discount.claim", {"id": deal["id"]}))["data"]["code"] == "sold_out"
    await _services(running).engines.get(Engine).tick_clock(claim["expires_ms"])
    expired = await _direct(p1, "claim")
    while expired["status"] != "expired":  # (the new claim itself came as a frame first)
        expired = await _direct(p1, "claim")
    assert expired["id"] == claim["id"] and expired["status"] == "expired" and expired["checkout_url"] is None
    while True:
        counts = (await screen.recv_type("stock"))["data"]["counts"][str(deal["id"])]
        if counts["remaining"] == 1:
            break
    assert counts["status"] == "live"
    assert (await p2.request("discount.claim", {"id": deal["id"]}))["type"] == "ack"


async def test_release_gives_the_unit_back_once(running: Running) -> None:
    """A viewer may give a reserved unit back, once; another viewer's claim is not theirs to release."""
    room, host, _, (p1, p2), _ = await setup_room(running)
    deal = await _launch(host, (await _product(host))["id"], quantity=1)
    claim = (await p1.request("discount.claim", {"id": deal["id"]}))["data"]["result"]
    assert (await p2.request("discount.release", {"id": claim["id"]}))["data"]["code"] == "not_found"
    released = await p1.request("discount.release", {"id": claim["id"]})
    assert released["data"]["result"]["status"] == "released"
    assert (await p1.request("discount.release", {"id": claim["id"]}))["data"]["code"] == "bad_state"
    assert (await p2.request("discount.claim", {"id": deal["id"]}))["type"] == "ack"


async def test_watchers_and_askers(running: Running) -> None:
    """Watch-time deals count from the viewer's first join; asker deals need a question on the product."""
    from sqlalchemy import update

    from server.storage.models import RoomViewer

    room, host, _, (p1, p2), joined = await setup_room(running)
    product = await _product(host)
    watch = await _launch(host, product["id"], audience="watchers", watch_minutes=5)
    refused = await p1.request("discount.claim", {"id": watch["id"]})
    assert refused["data"]["code"] == "not_eligible" and "5 minutes" in refused["data"]["message"]
    async with _services(running).db.session() as session:
        await session.exec(
            update(RoomViewer)
            .where(RoomViewer.viewer_id == joined[0]["viewer_id"])  # type: ignore[arg-type]
            .values(joined_ms=RoomViewer.joined_ms - 6 * 60_000)
        )
        await session.commit()
    assert (await p1.request("discount.claim", {"id": watch["id"]}))["type"] == "ack"
    askers = await _launch(host, product["id"], audience="askers")
    assert (await p2.request("discount.claim", {"id": askers["id"]}))["data"]["code"] == "not_eligible"
    asked = await p2.request(
        "item.submit", {"kind": "question", "text": "有S码吗?", "product_id": product["id"]}
    )
    assert asked["type"] == "ack"
    assert (await p2.request("discount.claim", {"id": askers["id"]}))["type"] == "ack"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"id": 999_999}, "not_found"),
        ({"id": "1"}, "invalid"),
        ({"id": True}, "invalid"),
        ({}, "invalid"),
    ],
)
async def test_claims_for_unknown_discounts(running: Running, data: dict[str, Any], code: str) -> None:
    """Claims naming no discount of this room get a clear error."""
    _, _, _, (p1, _), _ = await setup_room(running)
    reply = await p1.request("discount.claim", data)
    assert reply["type"] == "error" and reply["data"]["code"] == code


async def test_roles_and_rooms_are_kept_apart(running: Running) -> None:
    """Viewers cannot launch, hosts and screens cannot claim, and a discount of another room is unknown."""
    room, host, screen, (p1, _), _ = await setup_room(running)
    product = await _product(host)
    launch = {"product_id": product["id"], "percent_off": 10, "quantity": 1, "duration_secs": 60}
    assert (await p1.request("discount.launch", launch))["data"]["code"] == "forbidden"
    deal = await _launch(host, product["id"])
    assert (await host.request("discount.claim", {"id": deal["id"]}))["data"]["code"] == "forbidden"
    assert (await screen.request("discount.claim", {"id": deal["id"]}))["data"]["code"] == "forbidden"
    other, other_host, _, (stranger, _), _ = await setup_room(running)
    assert (await stranger.request("discount.claim", {"id": deal["id"]}))["data"]["code"] == "not_found"
    other_launch = await other_host.request("discount.launch", launch)
    assert other_launch["data"]["code"] == "not_found"  # the product belongs to the first room


async def test_bad_changes_change_nothing(running: Running) -> None:
    """Refused launches and updates leave the discount as it was; an ended discount cannot be changed."""
    room, host, _, (p1, _), _ = await setup_room(running)
    product = await _product(host)
    for bad in ({"quantity": -1}, {"percent_off": 0}, {"price_minor": 10**7, "percent_off": None}):
        reply = await host.request(
            "discount.launch", {"product_id": product["id"], "percent_off": 10, "quantity": 5,
                                "duration_secs": 60, **bad},
        )  # fmt: skip
        assert reply["data"]["code"] == "invalid", reply
    deal = await _launch(host, product["id"], quantity=3)
    for bad in ({"add_stock": 0}, {"add_stock": -3}, {"extend_secs": -3600}, {"percent_off": 150}, {}):
        reply = await host.request("discount.update", {"id": deal["id"], **bad})
        assert reply["data"]["code"] == "invalid", (bad, reply)
    assert (await p1.request("discount.claim", {"id": deal["id"]}))["type"] == "ack"
    await host.request("discount.stop", {"id": deal["id"]})
    again = await host.request("discount.update", {"id": deal["id"], "add_stock": 5})
    assert again["data"]["code"] == "bad_state"
    assert (await host.request("discount.stop", {"id": deal["id"]}))["data"]["code"] == "bad_state"
    from server.discounts.engine import load_discount

    stored = await load_discount(_services(running).db, room["id"], deal["id"])
    counts = await _services(running).engines.get(Engine).stock.counts(stored)
    assert (counts.quantity, counts.claimed) == (3, 1)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"shop_url": "javascript:alert(1)"}, "invalid"),
        ({"image_url": "data:image/png;base64,AAAA"}, "invalid"),
        ({"currency": "ABC"}, "invalid"),
        ({"price_minor": -1}, "invalid"),
        ({"price_minor": 10**11}, "invalid"),
        ({"stock": -2}, "invalid"),
        ({"name": "  "}, "empty"),
        ({"name": "x" * 201}, "too_long"),
    ],
)
async def test_bad_products_are_refused(running: Running, change: dict[str, Any], code: str) -> None:
    """Products with unsafe links, unknown currencies, negative or absurd numbers are refused."""
    _, host, _, _, _ = await setup_room(running, viewers=0)
    reply = await host.request("product.save", {**PRODUCT, **change})
    assert reply["type"] == "error" and reply["data"]["code"] == code, reply


async def test_shelf_edit_remove_and_pin(running: Running) -> None:
    """Editing keeps the id, a product under a running deal cannot be removed, removing unpins."""
    _, host, screen, _, _ = await setup_room(running, viewers=0)
    product = await _product(host)
    edited = (await host.request("product.save", {**PRODUCT, "id": product["id"], "price_minor": 100}))[
        "data"
    ]
    assert edited["result"]["id"] == product["id"] and edited["result"]["price_minor"] == 100
    assert (await host.request("product.pin", {"id": product["id"]}))["type"] == "ack"
    deal = await _launch(host, product["id"])
    assert (await host.request("product.remove", {"id": product["id"]}))["data"]["code"] == "bad_state"
    await host.request("discount.stop", {"id": deal["id"]})
    assert (await host.request("product.remove", {"id": product["id"]}))["type"] == "ack"
    pinned = await screen.recv_type("pinned")
    while pinned["data"]["product_id"] is not None:
        pinned = await screen.recv_type("pinned")
    assert (await host.request("product.pin", {"id": product["id"]}))["data"]["code"] == "not_found"


async def test_intents_are_validated_and_idempotent(running: Running) -> None:
    """Intent signals need a known kind and product; a retried one (same id) is stored once."""
    from sqlalchemy import func
    from sqlmodel import select

    from server.storage.models import IntentEvent

    _, host, _, (p1, _), _ = await setup_room(running)
    product = await _product(host)
    assert (await p1.request("intent", {"kind": "product.hack", "product_id": product["id"]}))["data"][
        "code"
    ] == "invalid"
    assert (await p1.request("intent", {"kind": "product.view", "product_id": 999}))["data"][
        "code"
    ] == "not_found"
    for _ in range(3):
        reply = await p1.request(
            "intent", {"kind": "product.view", "product_id": product["id"], "id": "pin-1"}
        )
        assert reply["type"] == "ack"
    async with _services(running).db.session() as session:
        views = (
            await session.exec(
                select(func.count()).select_from(IntentEvent).where(IntentEvent.kind == "product.view")
            )
        ).one()
    assert views == 1


async def test_a_claim_reaches_the_viewers_other_devices(running: Running) -> None:
    """A second phone of the same viewer hears of a new claim at once, and the buy link ignores prefetches."""
    room, host, _, (p1, _), joined = await setup_room(running)
    other = await Client.connect(running.ws, "viewer", room["id"], {"token": joined[0]["token"]})
    product = await _product(host)
    deal = await _launch(host, product["id"])
    claim = (await p1.request("discount.claim", {"id": deal["id"]}))["data"]["result"]
    told = await _direct(other, "claim")
    assert told["code"] == claim["code"] and told["status"] == "reserved"
    bad = await p1.request(
        "intent", {"kind": "product.view", "product_id": product["id"], "discount_id": 999}
    )
    assert bad["data"]["code"] == "not_found"
    cookies = {"lw_viewer": joined[0]["token"]}
    async with httpx.AsyncClient(base_url=running.base, cookies=cookies) as http:
        r = await http.get(f"/r/{room['id']}/buy/{product['id']}", headers={"sec-purpose": "prefetch"})
    assert r.status_code == 303 and claim["code"] in r.headers["location"]
    from sqlalchemy import func
    from sqlmodel import select

    from server.storage.models import IntentEvent

    async with _services(running).db.session() as session:
        clicks = (
            await session.exec(
                select(func.count()).select_from(IntentEvent).where(IntentEvent.kind == "product.buy")
            )
        ).one()
    assert clicks == 0


async def test_a_refused_update_changes_nothing_and_odd_ids_are_invalid(running: Running) -> None:
    """A price change with an impossible end is refused whole; ids beyond any database's range and
    odd digits in a buy link are clear errors, not server faults."""
    room, host, _, (p1, _), _ = await setup_room(running)
    product = await _product(host)
    deal = await _launch(host, product["id"])
    bad = await host.request("discount.update", {"id": deal["id"], "price_minor": 100, "extend_secs": -3600})
    assert bad["data"]["code"] == "invalid"
    claim = (await p1.request("discount.claim", {"id": deal["id"]}))["data"]["result"]
    assert claim["price_minor"] == deal["price_minor"]
    huge = await p1.request("discount.claim", {"id": 2**63})
    assert huge["data"]["code"] == "invalid"
    async with httpx.AsyncClient(base_url=running.base) as http:
        for path in ("²", "99999999999999999999"):
            r = await http.get(f"/r/{room['id']}/buy/{path}")
            assert r.status_code in (404, 422), (path, r.status_code)
