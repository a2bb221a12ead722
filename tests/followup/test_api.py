"""Follow-up HTTP surfaces: the opt-in box, push subscriptions, the in-app inbox, SMS STOP, the
console API (journeys, templates, campaigns with live progress, outbound webhooks) and bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select
from standardwebhooks.webhooks import Webhook

from server.storage import now_ms
from server.storage.followup import Consent, ConsentLog, Contact, Message, PushSubscription
from tests.followup.channels.conftest import Remote, Smtp
from tests.followup.flow import UNREACHABLE, Stage, eventually, stage
from tests.helpers import Client

BAD_OPT_INS: list[tuple[dict[str, Any], int, str]] = [
    ({"email": "nope@", "consent": {"email": True}}, 422, "bad_email"),
    ({"phone": "12", "consent": {"sms": True}}, 422, "bad_phone"),
    ({"consent": {"email": True}}, 422, "no_contact"),
    ({"email": "a@example.com", "consent": {"sms": True}}, 422, "invalid"),
    ({"email": "a@example.com", "consent": {"email": "yes"}}, 422, "invalid"),
    ({"email": "a@example.com", "wording": ""}, 422, "invalid"),
    ({"email": "a@example.com", "tz": "Mars/Base"}, 422, "invalid"),
]


async def test_opt_in_refuses_bad_input_and_changes_nothing(tmp_path: Path) -> None:
    """Each bad opt-in gets a clear code; no contact is created by any of them."""
    async with stage(tmp_path, **UNREACHABLE) as s:
        phone = await s.phone()
        for body, status, code in BAD_OPT_INS:
            full = {"lang": "en", "wording": "ok", **body}
            r = await phone.post(f"/api/rooms/{s.room_id}/contact", json=full)
            assert (r.status_code, r.json()["error"]["code"]) == (status, code), (body, r.text)
        stranger = httpx.AsyncClient(base_url=s.running.base)
        r = await stranger.post(f"/api/rooms/{s.room_id}/contact", json={"email": "a@example.com"})
        assert r.status_code == 401
        r = await phone.post(
            f"/api/rooms/{s.room_id}/contact",
            json={"email": "a@example.com", "wording": "ok"},
            headers={"origin": "https://evil.example"},
        )
        assert r.status_code == 403
        async with s.services.db.session() as session:
            assert (await session.exec(select(Contact))).all() == []
        await stranger.aclose()
        await phone.aclose()


async def test_double_opt_in_holds_marketing_until_confirmed(
    tmp_path: Path, smtp_server: Callable[..., Smtp]
) -> None:
    """Before the confirmation link is clicked, no marketing email goes out: the reminder takes the
    next channel the viewer can get (in-app)."""
    smtp = smtp_server()
    settings = {"smtp_url": f"smtp://127.0.0.1:{smtp.port}?tls=none"}
    async with stage(tmp_path, **settings) as s:
        phone = await s.phone()
        await s.opt_in(phone, email="li@example.com", consent={"email": True})
        await phone.get(f"/r/{s.room_id}/buy/{s.product['id']}")
        sent = await eventually(lambda: _status(s, "unpaid-reminder", "sent"))
        assert sent.channel == "inapp"
        assert len(smtp.sink.delivered) == 1  # only the confirmation
        await phone.aclose()


async def _status(s: Stage, template: str, status: str) -> Message | None:
    for m in await s.messages(template=template):
        if m.status == status:
            return m
    return None


async def test_push_subscription_is_stored_with_consent(tmp_path: Path) -> None:
    """A browser's subscription makes the viewer a contact with push consent; bad ones are refused."""
    async with stage(tmp_path) as s:
        phone = await s.phone()
        key = (await phone.get("/api/push/key")).json()["key"]
        assert len(key) == 87  # an uncompressed P-256 point, base64url without padding
        for endpoint in ("http://fcm.googleapis.com/x", "https://evil.example/x", "https://127.0.0.1/x"):
            bad = {"endpoint": endpoint, "keys": {"p256dh": "a", "auth": "b"}}
            r = await phone.post(f"/api/rooms/{s.room_id}/push", json={"subscription": bad})
            assert r.status_code == 422, endpoint  # the server would post to it: push services only
        good = {"endpoint": "https://fcm.googleapis.com/fcm/send/x", "keys": {"p256dh": "BPk", "auth": "au"}}
        r = await phone.post(
            f"/api/rooms/{s.room_id}/push", json={"subscription": good, "wording": "Remind me"}
        )
        assert r.status_code == 200 and r.json()["contact"]["push"] is True
        async with s.services.db.session() as session:
            sub = (await session.exec(select(PushSubscription))).one()
            consent = (await session.exec(select(Consent))).one()
        assert sub.endpoint == good["endpoint"] and (consent.channel, consent.status) == ("push", "granted")
        await phone.aclose()


