"""Shop links: only http(s) to public hosts, checked when saved (with DNS) and again, without DNS,
when the buy button redirects a phone there."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col

from server.storage.models import Product
from tests.helpers import Running, setup_room

PRODUCT = {"name": "Scarf", "price_minor": 19900, "stock": 5}


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/admin", "http://[::1]/", "http://localhost/", "http://169.254.169.254/"]
)
async def test_local_shop_url_is_refused_on_save(running: Running, url: str) -> None:
    """A host cannot make the buy button send phones to a local or metadata address."""
    _, host, _, _, _ = await setup_room(running, viewers=0)
    reply = await host.request("product.save", {**PRODUCT, "shop_url": url})
    assert reply["type"] == "error" and reply["data"]["code"] == "url_not_allowed", reply


async def test_import_with_a_local_shop_url_imports_nothing(running: Running) -> None:
    """One local shop link in an import: 422 naming its row, and nothing is imported."""
    room, _, _, _, _ = await setup_room(running, viewers=0)
    csv = "name,price,shop_url\nTea,10,https://shop.example/tea\nCup,5,http://127.0.0.1/cup\n"
    async with httpx.AsyncClient(base_url=running.base) as http:
        r = await http.post(
            f"/api/rooms/{room['id']}/products/import",
            content=csv.encode(),
            headers={"content-type": "text/csv", "authorization": f"Bearer {room['host_token']}"},
        )
    assert r.status_code == 422 and r.json()["error"]["code"] == "url_not_allowed"
    assert r.json()["error"]["message"].startswith("product 2: shop_url: 127.0.0.1 is a loopback address")
    from server.rooms.actions import room_products

    assert await room_products(running.app.state.services.db, room["id"]) == []


async def test_buy_redirects_only_to_allowed_links(running: Running) -> None:
    """A public shop link redirects; one stored before the check (pointing at loopback) is refused."""
    room, host, _, _, _ = await setup_room(running, viewers=0)
    ack = await host.request("product.save", {**PRODUCT, "shop_url": "https://shop.example/scarf"})
    product_id = ack["data"]["result"]["id"]
    async with httpx.AsyncClient(base_url=running.base) as http:
        r = await http.get(f"/r/{room['id']}/buy/{product_id}")
        assert r.status_code == 303 and r.headers["location"].startswith("https://shop.example/scarf")
        async with running.app.state.services.db.session() as session:
            await session.exec(
                update(Product).where(col(Product.id) == product_id).values(shop_url="http://127.1:6379/")
            )
            await session.commit()
        r = await http.get(f"/r/{room['id']}/buy/{product_id}")
    assert r.status_code == 422 and "location" not in r.headers
    assert r.json()["error"]["code"] == "url_not_allowed"
