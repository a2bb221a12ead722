"""Follow-up end to end over real uvicorn, a real SMTP server (aiosmtpd) and a local SMS gateway:
click buy -> opt in -> reminder with a tracked link; paid mid-wait -> nothing; quiet hours; caps;
consent withdrawal; unsubscribe; retries, permanent failures, dead letters and the breaker."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlmodel import select

from server.followup.runner import Runner
from server.storage.followup import Alert, Consent, ConsentLog, Journey, JourneyInstance, Message
from tests.followup.channels.conftest import Remote, Reply, Smtp
from tests.followup.flow import Stage, eventually, links_in, stage

EMAIL = "li.wei@example.com"


def smtp_settings(smtp: Smtp) -> dict[str, Any]:
    return {"smtp_url": f"smtp://127.0.0.1:{smtp.port}?tls=none", "mail_from": "Shop <shop@example.com>"}


async def confirmed_contact(s: Stage, smtp: Smtp, email: str = EMAIL) -> httpx.AsyncClient:
    """A phone that left its email with consent and clicked the confirmation link."""
    phone = await s.phone()
    answer = await s.opt_in(phone, email=email, consent={"email": True})
    assert answer["pending"] == ["email"]
    mail = await eventually(lambda: _first(smtp, email))
    assert "List-Unsubscribe" not in mail.message  # the confirmation is transactional
    confirm = next(u for u in links_in(mail.message.get_body(("plain",)).get_content()) if "/optin/" in u)
    asked = await phone.get(confirm)  # a mail scanner's GET confirms nothing
    assert asked.status_code == 200 and "<form" in asked.text
    r = await phone.post(confirm)
    assert r.status_code == 200
    return phone


async def _first(smtp: Smtp, to: str, skip: int = 0) -> Any:
    found = [d for d in smtp.sink.delivered if to in d.rcpt_tos]
    return found[skip] if len(found) > skip else None


async def test_clicked_buy_not_paid_gets_one_reminder_with_a_tracked_link(
    tmp_path: Path, smtp_server: Callable[..., Smtp]
) -> None:
    """Buy clicked, no payment: after the wait one email with the product and a tracking link that
    redirects and counts the click."""
    smtp = smtp_server()
    async with stage(tmp_path, **smtp_settings(smtp)) as s:
        phone = await confirmed_contact(s, smtp)
        r = await phone.get(f"/r/{s.room_id}/buy/{s.product['id']}")
        assert r.status_code == 303
        mail = await eventually(lambda: _first(smtp, EMAIL, skip=1))
        assert "Jasmine tea" in mail.message["Subject"]
        assert mail.message["List-Unsubscribe"].startswith("<http")
        assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        text = mail.message.get_body(("plain",)).get_content()
        assert "¥68.00" in text
        tracked = [u for u in links_in(text) if "/t/" in u]
        assert tracked
        sent = await eventually(lambda: _one(s, "unpaid-reminder", status="sent"))  # recorded after the 250
        assert sent.clicked_ms is None
        async with httpx.AsyncClient() as browser:
            hop = await browser.get(tracked[0])
        assert hop.status_code == 302
        assert (
            hop.headers["location"]
            .split("?")[0]
            .endswith(  # with UTM parameters (docs/revenue.md)
                f"/r/{s.room_id}/buy/{s.product['id']}"
            )
        )
        clicked = (await s.messages(id=sent.id))[0]
        assert clicked.clicked_ms is not None and clicked.status == "clicked"
        # The HTML part: the same tracked links, and the open pixel.
        html = mail.message.get_body(("html",)).get_content()
        assert f'href="{tracked[0]}"' in html
        pixel = html.split('<img src="')[1].split('"')[0]
        async with httpx.AsyncClient() as browser:
            gif = await browser.get(pixel)
        assert gif.headers["content-type"] == "image/gif"
        assert (await s.messages(id=sent.id))[0].opened_ms is not None
        # Only the two emails (confirmation, reminder): the step never sends twice.
        await phone.get(f"/r/{s.room_id}/buy/{s.product['id']}")
        await eventually(lambda: _rounds_after(s, 3))
        assert len([d for d in smtp.sink.delivered if EMAIL in d.rcpt_tos]) == 2
        await phone.aclose()


async def _rounds_after(s: Stage, n: int) -> bool:
    runner = s.services.engines.get(Runner)
    start = getattr(runner, "_probe_start", None)
    if start is None:
        runner._probe_start = runner.rounds
        return False
    if runner.rounds >= start + n:
        del runner._probe_start
        return True
    return False


async def test_paid_mid_wait_sends_nothing(tmp_path: Path, smtp_server: Callable[..., Smtp]) -> None:
    """Order paid during the wait ends the journey at once: no reminder, ever."""
    smtp = smtp_server()
    async with stage(tmp_path, **smtp_settings(smtp)) as s:
        phone = await confirmed_contact(s, smtp)
        await phone.get(f"/r/{s.room_id}/buy/{s.product['id']}")
        viewer = (await phone.get(f"/api/rooms/{s.room_id}")).json()
        assert viewer
        instance = await eventually(lambda: _instance(s, "unpaid-reminder"))
        join = await phone.post(f"/api/rooms/{s.room_id}/join", json={})
        r = await s.shop(
            "order.paid", {"order_id": "A-1", "viewer_id": join.json()["viewer_id"], "sku": "TEA-1"}
        )
        assert r.status_code == 200, r.text
        ended = await eventually(lambda: _instance(s, "unpaid-reminder", status="goal"))
        assert ended.id == instance.id and ended.end_reason == "order.paid"
        # Well past the wait (30 min scaled ~ 0.9 s): still only the confirmation email.
        await eventually(lambda: _past(instance.wake_ms + 500))
        await eventually(lambda: _rounds_after(s, 3))
        assert await s.messages(template="unpaid-reminder") == []
        subjects = [d.message["Subject"] for d in smtp.sink.delivered if EMAIL in d.rcpt_tos]
        # The confirmation, and the payment thanks (transactional) for the paid order: no reminder.
        assert len(subjects) == 2 and "A-1" in subjects[1], subjects
        await phone.aclose()


async def _instance(s: Stage, key: str, status: str = "active") -> JourneyInstance | None:
    async with s.services.db.session() as session:
        journey = (await session.exec(select(Journey).where(Journey.key == key))).one()
        found: JourneyInstance | None = (
            await session.exec(
                select(JourneyInstance).where(
                    JourneyInstance.journey_id == journey.id, JourneyInstance.status == status
                )
            )
        ).first()
        return found


async def _waiting(s: Stage) -> JourneyInstance | None:
    """The reminder's instance once it sits in its wait (its first step done)."""
    found = await _instance(s, "unpaid-reminder")
    return found if found is not None and found.step == 1 else None


