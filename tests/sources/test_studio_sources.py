"""The studio's Sources API: a room admin or a marketer lists, makes and archives a room's entry
links; a moderator is refused; bad input is 422; every change is audited."""

from __future__ import annotations

import asyncio

import httpx
from sqlmodel import select

from server.auth import MemberRole
from server.storage.accounts import AuditEntry
from tests.helpers import Running
from tests.studio.rooms_support import person, room_in, services_of, studio


async def test_a_marketer_makes_lists_and_archives_sources(running: Running) -> None:
    """Create (201 with link and QR), list, archive: the archived code no longer counts on a join."""
    room = await room_in(running)
    marketer = await person(running, MemberRole.MARKETER)
    async with studio(running, marketer) as http:
        made = await http.post(
            f"/api/studio/rooms/{room.id}/sources",
            json={"label": "WeChat group A", "channel": "wechat_group"},
        )
        assert made.status_code == 201, made.text
        source = made.json()
        code = source["code"]
        assert source["link"].endswith(f"/r/{room.id}?src={code}") and source["archived"] is False
        assert source["qr"] == f"/r/{room.id}/qr.svg?src={code}"
        listed = (await http.get(f"/api/studio/rooms/{room.id}/sources")).json()
        assert [s["code"] for s in listed["sources"]] == [code] and "kol" in listed["channels"]
        joined = await http.post(f"/api/rooms/{room.id}/join", json={"src": code})
        gone = await http.delete(f"/api/studio/rooms/{room.id}/sources/{code}")
        assert gone.status_code == 200 and gone.json()["archived"] is True
    async with httpx.AsyncClient(base_url=running.base) as phone:  # a new phone scans the old poster
        later = await phone.post(f"/api/rooms/{room.id}/join", json={"src": code})
    from tests.sources.support import attendance

    assert (await attendance(running, room.id, joined.json()["viewer_id"])).last_ref == code
    assert (await attendance(running, room.id, later.json()["viewer_id"])).last_ref is None
    for _ in range(100):  # the audit log is written behind
        async with services_of(running).db.session() as session:
            actions = (
                await session.exec(select(AuditEntry.action).where(AuditEntry.room_id == room.id))
            ).all()
        if {"source.create", "source.archive"} <= set(actions):
            break
        await asyncio.sleep(0.05)
    assert {"source.create", "source.archive"} <= set(actions)


async def test_a_moderator_is_refused_and_bad_input_is_422(running: Running) -> None:
    """A moderator may neither list nor make sources (403); a bad channel or label is 422."""
    room = await room_in(running)
    moderator = await person(running, MemberRole.MODERATOR)
    owner = await person(running, MemberRole.OWNER)
    async with studio(running, moderator) as http:
        assert (await http.get(f"/api/studio/rooms/{room.id}/sources")).status_code == 403
        body = {"label": "Poster", "channel": "poster"}
        assert (await http.post(f"/api/studio/rooms/{room.id}/sources", json=body)).status_code == 403
    async with studio(running, owner) as http:
        bad = await http.post(f"/api/studio/rooms/{room.id}/sources", json={"label": "X", "channel": "tv"})
        assert bad.status_code == 422 and "channel" in bad.json()["error"]["message"]
        long = await http.post(
            f"/api/studio/rooms/{room.id}/sources", json={"label": "x" * 81, "channel": "kol"}
        )
        assert long.status_code == 422
        missing = await http.delete(f"/api/studio/rooms/{room.id}/sources/NOSUCH")
        assert missing.status_code == 404
