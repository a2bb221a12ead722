"""Only configured channels are used: "auto" never picks one the sending process lacks, the phone's
opt-in box offers (and the server accepts) only what some delivering process can send, and each
process announces its channels while it runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import update
from sqlmodel import col, select

from server.followup import contacts, reach
from server.followup.channels.registry import close_all, make_channels
from server.followup.runner import Runner
from server.storage import Database, now_ms
from server.storage.followup import Contact, FollowupProcess
from tests.conftest import make_settings
from tests.followup.channels.conftest import LOOPBACK_ALLOWED
from tests.followup.flow import Stage, eventually, stage


async def _viewer_id(s: Stage, phone: object) -> str:
    r = await phone.post(f"/api/rooms/{s.room_id}/join", json={})  # type: ignore[attr-defined]
    viewer_id: str = r.json()["viewer_id"]
    return viewer_id


async def test_auto_never_picks_a_channel_this_server_lacks(tmp_path: Path) -> None:
    """A contact with SMS consent (given while SMS was configured) gets the reminder in-app on a server
    without an SMS gateway, instead of a message skipped as "sms is not configured"."""
    async with stage(tmp_path) as s:
        phone = await s.phone("Mei")
        viewer_id = await _viewer_id(s, phone)
        await contacts.identify(
            s.services.db,
            viewer_id=viewer_id,
            phone="+8613800138000",
            locale="en",
            says=[contacts.Say("sms", "granted", source="opt-in box", wording="Texts.")],
        )
        await phone.get(f"/r/{s.room_id}/buy/{s.product['id']}")
        message = await eventually(lambda: _final(s))
        assert (message.status, message.channel) == ("sent", "inapp"), message.reason
        await phone.aclose()


async def _final(s: Stage) -> object:
    for m in await s.messages(template="unpaid-reminder"):
        if m.status not in ("scheduled", "claimed", "sending"):
            return m
    return None


async def test_opt_in_takes_only_channels_some_process_can_send(tmp_path: Path) -> None:
    """With no SMTP and no SMS gateway the opt-in box's email and SMS are refused (422
    channel_not_configured, nothing recorded); once a worker with SMTP announces itself email is taken,
    and when that worker is no longer heard from it is refused again."""
    async with stage(tmp_path) as s:
        phone = await s.phone()
        url = f"/api/rooms/{s.room_id}/contact"
        base = {"lang": "en", "wording": "Remind me."}
        for body in (
            {"email": "li@example.com", "consent": {"email": True}},
            {"phone": "+8613800138000", "consent": {"sms": True}},
            {"email": "li@example.com"},  # an address without consent: the channel is still off
        ):
            r = await phone.post(url, json={**base, **body})
            assert (r.status_code, r.json()["error"]["code"]) == (422, "channel_not_configured"), body
            assert "is not configured on this server" in r.json()["error"]["message"]
        async with s.services.db.session() as session:
            assert (await session.exec(select(Contact))).all() == []

        db = s.services.db
        await reach.announce(db, "worker-1", ["email", "inapp", "push", "webhook"])
        answer = await s.opt_in(phone, email="li@example.com", consent={"email": True})
        assert answer["pending"] == ["email"]
        r = await phone.post(url, json={**base, "phone": "+8613800138000", "consent": {"sms": True}})
        assert r.json()["error"]["code"] == "channel_not_configured"  # the worker has no SMS either

        async with db.session() as session:
            await session.exec(
                update(FollowupProcess)
                .where(col(FollowupProcess.id) == "worker-1")
                .values(seen_ms=now_ms() - reach.FRESH_MS - 1000)
            )
            await session.commit()
        assert "email" not in await reach.configured(db, fresh=True)  # past the phone pages' short cache
        r = await phone.post(url, json={**base, "email": "mei@example.com", "consent": {"email": True}})
        assert r.json()["error"]["code"] == "channel_not_configured"
        await phone.aclose()


async def test_phone_and_console_see_the_configured_channels(tmp_path: Path) -> None:
    """The phone page has no email or phone field while neither is configured (it offers
    notifications alone); a worker's SMTP brings the email field, and the console's channels follow."""
    async with stage(tmp_path) as s, s.host_http() as host:
        phone = await s.phone()
        page = (await phone.get(f"/r/{s.room_id}")).text
        assert 'name="email"' not in page and 'name="phone"' not in page
        assert 'data-i18n="followup.box.lead_push"' in page and "data-push-off" not in page
        overview = (await host.get(f"/api/rooms/{s.room_id}/followup")).json()
        assert overview["channels"] == ["inapp", "push", "webhook"]

        await reach.announce(s.services.db, "worker-1", ["email", "inapp", "push", "webhook"])
        page = (await phone.get(f"/r/{s.room_id}")).text
        assert 'name="email"' in page and 'name="phone"' not in page
        assert 'data-i18n="followup.box.lead_email"' in page
        overview = (await host.get(f"/api/rooms/{s.room_id}/followup")).json()
        assert overview["channels"] == ["email", "inapp", "push", "webhook"]
        await phone.aclose()


async def test_a_process_announces_its_channels_while_it_runs(tmp_path: Path) -> None:
    """A follow-up loop announces its channels when it starts and withdraws them when it stops."""
    settings = make_settings(tmp_path, sms_url="http://127.0.0.1:9/sms", outbound_allow=LOOPBACK_ALLOWED)
    db = Database(f"sqlite:///{tmp_path / 'r.db'}")
    await asyncio.to_thread(db.migrate)
    runner = Runner(db, settings, make_channels(settings))
    assert await reach.configured(db, fresh=True) == frozenset()
    await runner.start()
    try:
        assert await reach.configured(db) == {"sms", "push", "webhook", "inapp"}
    finally:
        await runner.stop()
        await close_all(runner.channels)
    assert await reach.configured(db) == frozenset()
    await db.dispose()