async def _past(when_ms: int) -> bool:
    from server.storage import now_ms

    return now_ms() > when_ms


async def test_quiet_hours_hold_and_stale_cancel(tmp_path: Path, smtp_server: Callable[..., Smtp]) -> None:
    """Inside the contact's quiet hours a reminder is held to their end; one whose useful life ends
    before that is cancelled as stale; a transactional message goes at once."""
    smtp = smtp_server()
    async with stage(tmp_path, **smtp_settings(smtp)) as s:
        phone = await confirmed_contact(s, smtp)
        local = datetime.now(ZoneInfo("Asia/Shanghai"))
        start = (local - timedelta(hours=1)).strftime("%H:%M")
        end = (local + timedelta(hours=2)).strftime("%H:%M")
        await s.settings(quiet_start=start, quiet_end=end)
        # A reminder with no staleness limit is held until the quiet hours end.
        async with s.host_http() as http:
            spec = {
                "key": "no-limit",
                "name": "Reminder without a useful life",
                "entry": "product.details",
                "steps": [{"send": {"channel": "email", "template": "unpaid-reminder"}}],
            }
            r = await http.post(f"/api/rooms/{s.room_id}/followup/journeys", json=spec)
            assert r.status_code == 200, r.text
        viewer_id = (await phone.post(f"/api/rooms/{s.room_id}/join", json={})).json()["viewer_id"]
        await _intent(s, phone, "product.details")
        held = await eventually(lambda: _one(s, "unpaid-reminder", reason="quiet hours"))
        assert held.status == "scheduled"
        assert held.next_ms - held.created_ms > 3600_000  # until the end of the quiet hours
        # The ready-made reminder is useful for 12 h (scaled to seconds here): cancelled as stale.
        await phone.get(f"/r/{s.room_id}/buy/{s.product['id']}")
        stale = await eventually(lambda: _one(s, "unpaid-reminder", status="stale"))
        assert stale.reason == "quiet hours last past its useful time"
        # Transactional messages are exempt from quiet hours.
        r = await s.shop("order.shipped", {"order_id": "Q-1", "viewer_id": viewer_id})
        assert r.status_code == 200
        shipped = await eventually(lambda: _first(smtp, EMAIL, skip=1))
        assert "Q-1" in shipped.message["Subject"]
        await phone.aclose()