async def test_in_app_message_reaches_only_its_viewer(tmp_path: Path) -> None:
    """An in-app message is in its viewer's welcome until opened; nobody else can open it."""
    async with stage(tmp_path) as s:
        phone = await s.phone("mine")
        other = await s.phone("other")
        me = (await phone.post(f"/api/rooms/{s.room_id}/join", json={})).json()
        t = now_ms()
        async with s.services.db.session() as session:
            msg = Message(
                idem_key="inapp:1", room_id=s.room_id, viewer_id=me["viewer_id"], channel="inapp",
                template="prize-unclaimed", status="sent", subject="You won!", body="Claim it", next_ms=t,
                created_ms=t, sent_ms=t,
            )  # fmt: skip
            session.add(msg)
            await session.commit()
        client = await Client.connect(s.running.ws, "viewer", s.room_id, {"token": me["token"]})
        inbox = client.welcome["personal"]["inbox"]
        assert [(m["id"], m["subject"], m["text"]) for m in inbox] == [(msg.id, "You won!", "Claim it")]
        await client.close()
        assert (await other.post(f"/api/inbox/{msg.id}/opened")).status_code == 404
        assert (await phone.post("/api/inbox/abc/opened")).status_code == 404
        assert (await phone.post(f"/api/inbox/{msg.id}/opened")).status_code == 200
        again = await Client.connect(s.running.ws, "viewer", s.room_id, {"token": me["token"]})
        assert again.welcome["personal"]["inbox"] == []
        await again.close()
        await phone.aclose()
        await other.aclose()


async def test_sms_stop_blocks_the_number(tmp_path: Path) -> None:
    """A STOP (or TD / 退订) reply from the gateway blocks SMS for that number, with the reason."""
    async with stage(tmp_path, sms_token="gw-token", sms_url=UNREACHABLE["sms_url"]) as s:
        phone = await s.phone()
        await s.opt_in(phone, phone="+8613800138000", consent={"sms": True})
        async with httpx.AsyncClient(base_url=s.running.base) as gw:
            body = {"from": "+8613800138000", "text": "退订"}
            assert (await gw.post("/api/sms/inbound", json=body)).status_code == 401
            auth = {"authorization": "Bearer gw-token"}
            r = await gw.post(
                "/api/sms/inbound", json={"from": "+8613800138000", "text": "hello"}, headers=auth
            )
            assert r.json() == {"ok": True, "stop": False}
            bad = await gw.post("/api/sms/inbound", json={"from": "nope", "text": "TD"}, headers=auth)
            assert bad.status_code == 422
            r = await gw.post("/api/sms/inbound", json=body, headers=auth)
            assert r.json() == {"ok": True, "stop": True, "contacts": 1}
        async with s.services.db.session() as session:
            consent = (await session.exec(select(Consent))).one()
            log = (await session.exec(select(ConsentLog).order_by(ConsentLog.id))).all()
        assert (consent.status, consent.reason) == ("blocked", "stop")
        assert [e.source for e in log] == ["opt-in box", "sms reply"]
        await phone.aclose()


CONSOLE_BAD: list[tuple[str, str, dict[str, Any], str]] = [
    ("post", "journeys", {"key": "x", "name": "x", "entry": "nope", "steps": []}, "invalid"),
    ("post", "templates", {"key": "x", "locale": "en", "body": "{% if %}"}, "bad_template"),
    ("post", "templates", {"key": "x", "locale": "fr", "body": "hi"}, "invalid"),
    ("post", "preview", {"body": "{{ nope.name }}"}, "bad_template"),
    (
        "post",
        "campaigns",
        {"name": "c", "segment": "everyone", "channel": "email", "template": "holiday"},
        "invalid",
    ),
    (
        "post",
        "campaigns",
        {"name": "c", "segment": "attended", "channel": "email", "template": "nope"},
        "unknown_template",
    ),
    ("put", "settings", {"quiet_start": "25:00"}, "invalid"),
    ("put", "settings", {"webhook_url": "ftp://x"}, "invalid"),
    ("put", "settings", {"colour": "red"}, "invalid"),
    ("post", "dnc", {"email": "a@example.com", "reason": ""}, "invalid"),
]


@pytest.mark.parametrize(("method", "path", "body", "code"), CONSOLE_BAD)
async def test_console_refuses_bad_input(
    tmp_path: Path, method: str, path: str, body: dict[str, Any], code: str
) -> None:
    """The console API answers bad input with a clear code and changes nothing."""
    async with stage(tmp_path) as s:
        async with s.host_http() as http:
            before = (await http.get(f"/api/rooms/{s.room_id}/followup")).json()
            r = await getattr(http, method)(f"/api/rooms/{s.room_id}/followup/{path}", json=body)
            assert r.status_code == 422 and r.json()["error"]["code"] == code, r.text
            after = (await http.get(f"/api/rooms/{s.room_id}/followup")).json()
        assert before == after
        async with httpx.AsyncClient(base_url=s.running.base) as anon:
            assert (await anon.get(f"/api/rooms/{s.room_id}/followup")).status_code == 401


async def test_preview_renders_sample_data(tmp_path: Path) -> None:
    """A template previews with sample data, in the sandbox (no access to Python internals)."""
    async with stage(tmp_path) as s, s.host_http() as http:
        url = f"/api/rooms/{s.room_id}/followup/preview"
        r = await http.post(url, json={"subject": "{{ product.name }}", "body": "Code {{ coupon }}"})
        assert r.json() == {"subject": "Jasmine green tea 250g", "text": "Code SPRING10"}
        r = await http.post(url, json={"body": "{{ product.__class__.__mro__ }}"})
        assert r.status_code == 422


