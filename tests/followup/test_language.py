"""Messages are written in the recipient's language: a viewer without a contact gets the language
their phone shows the room in, which the server keeps from the join, the page and a switch."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlmodel import select

from server.followup import contacts
from server.storage.followup import Message
from server.storage.models import Viewer
from tests.followup.flow import Stage, eventually, stage


async def _phone(s: Stage, name: str, lang: str) -> tuple[httpx.AsyncClient, str]:
    http = httpx.AsyncClient(base_url=s.running.base)
    r = await http.post(f"/api/rooms/{s.room_id}/join", json={"name": name, "lang": lang})
    assert r.status_code == 200, r.text
    return http, r.json()["viewer_id"]


async def _locale(s: Stage, viewer_id: str) -> str | None:
    async with s.services.db.session() as session:
        viewer = await session.get(Viewer, viewer_id)
    assert viewer is not None
    return viewer.locale


async def _sent_to(s: Stage, viewer_id: str) -> Message | None:
    async with s.services.db.session() as session:
        rows = await session.exec(
            select(Message).where(Message.viewer_id == viewer_id, Message.template == "unpaid-reminder")
        )
        return next((m for m in rows.all() if m.status == "sent"), None)


async def test_an_in_app_message_is_in_the_viewers_language(tmp_path: Path) -> None:
    """Two viewers without a contact click buy: the one whose phone shows English gets the English
    reminder in-app, the one in Chinese the Chinese one."""
    async with stage(tmp_path) as s:
        english, en_id = await _phone(s, "Tom", "en")
        chinese, zh_id = await _phone(s, "小红", "zh-CN")
        for phone in (english, chinese):
            await phone.get(f"/r/{s.room_id}/buy/{s.product['id']}")
        to_en = await eventually(lambda: _sent_to(s, en_id))
        to_zh = await eventually(lambda: _sent_to(s, zh_id))
        assert (to_en.channel, to_en.contact_id, to_zh.channel) == ("inapp", None, "inapp")
        assert to_en.subject == "Jasmine tea 茉莉花茶 is still waiting for you"
        assert to_zh.subject == "Jasmine tea 茉莉花茶 还在等你"
        assert "you were about to buy" in (to_en.body or "")
        await english.aclose()
        await chinese.aclose()


async def test_the_viewers_language_is_kept_from_join_page_and_switch(tmp_path: Path) -> None:
    """The join's lang is kept (a bad one is a 422), a join without it keeps what is known, the page
    shown in a language keeps that one, and a new phone's first guess is its Accept-Language."""
    async with stage(tmp_path) as s:
        url = f"/api/rooms/{s.room_id}/join"
        phone, viewer_id = await _phone(s, "Mei", "zh-CN")
        assert await _locale(s, viewer_id) == "zh-CN"
        r = await phone.post(url, json={"lang": "fr"})
        assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid")
        assert "lang must be one of en, zh-CN" in r.json()["error"]["message"]
        await phone.post(url, json={})  # no lang, no Accept-Language: what is known stays
        assert await _locale(s, viewer_id) == "zh-CN"
        await phone.post(url, json={"lang": "en"})  # the phone switched language
        assert await _locale(s, viewer_id) == "en"
        assert (await phone.get(f"/r/{s.room_id}?lang=zh-CN")).status_code == 200
        assert await _locale(s, viewer_id) == "zh-CN"
        async with httpx.AsyncClient(base_url=s.running.base, headers={"accept-language": "zh-TW"}) as new:
            fresh = (await new.post(url, json={"name": "Lin"})).json()["viewer_id"]
        assert await _locale(s, fresh) == "zh-CN"
        await phone.aclose()


async def test_a_contact_left_without_a_language_takes_the_phones(tmp_path: Path) -> None:
    """A contact created by a form that does not say its language (a prize claim) is written to in
    the language the viewer's phone shows, not the default."""
    async with stage(tmp_path) as s:
        phone, viewer_id = await _phone(s, "Tom", "en")
        contact, _ = await contacts.identify(s.services.db, viewer_id=viewer_id, email="tom@example.com")
        assert contact.locale == "en"
        await phone.aclose()
