"""The shop's signed webhook: verified, idempotent, linked to claims, and refusing anything forged."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from server.discounts.engine import Engine
from server.intents.webhook import shop_secret
from tests.helpers import Client, Running, setup_room


def signed(
    secret: str, payload: Any, *, msg_id: str | None = None, at: datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    """A body and Standard Webhooks headers, as a shop would send them."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    when = at or datetime.now(tz=UTC)
    signature = Webhook(secret).sign(msg_id, when, body.decode())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
    return body, headers


async def _claimed(running: Running) -> tuple[dict[str, str], Client, Client, dict[str, Any], str]:
    room, host, _, (phone, _), _ = await setup_room(running)
    product = await host.request("product.save", {"name": "Lipstick", "price_minor": 9900, "sku": "LIP-1"})
    deal = await host.request(
        "discount.launch",
        {"product_id": product["data"]["result"]["id"], "percent_off": 20, "quantity": 5, "duration_secs": 60,
         "hold_secs": 30},
    )  # fmt: skip
    claim = (await phone.request("discount.claim", {"id": deal["data"]["result"]["id"]}))["data"]["result"]
    return room, host, phone, claim, shop_secret(running.app.state.services, room["id"])


async def _post(running: Running, room_id: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=running.base, verify=False) as http:
        return await http.post(f"/api/rooms/{room_id}/shop/events", content=body, headers=headers)


async def _direct(client: Client, kind: str) -> dict[str, Any]:
    while True:
        msg = await client.recv()
        if msg["type"] == kind and "seq" not in msg:
            data: dict[str, Any] = msg["data"]
            return data


async def test_paid_order_redeems_the_coupon_once(running: Running) -> None:
    """A signed order.paid with the coupon redeems the claim (the viewer and the hosts are told, its
    hold no longer lapses); the same delivery again is acknowledged as a duplicate and changes nothing."""
    room, host, phone, claim, secret = await _claimed(running)
    payload = {"type": "order.paid", "data": {"order_id": "SO-1", "coupon_code": claim["code"].lower(),
                                                 "amount_minor": 7920, "currency": "CNY"}}  # fmt: skip
    body, headers = signed(secret, payload)
    first = await _post(running, room["id"], body, headers)
    assert first.status_code == 200 and first.json() == {"ok": True, "duplicate": False, "type": "order.paid"}
    told = await _direct(phone, "claim")
    while told["status"] != "redeemed":  # (the new claim itself came as a frame first)
        told = await _direct(phone, "claim")
    assert told["id"] == claim["id"] and told["status"] == "redeemed"
    again = await _post(running, room["id"], body, headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    await running.app.state.services.engines.get(Engine).tick_clock(claim["expires_ms"] + 1)
    sales = await host.recv_type("sales")
    while sales["data"]["products"][str(claim["product_id"])]["paid"] != 1:
        sales = await host.recv_type("sales")
    funnel = sales["data"]["products"][str(claim["product_id"])]
    assert funnel["claims"] == 1 and funnel["redeemed"] == 1
    from server.storage.models import Claim

    async with running.app.state.services.db.session() as session:
        stored = await session.get(Claim, claim["id"])
    assert stored is not None and stored.status == "redeemed"


def _tamper(headers: dict[str, str], **change: str | None) -> dict[str, str]:
    out = {k: v for k, v in headers.items() if change.get(k, "") is not None}
    out.update({k: v for k, v in change.items() if v is not None})
    return out


@pytest.mark.parametrize(
    "forge",
    [
        "wrong secret",
        "changed body",
        "old timestamp",
        "future timestamp",
        "no signature",
        "garbage signature",
    ],
)
async def test_forged_or_replayed_webhooks_are_refused(running: Running, forge: str) -> None:
    """Bad signatures and timestamps more than 5 minutes off get 401 bad_signature and change nothing."""
    room, _, _, claim, secret = await _claimed(running)
    payload = {"type": "coupon.redeemed", "data": {"coupon_code": claim["code"]}}
    body, headers = signed(secret, payload)
    if forge == "wrong secret":
        body, headers = signed("whsec_" + "A" * 43 + "=", payload)
    elif forge == "changed body":
        body = body.replace(b"coupon.redeemed", b"order.refunded")
    elif forge == "old timestamp":
        body, headers = signed(secret, payload, at=datetime.now(tz=UTC) - timedelta(minutes=6))
    elif forge == "future timestamp":
        body, headers = signed(secret, payload, at=datetime.now(tz=UTC) + timedelta(minutes=6))
    elif forge == "no signature":
        headers = _tamper(headers, **{"webhook-signature": None})
    else:
        headers = _tamper(headers, **{"webhook-signature": "v1,not-base64!! v2"})
    r = await _post(running, room["id"], body, headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_signature"
    from server.storage.models import Claim

    async with running.app.state.services.db.session() as session:
        stored = await session.get(Claim, claim["id"])
    assert stored is not None and stored.status == "reserved"


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"type": "order.teleported", "data": {}}, 422, "invalid"),
        ({"type": "order.paid", "data": {"coupon_code": "LW-ZZZZ-ZZZZ"}}, 422, "unknown_coupon"),
        ({"type": "order.paid", "data": {"viewer_id": "nobody"}}, 422, "unknown_viewer"),
        ({"type": "order.paid", "data": []}, 422, "invalid"),
        ({"type": "order.paid", "data": {"order_id": "x" * 81}}, 422, "invalid"),
        (b"{not json", 400, "bad_json"),
    ],
)
async def test_signed_but_wrong_events_are_refused(
    running: Running, payload: Any, status: int, code: str
) -> None:
    """Well signed events that make no sense get a clear error and are not stored (a retry may succeed)."""
    room, _, _, _, secret = await _claimed(running)
    body, headers = signed(secret, payload)
    r = await _post(running, room["id"], body, headers)
    assert r.status_code == status and r.json()["error"]["code"] == code
    from server.intents.log import seen

    assert not await seen(running.app.state.services.db, f"shop:{room['id']}:{headers['webhook-id']}")


async def test_unknown_room_and_order_life_without_coupon(running: Running) -> None:
    """An unknown room is 404; an order that names the viewer and the SKU is logged against both."""
    room, _, phone, claim, secret = await _claimed(running)
    body, headers = signed(secret, {"type": "order.shipped", "data": {}})
    assert (await _post(running, "nosuchroom", body, headers)).status_code == 404
    viewer_id = phone.welcome["viewer_id"]
    payload = {
        "type": "order.delivered",
        "data": {"order_id": "SO-9", "viewer_id": viewer_id, "sku": "LIP-1"},
    }
    body, headers = signed(secret, payload)
    assert (await _post(running, room["id"], body, headers)).status_code == 200
    from sqlmodel import select

    from server.storage.models import IntentEvent

    async with running.app.state.services.db.session() as session:
        event = (await session.exec(select(IntentEvent).where(IntentEvent.kind == "order.delivered"))).one()
    assert (event.viewer_id, event.product_id, event.order_id, event.source) == (
        viewer_id, claim["product_id"], "SO-9", "shop",
    )  # fmt: skip
