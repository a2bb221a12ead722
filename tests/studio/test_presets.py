"""Presets: discounts and draws prepared in the studio (checked by the domains' own parsers, each
kind by the role that runs it) and launched from the console over the WebSocket."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from server.auth import MemberRole
from server.rooms.wire import ProductSeed
from server.storage.accounts import Preset
from server.storage.models import Product, Room
from tests.helpers import Client, Running, join
from tests.studio.rooms_support import Person, person, room_in, services_of, studio

DEAL = {"price_minor": 990, "quantity": 5, "duration_secs": 300, "per_viewer_limit": 1}
DRAW = {"title": "Tea set", "mode": "join", "tiers": [{"name": "Tea set", "count": 1}], "window_secs": 30}


async def _room_with_tea(running: Running) -> tuple[Room, int]:
    room = await room_in(running, "Preset room", products=[ProductSeed("Green tea", 1990, stock=5)])
    async with services_of(running).db.session() as session:
        tea = (await session.exec(select(Product).where(Product.room_id == room.id))).one()
    assert tea.id is not None
    return room, tea.id


async def _console(running: Running, room: Room, who: Person) -> Client:
    token = services_of(running).tokens.member_host(room.id, who.session_id)
    return await Client.connect(running.ws, "host", room.id, {"token": token})


async def _save(running: Running, who: Person, room: Room, body: dict[str, Any]) -> Any:
    async with studio(running, who) as http:
        return await http.post(f"/api/studio/rooms/{room.id}/presets", json=body)


async def test_a_seller_prepares_discounts_but_not_draws(running: Running) -> None:
    """Discount presets need deals:run, draw presets draws:run; payloads are checked as the launch
    would check them (422 naming the field); edits and deletes follow the same rule."""
    room, tea = await _room_with_tea(running)
    seller = await person(running, MemberRole.SELLER)
    made = await _save(
        running,
        seller,
        room,
        {"kind": "discount", "label": "Half price", "payload": {**DEAL, "product_id": tea}},
    )
    assert made.status_code == 201, made.text
    preset = made.json()
    assert preset["payload"]["product_id"] == tea and preset["launched_ms"] is None
    draw = await _save(running, seller, room, {"kind": "draw", "label": "Cup", "payload": DRAW})
    assert draw.status_code == 403
    too_dear = await _save(
        running,
        seller,
        room,
        {"kind": "discount", "label": "Dear", "payload": {**DEAL, "product_id": tea, "price_minor": 5000}},
    )
    assert too_dear.status_code == 422
    no_quantity = {**DEAL, "product_id": tea}
    del no_quantity["quantity"]
    missing = await _save(running, seller, room, {"kind": "discount", "label": "X", "payload": no_quantity})
    assert missing.status_code == 422 and "quantity" in missing.json()["error"]["message"]
    unknown = await _save(
        running, seller, room, {"kind": "discount", "label": "X", "payload": {**DEAL, "product_id": 999999}}
    )
    assert unknown.status_code == 404
    async with studio(running, seller) as http:
        edited = await http.put(
            f"/api/studio/rooms/{room.id}/presets/{preset['id']}",
            json={"label": "Two thirds", "payload": {**DEAL, "product_id": tea, "price_minor": 1300}},
        )
        assert edited.status_code == 200 and edited.json()["label"] == "Two thirds"
        listed = (await http.get(f"/api/studio/rooms/{room.id}/presets")).json()["presets"]
        assert [p["label"] for p in listed] == ["Two thirds"]
    host = await person(running, MemberRole.HOST)
    made_draw = await _save(running, host, room, {"kind": "draw", "label": "Cup", "payload": DRAW})
    assert made_draw.status_code == 201
    bad_mode = await _save(
        running, host, room, {"kind": "draw", "label": "?", "payload": {**DRAW, "mode": "dice"}}
    )
    assert bad_mode.status_code == 422 and "mode" in bad_mode.json()["error"]["message"]
    async with studio(running, seller) as http:
        refused = await http.delete(f"/api/studio/rooms/{room.id}/presets/{made_draw.json()['id']}")
        assert refused.status_code == 403
        deleted = await http.delete(f"/api/studio/rooms/{room.id}/presets/{preset['id']}")
        assert deleted.status_code == 200


async def test_discount_preset_launches_from_the_console(running: Running) -> None:
    """discount.preset launches the deal (phones see it) and marks the preset launched; a moderator's
    console is refused (forbidden); another room's preset is not found; the console lists presets."""
    room, tea = await _room_with_tea(running)
    other, other_tea = await _room_with_tea(running)
    host = await person(running, MemberRole.HOST)
    moderator = await person(running, MemberRole.MODERATOR)
    preset = (
        await _save(
            running,
            host,
            room,
            {"kind": "discount", "label": "Flash", "payload": {**DEAL, "product_id": tea}},
        )
    ).json()
    elsewhere = (
        await _save(
            running,
            host,
            other,
            {"kind": "discount", "label": "Else", "payload": {**DEAL, "product_id": other_tea}},
        )
    ).json()
    joined = await join(running.base, room.id, "Wu")
    phone = await Client.connect(running.ws, "viewer", room.id, {"token": joined["token"]})
    mod_console = await _console(running, room, moderator)
    refused = await mod_console.request("discount.preset", {"id": preset["id"]})
    assert refused["type"] == "error" and refused["data"]["code"] == "forbidden"
    console = await _console(running, room, host)
    missing = await console.request("discount.preset", {"id": elsewhere["id"]})
    assert missing["type"] == "error" and missing["data"]["code"] == "not_found"
    ack = await console.request("discount.preset", {"id": preset["id"]})
    assert ack["type"] == "ack", ack
    launched = ack["data"]["result"]
    assert launched["product_id"] == tea and launched["price_minor"] == 990 and launched["quantity"] == 5
    seen = await phone.recv_type("discount")
    assert seen["data"]["id"] == launched["id"]
    async with services_of(running).db.session() as session:
        stored = await session.get(Preset, preset["id"])
        assert stored is not None and stored.launched_ms is not None
    token = services_of(running).tokens.member_host(room.id, host.session_id)
    async with studio(running, host) as http:
        listed = await http.get(f"/api/rooms/{room.id}/presets", headers={"authorization": f"Bearer {token}"})
        assert listed.status_code == 200
        assert [p["label"] for p in listed.json()["presets"]] == ["Flash"]
    for client in (phone, mod_console, console):
        await client.close()


