"""Go-live reminders (预约直播): tapped on a scheduled room's phone page, sent once when it goes live,
on the channel the viewer consented to (a real SMTP server), else in-app."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from sqlmodel import select

from server.storage.accounts import Reminder
from tests.followup.channels.conftest import Smtp, smtp_server  # noqa: F401 (the fixture)
from tests.followup.flow import Stage, eventually, stage
from tests.followup.test_flow import EMAIL, confirmed_contact, smtp_settings


async def _live_messages(s: Stage) -> list[object]:
    return [m for m in await s.messages(room_id=s.room_id) if m.idem_key.startswith("live:")]


async def _cycle(s: Stage) -> None:
    """The host goes live (and, to start again later, ends)."""
    ack = await s.host.request("room.start")
    assert ack["type"] == "ack", ack


async def test_reminder_email_arrives_once(tmp_path: Path, smtp_server: Callable[..., Smtp]) -> None:  # noqa: F811
    """A viewer with a confirmed email taps remind; going live sends one email with the room's
    link, and starting again after an end sends nothing more."""
    smtp = smtp_server()
    async with stage(tmp_path, **smtp_settings(smtp)) as s:
        phone = await confirmed_contact(s, smtp)
        r = await phone.post(f"/api/rooms/{s.room_id}/reminder")
        assert r.status_code == 200, r.text
        assert r.json()["consented"] == ["email"]
        await _cycle(s)

        def mails() -> list[object]:
            return [d for d in smtp.sink.delivered if EMAIL in d.rcpt_tos and "live" in d.message["Subject"]]

        async def arrived() -> list[object]:
            return mails()

        mail = await eventually(arrived)
        assert len(mail) == 1
        body = mail[0].message.get_body(("plain",)).get_content()  # type: ignore[attr-defined]
        assert "Test room is live now" in body and "http" in body
        [message] = await _live_messages(s)
        assert message.channel == "email" and message.transactional  # type: ignore[attr-defined]
        async with s.services.db.session() as session:
            [reminder] = (await session.exec(select(Reminder))).all()
        assert reminder.sent_ms is not None

        assert (await s.host.request("room.end"))["type"] == "ack"
        await _cycle(s)
        await asyncio.sleep(0.5)
        assert len(mails()) == 1
        assert len(await _live_messages(s)) == 1
        await phone.aclose()


async def test_viewer_without_contact_gets_in_app(tmp_path: Path) -> None:
    """A viewer who left no address is reminded in the app (the inbox)."""
    async with stage(tmp_path) as s:
        phone = await s.phone()
        r = await phone.post(f"/api/rooms/{s.room_id}/reminder")
        assert r.status_code == 200 and r.json()["consented"] == []
        await _cycle(s)

        async def sent() -> list[object]:
            return [m for m in await _live_messages(s) if m.status == "sent"]  # type: ignore[attr-defined]

        [message] = await eventually(sent)
        assert message.channel == "inapp" and "Test room" in (message.body or "")  # type: ignore[attr-defined]
        await phone.aclose()


async def test_reminder_on_a_live_room_is_refused(tmp_path: Path) -> None:
    """Only a scheduled room takes reminders (409 not_scheduled)."""
    async with stage(tmp_path) as s:
        phone = await s.phone()
        await _cycle(s)
        r = await phone.post(f"/api/rooms/{s.room_id}/reminder")
        assert r.status_code == 409 and r.json()["error"]["code"] == "not_scheduled", r.text
        await phone.aclose()


async def test_second_tap_is_idempotent_and_cancel_works(tmp_path: Path) -> None:
    """Tapping twice keeps one reminder; cancelling removes it; the state route says so."""
    async with stage(tmp_path) as s:
        phone = await s.phone()
        url = f"/api/rooms/{s.room_id}/reminder"
        assert (await phone.get(url)).json()["set"] is False
        for _ in range(2):
            assert (await phone.post(url)).status_code == 200
        async with s.services.db.session() as session:
            assert len((await session.exec(select(Reminder))).all()) == 1
        state = (await phone.get(url)).json()
        assert state["set"] is True and state["status"] == "scheduled"
        assert (await phone.delete(url)).json()["set"] is False
        assert (await phone.get(url)).json()["set"] is False
        await phone.aclose()


async def test_reminder_needs_a_joined_viewer(tmp_path: Path) -> None:
    """No viewer cookie: 401."""
    async with stage(tmp_path) as s:
        import httpx

        async with httpx.AsyncClient(base_url=s.running.base) as http:
            r = await http.post(f"/api/rooms/{s.room_id}/reminder")
        assert r.status_code == 401