async def _intent(s: Stage, phone: httpx.AsyncClient, kind: str) -> None:
    """A phone's purchase-intent signal, sent over its own WebSocket as the viewer page does."""
    from tests.helpers import Client

    token = (await phone.post(f"/api/rooms/{s.room_id}/join", json={})).json()["token"]
    client = await Client.connect(s.running.ws, "viewer", s.room_id, {"token": token})
    ack = await client.request("intent", {"kind": kind, "product_id": s.product["id"]})
    assert ack["type"] == "ack", ack
    await client.close()


async def _one(s: Stage, template: str, **where: Any) -> Message | None:
    for m in await s.messages(template=template):
        if all(getattr(m, k) == v for k, v in where.items()):
            return m
    return None


async def test_frequency_cap_is_recorded(tmp_path: Path, smtp_server: Callable[..., Smtp]) -> None:
    """Over the daily cap a marketing message is recorded as capped, with the reason."""
    smtp = smtp_server()
    async with stage(tmp_path, **smtp_settings(smtp)) as s:
        await s.settings(cap_per_day=1)
        phone = await confirmed_contact(s, smtp)
        second = await s.host.request(
            "product.save", {"name": "Tea cup", "price_minor": 1000, "shop_url": "https://shop.example/cup"}
        )
        await phone.get(f"/r/{s.room_id}/buy/{s.product['id']}")
        await phone.get(f"/r/{s.room_id}/buy/{second['data']['result']['id']}")
        capped = await eventually(lambda: _one(s, "unpaid-reminder", status="capped"))
        assert "frequency cap" in (capped.reason or "")
        sent = await eventually(lambda: _one(s, "unpaid-reminder", status="sent"))
        assert sent.id != capped.id
        await phone.aclose()


async def test_consent_checked_at_send_time(tmp_path: Path, smtp_server: Callable[..., Smtp]) -> None:
    """Consent withdrawn during the wait: the scheduled email is skipped, not sent."""
    smtp = smtp_server()
    async with stage(tmp_path, **smtp_settings(smtp)) as s:
        phone = await confirmed_contact(s, smtp)
        async with s.host_http() as http:
            spec = {
                "key": "unpaid-reminder",
                "name": "By email only",
                "entry": "product.buy",
                "key_by": "product_id",
                "goal": "order.paid",
                "steps": [
                    {"wait": {"minutes": 30}},
                    {"send": {"channel": "email", "template": "unpaid-reminder"}},
                ],
            }
            assert (
                await http.post(f"/api/rooms/{s.room_id}/followup/journeys", json=spec)
            ).status_code == 200
        await phone.get(f"/r/{s.room_id}/buy/{s.product['id']}")
        waiting = await eventually(lambda: _waiting(s))
        links = s.services.engines.get(Runner).links
        async with s.services.db.session() as session:
            consent = (await session.exec(select(Consent))).one()
        r = await phone.post(links.unsubscribe(consent.contact_id, "email"))
        assert r.status_code == 200
        async with s.services.db.session() as session:  # the (long) wait is over now
            inst = await session.get(JourneyInstance, waiting.id)
            assert inst is not None
            inst.wake_ms = 0
            session.add(inst)
            await session.commit()
        s.services.engines.get(Runner).wake()
        skipped = await eventually(lambda: _one(s, "unpaid-reminder", status="skipped"), timeout=10)
        assert skipped.reason == "email: withdrawn"
        assert len([d for d in smtp.sink.delivered if EMAIL in d.rcpt_tos]) == 1
        await phone.aclose()