async def test_draw_preset_sets_up_the_draw_and_stale_discounts_are_refused(running: Running) -> None:
    """draw.preset sets the draw up as draw.create would; a discount preset whose product left the
    shelf answers preset_stale."""
    room, tea = await _room_with_tea(running)
    host = await person(running, MemberRole.HOST)
    draw = (await _save(running, host, room, {"kind": "draw", "label": "Cup", "payload": DRAW})).json()
    deal = (
        await _save(
            running, host, room, {"kind": "discount", "label": "Old", "payload": {**DEAL, "product_id": tea}}
        )
    ).json()
    console = await _console(running, room, host)
    ack = await console.request("draw.preset", {"id": draw["id"]})
    assert ack["type"] == "ack", ack
    assert ack["data"]["result"]["title"] == "Tea set" and ack["data"]["result"]["status"] == "open"
    wrong_kind = await console.request("draw.preset", {"id": deal["id"]})
    assert wrong_kind["type"] == "error" and wrong_kind["data"]["code"] == "not_found"
    async with services_of(running).db.session() as session:
        product = await session.get(Product, tea)
        assert product is not None
        product.archived = True
        session.add(product)
        await session.commit()
    stale = await console.request("discount.preset", {"id": deal["id"]})
    assert stale["type"] == "error" and stale["data"]["code"] == "preset_stale"
    assert "Old" in stale["data"]["message"]
    await console.close()
