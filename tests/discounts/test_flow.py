"""Selling over real uvicorn: shelf, pin, launch, claim to sold out, changes, holds, follow, intents."""

from __future__ import annotations

from typing import Any

import httpx

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