async def test_unsubscribe_link_one_click(tmp_path: Path, smtp_server: Callable[..., Smtp]) -> None:
    """The List-Unsubscribe URL: GET asks (link scanners change nothing), POST unsubscribes and
    is logged with its source."""
    smtp = smtp_server()
    async with stage(tmp_path, **smtp_settings(smtp)) as s:
        phone = await confirmed_contact(s, smtp)
        await phone.get(f"/r/{s.room_id}/buy/{s.product['id']}")
        mail = await eventually(lambda: _first(smtp, EMAIL, skip=1))
        url = mail.message["List-Unsubscribe"].strip("<>")
        async with httpx.AsyncClient() as client:
            page = await client.get(url)
            assert page.status_code == 200 and "data-unsubscribe" in page.text
            async with s.services.db.session() as session:
                assert (await session.exec(select(Consent))).one().status == "granted"
            done = await client.post(url, data={"List-Unsubscribe": "One-Click"})
            assert done.status_code == 200
            forged = await client.get(url[:-3] + "xyz")
            assert forged.status_code == 404
        async with s.services.db.session() as session:
            consent = (await session.exec(select(Consent))).one()
            log = (await session.exec(select(ConsentLog).order_by(ConsentLog.id))).all()
        assert (consent.status, consent.reason) == ("withdrawn", "unsubscribed")
        assert [entry.source for entry in log] == ["opt-in box", "double opt-in", "unsubscribe link"]
        assert log[0].wording == "Send me reminders by email."
        await phone.aclose()


async def sms_stage_phone(s: Stage) -> httpx.AsyncClient:
    phone = await s.phone()
    await s.opt_in(phone, phone="+8613800138000", consent={"sms": True}, wording="Texts from this shop.")
    return phone


async def test_sms_503_then_200_retries_and_sends_once(tmp_path: Path, remote: Remote) -> None:
    """A 503 from the SMS gateway is retried with backoff; the 200 that follows is the one send,
    and the transient failure never blocks the contact."""
    url = remote.script("/sms", Reply(503), Reply(200, b'{"id": "sms-1"}'))
    async with stage(tmp_path, sms_url=url, sms_token="tok") as s:
        phone = await sms_stage_phone(s)
        await phone.get(f"/r/{s.room_id}/buy/{s.product['id']}")
        sent = await eventually(lambda: _one(s, "unpaid-reminder", status="sent"))
        assert sent.attempts == 2 and sent.provider_id == "sms-1"
        assert len(remote.received) == 2
        assert remote.received[0].headers["idempotency-key"] == remote.received[1].headers["idempotency-key"]
        async with httpx.AsyncClient(base_url=s.running.base) as gw:
            receipt = {"id": "sms-1", "status": "delivered"}
            assert (await gw.post("/api/sms/receipts", json=receipt)).status_code == 401
            auth = {"authorization": "Bearer tok"}
            r = await gw.post("/api/sms/receipts", json=receipt, headers=auth)
            assert r.json() == {"ok": True, "status": "delivered"}
            unknown = await gw.post(
                "/api/sms/receipts", json={"id": "nope", "status": "delivered"}, headers=auth
            )
            assert unknown.status_code == 404
        assert (await s.messages(id=sent.id))[0].delivered_ms is not None
        async with s.services.db.session() as session:
            assert (await session.exec(select(Consent))).one().status == "granted"
        await phone.aclose()


