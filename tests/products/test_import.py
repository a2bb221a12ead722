"""Importing the shelf over HTTP: CSV (Excel's UTF-8 with BOM, Chinese, major-unit prices) and JSON."""

from __future__ import annotations

import httpx

from tests.helpers import Running, setup_room

CSV = (
    "\ufeffname,price,currency,stock,sku,shop_url,description\n"
    '真丝睡衣 Silk pyjamas,399.00,CNY,120,PJ-1,https://shop.example/pj,"柔软, soft"\n'
    "Matcha set,2500,JPY,30,MT-1,,\n"
)


async def _import(
    running: Running, room: dict[str, str], body: bytes | str, ctype: str, **kw: str
) -> httpx.Response:
    headers = {"content-type": ctype, "authorization": f"Bearer {room['host_token']}", **kw}
    async with httpx.AsyncClient(base_url=running.base, verify=False) as http:
        return await http.post(f"/api/rooms/{room['id']}/products/import", content=body, headers=headers)


async def test_csv_then_json_updates_by_sku(running: Running) -> None:
    """A CSV adds products (prices to minor units per currency); a JSON import with a known SKU updates it;
    every surface gets the new shelf."""
    room, host, screen, _, _ = await setup_room(running, viewers=0)
    r = await _import(running, room, CSV.encode(), "text/csv")
    assert r.status_code == 200 and r.json() == {"added": 2, "updated": 0}
    shelf = (await screen.recv_type("products"))["data"]["products"]
    assert [(p["name"], p["price_minor"], p["currency"]) for p in shelf] == [
        ("真丝睡衣 Silk pyjamas", 39900, "CNY"), ("Matcha set", 2500, "JPY"),
    ]  # fmt: skip
    assert shelf[0]["description"] == "柔软, soft"
    update = b'{"products": [{"name": "Silk pyjamas v2", "price_minor": 35900, "sku": "PJ-1"}]}'
    r = await _import(running, room, update, "application/json")
    assert r.json() == {"added": 0, "updated": 1}
    shelf = (await screen.recv_type("products"))["data"]["products"]
    assert len(shelf) == 2 and shelf[0]["name"] == "Silk pyjamas v2"


async def test_a_bad_row_imports_nothing(running: Running) -> None:
    """One bad row: 422 naming the row, and the shelf is untouched."""
    room, host, _, _, _ = await setup_room(running, viewers=0)
    bad = CSV + "Broken,12.345,CNY,1,,,\n"
    r = await _import(running, room, bad.encode(), "text/csv")
    assert r.status_code == 422 and r.json()["error"]["message"].startswith("product 3: price 12.345")
    for body, ctype, status in [
        (b"name;price\nx;1\n", "text/csv", 422),
        (b"[1, 2]", "application/json", 422),
        (b"{oops", "application/json", 400),
        (b"x", "application/pdf", 422),
        ("\u00ff".encode("latin-1"), "text/csv", 422),
        (b"[" + b'{"name": "x", "price_minor": 1},' * 501 + b"{}]", "application/json", 422),
        (b"a" * (600 * 1024), "text/csv", 413),
    ]:
        r = await _import(running, room, body, ctype)
        assert r.status_code == status, (body[:40], r.text)
    snap = await host.request("product.save", {"name": "only one", "price_minor": 1})
    assert snap["type"] == "ack"
    async with httpx.AsyncClient(base_url=running.base) as http:
        unauth = await http.post(
            f"/api/rooms/{room['id']}/products/import", content=CSV, headers={"content-type": "text/csv"}
        )
    assert unauth.status_code == 401
    from server.rooms.actions import room_products

    assert [p.name for p in await room_products(running.app.state.services.db, room["id"])] == ["only one"]


async def test_cookie_import_from_another_site_is_refused(running: Running) -> None:
    """The console's session cookie does not let another site's page import products (CSRF)."""
    room, _, _, _, _ = await setup_room(running, viewers=0)
    cookies = {f"lw_host_{room['id']}": room["host_token"]}
    async with httpx.AsyncClient(base_url=running.base, cookies=cookies) as http:
        r = await http.post(
            f"/api/rooms/{room['id']}/products/import",
            content=CSV,
            headers={"content-type": "text/csv", "origin": "https://evil.example"},
        )
    assert r.status_code == 403 and r.json()["error"]["code"] == "bad_origin"


async def test_odd_numbers_and_currencies_are_clear_errors(running: Running) -> None:
    """Superscript digits, astronomically large prices and non-string currencies are 422, not 500."""
    room, host, _, _, _ = await setup_room(running, viewers=0)
    for body, ctype in [
        ("name,price_minor\nA,²\n".encode(), "text/csv"),
        (b"name,price\nA,1e999999999999999999\n", "text/csv"),
        (b'[{"name": "A", "price_minor": 1, "currency": ["CNY"]}]', "application/json"),
    ]:
        r = await _import(running, room, body, ctype)
        assert r.status_code == 422, (body, r.text)
    reply = await host.request("product.save", {"name": "A", "price_minor": 1, "currency": {"x": 1}})
    assert reply["data"]["code"] == "invalid"


async def test_an_oversized_csv_field_is_a_clear_422(running: Running) -> None:
    """A field over the CSV reader's 128 KiB limit is refused with its line, not a bare 500."""
    room, _, _, _, _ = await setup_room(running, viewers=0)
    body = "name,price,description\nTea,10," + "x" * (129 * 1024) + "\n"
    r = await _import(running, room, body.encode(), "text/csv")
    assert r.status_code == 422 and r.json()["error"] == {
        "code": "too_long",
        "message": "line 2: a field is longer than 128 KiB",
    }