async def test_campaign_sends_to_the_segment_with_live_progress(tmp_path: Path, remote: Remote) -> None:
    """A campaign to the attended audience over the outbound webhook: one signed call per person,
    progress reaching the host live, and the campaign done at the end."""
    hook = remote.script("/hook")
    async with stage(tmp_path, smtp_url=UNREACHABLE["smtp_url"]) as s:
        phones = [await s.phone(f"p{i}") for i in range(3)]
        for i, phone in enumerate(phones[:2]):
            await s.opt_in(phone, email=f"p{i}@example.com", consent={"email": True})
        async with s.host_http() as http:
            await http.put(f"/api/rooms/{s.room_id}/followup/settings", json={"webhook_url": hook})
            overview = (await http.get(f"/api/rooms/{s.room_id}/followup")).json()
            assert overview["segments"]["attended"] == 3 and overview["segments"]["contacts"] == 2
            body = {"name": "Thanks", "segment": "attended", "channel": "webhook", "template": "post-stream"}
            r = await http.post(f"/api/rooms/{s.room_id}/followup/campaigns", json=body)
            assert r.status_code == 200, r.text
        event = await s.host.recv_type("followup", timeout=10)
        while not event["data"]["campaigns"] or event["data"]["campaigns"][0]["status"] != "done":
            event = await s.host.recv_type("followup", timeout=10)
        campaign = event["data"]["campaigns"][0]
        assert campaign["total"] == 3 and campaign["counts"] == {"sent": 3}
        assert len(remote.received) == 3
        secret = overview["webhook_secret"]
        for call in remote.received:
            payload: Any = Webhook(secret).verify(call.body, call.headers)
            assert payload["type"] == "followup.message" and "Test room" in payload["text"]
        assert len({json.loads(c.body)["message_id"] for c in remote.received}) == 3
        for phone in phones:
            await phone.aclose()


async def test_a_template_that_fails_to_render_fails_its_message(tmp_path: Path) -> None:
    """A template that breaks at send time fails its message with the reason; no endless retries."""
    async with stage(tmp_path) as s, s.host_http() as http:
        phone = await s.phone()
        # Saving renders it once with the sample data (room "Spring tea tasting"): this one passes
        # then, and divides by zero for the real room.
        body = "{{ 1 // (room.title == 'Spring tea tasting') }}"
        broken = {"key": "broken", "locale": "zh-CN", "body": body}
        assert (await http.post(f"/api/rooms/{s.room_id}/followup/templates", json=broken)).status_code == 200
        body = {"name": "Broken", "segment": "attended", "channel": "inapp", "template": "broken"}
        assert (await http.post(f"/api/rooms/{s.room_id}/followup/campaigns", json=body)).status_code == 200
        failed = await eventually(lambda: _status(s, "broken", "failed"))
        assert failed.attempts == 1 and "template error" in (failed.reason or "")
        await phone.aclose()


async def test_in_app_message_shows_live_on_an_open_phone(tmp_path: Path) -> None:
    """A phone with the room open gets a campaign's in-app message at once (the `inbox` frame)."""
    async with stage(tmp_path) as s, s.host_http() as http:
        phone = await s.phone()
        me = (await phone.post(f"/api/rooms/{s.room_id}/join", json={})).json()
        client = await Client.connect(s.running.ws, "viewer", s.room_id, {"token": me["token"]})
        body = {"name": "Live", "segment": "attended", "channel": "inapp", "template": "post-stream"}
        assert (await http.post(f"/api/rooms/{s.room_id}/followup/campaigns", json=body)).status_code == 200
        frame = await client.recv_type("inbox", timeout=10)
        assert "Test room" in frame["data"]["text"] and isinstance(frame["data"]["id"], int)
        await client.close()
        await phone.aclose()


async def test_clicked_not_paid_knows_payers_by_their_order(tmp_path: Path) -> None:
    """A payment that names only its order still takes its buyer out of "clicked but did not pay"."""
    async with stage(tmp_path) as s:
        payer, other = await s.phone("payer"), await s.phone("other")
        for phone in (payer, other):
            await phone.get(f"/r/{s.room_id}/buy/{s.product['id']}")
        payer_id = (await payer.post(f"/api/rooms/{s.room_id}/join", json={})).json()["viewer_id"]
        other_id = (await other.post(f"/api/rooms/{s.room_id}/join", json={})).json()["viewer_id"]
        assert (await s.shop("order.placed", {"order_id": "P-1", "viewer_id": payer_id})).status_code == 200
        assert (await s.shop("order.paid", {"order_id": "P-1"})).status_code == 200
        from server.followup.campaigns import segment_people

        async with s.services.db.session() as session:
            people = await segment_people(session, s.room_id, "clicked_not_paid")
        assert [viewer for viewer, _ in people] == [other_id]
        await payer.aclose()
        await other.aclose()