async def test_sms_400_fails_without_retry(tmp_path: Path, remote: Remote) -> None:
    """A 400 is permanent: recorded as failed, one attempt, the contact stays reachable."""
    url = remote.script("/sms", Reply(400, b'{"error": "bad sender"}'))
    async with stage(tmp_path, sms_url=url, sms_token="tok") as s:
        phone = await sms_stage_phone(s)
        await phone.get(f"/r/{s.room_id}/buy/{s.product['id']}")
        failed = await eventually(lambda: _one(s, "unpaid-reminder", status="failed"))
        assert failed.attempts == 1 and "400" in (failed.reason or "")
        assert len(remote.received) == 1
        async with s.services.db.session() as session:
            assert (await session.exec(select(Consent))).one().status == "granted"
        await phone.aclose()


async def test_dead_letter_and_retry_button(tmp_path: Path, remote: Remote) -> None:
    """Retries run out into the dead-letter list; the host's retry sends it when the gateway is back."""
    url = remote.script("/sms", *[Reply(503)] * 6)
    async with stage(tmp_path, sms_url=url, sms_token="tok") as s:
        phone = await sms_stage_phone(s)
        await phone.get(f"/r/{s.room_id}/buy/{s.product['id']}")
        dead = await eventually(lambda: _one(s, "unpaid-reminder", status="dead"), timeout=30)
        assert dead.attempts == 6
        async with s.host_http() as http:
            listed = await http.get(f"/api/rooms/{s.room_id}/followup/messages", params={"status": "dead"})
            assert [m["id"] for m in listed.json()["messages"]] == [dead.id]
            again = await http.post(f"/api/rooms/{s.room_id}/followup/messages/{dead.id}/retry")
            assert again.status_code == 200
            twice = await http.post(f"/api/rooms/{s.room_id}/followup/messages/{dead.id}/retry")
            # Only dead or failed messages can be retried (the first retry already rescheduled it).
            assert twice.status_code in (200, 409)
        sent = await eventually(lambda: _one(s, "unpaid-reminder", status="sent"))
        assert sent.id == dead.id
        await phone.aclose()


async def test_breaker_pauses_the_journey_and_tells_the_host(tmp_path: Path, remote: Remote) -> None:
    """Failures above the threshold pause the journey, store an alert and reach the host live."""
    url = remote.script("/sms", *[Reply(400)] * 10)
    async with stage(tmp_path, sms_url=url, sms_token="tok") as s:
        await s.settings(failure_pause_ratio=0.5)
        async with s.services.db.session() as session:
            from server.storage.followup import FollowupSettings

            row = await session.get(FollowupSettings, s.room_id)
            row.failure_min_sends = 2
            session.add(row)
            await session.commit()
        phones = [await sms_stage_phone(s) for _ in range(1)]
        second = await s.phone("second")
        await s.opt_in(second, phone="+8613900139000", consent={"sms": True}, wording="Texts.")
        phones.append(second)
        for phone in phones:
            await phone.get(f"/r/{s.room_id}/buy/{s.product['id']}")
        event = await s.host.recv_type("followup", timeout=15)
        while not event["data"]["alerts"]:
            event = await s.host.recv_type("followup", timeout=15)
        assert "paused itself" in event["data"]["alerts"][0]["text"]
        async with s.services.db.session() as session:
            journey = (await session.exec(select(Journey).where(Journey.key == "unpaid-reminder"))).one()
            alerts = (await session.exec(select(Alert))).all()
        assert journey.status == "paused" and "2 of its last 2" in (journey.paused_reason or "")
        assert len(alerts) == 1
        for phone in phones:
            await phone.aclose()
