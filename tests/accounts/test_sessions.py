"""Studio sessions: listed, revoked (one, all others, a member's by an owner), signing out; a
revoked session is refused at its next request and its open consoles close within a second."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import websockets
from sqlmodel import col, select

from server.accounts.audit import AuditLog
from server.auth import MemberRole
from server.realtime.protocol import Close
from server.rooms.access import REVOCATION_SWEEP_SECS
from server.storage.accounts import AuditEntry
from server.storage.models import Room
from tests.accounts.conftest import TIMEOUT, make_person, services_of, sign_in
from tests.helpers import Client, Running, create_room


def session_ids(page: str) -> list[str]:
    return [part.split('"')[0] for part in page.split('data-session="')[1:]]


def this_session(page: str) -> str:
    """The id of the row marked "this browser"."""
    [row] = [
        part for part in page.split('data-session="')[1:] if "data-this-browser" in part.split("</tr>")[0]
    ]
    return row.split('"')[0]


async def test_sessions_are_listed_with_this_browser_marked(studio: Running) -> None:
    """Two browsers signed in: both listed, this one marked."""
    person = await make_person(services_of(studio))
    async with (
        httpx.AsyncClient(base_url=studio.base) as one,
        httpx.AsyncClient(base_url=studio.base) as two,
    ):
        await sign_in(one, person)
        await sign_in(two, person)
        page = await one.get("/studio/sessions")
    assert page.status_code == 200
    assert len(session_ids(page.text)) == 2
    assert page.text.count("data-this-browser") == 1


async def test_a_revoked_session_is_refused_at_its_next_request(studio: Running) -> None:
    """Revoking another browser's session: that browser is sent to sign in; this one stays."""
    person = await make_person(services_of(studio))
    async with (
        httpx.AsyncClient(base_url=studio.base) as one,
        httpx.AsyncClient(base_url=studio.base) as two,
    ):
        await sign_in(one, person)
        await sign_in(two, person)
        theirs = this_session((await two.get("/studio/sessions")).text)
        r = await one.post(f"/studio/sessions/{theirs}/revoke")
        assert r.status_code == 303 and r.headers["location"] == "/studio/sessions?revoked=1"
        assert (await one.get("/studio/sessions")).status_code == 200
        refused = await two.get("/studio/sessions")
        assert refused.status_code == 303 and refused.headers["location"].startswith("/studio/signin")
        assert theirs not in session_ids((await one.get("/studio/sessions")).text)


async def test_revoking_all_others_keeps_this_one(studio: Running) -> None:
    """ "Sign out all other sessions": the other browsers are signed out, this one is not."""
    person = await make_person(services_of(studio))
    async with (
        httpx.AsyncClient(base_url=studio.base) as one,
        httpx.AsyncClient(base_url=studio.base) as two,
        httpx.AsyncClient(base_url=studio.base) as three,
    ):
        for client in (one, two, three):
            await sign_in(client, person)
        r = await one.post("/studio/sessions/others/revoke")
        assert r.status_code == 303
        assert (await one.get("/studio/sessions")).status_code == 200
        assert (await two.get("/studio/sessions")).status_code == 303
        assert (await three.get("/studio/sessions")).status_code == 303


async def test_signing_out_revokes_the_session_and_clears_the_cookie(studio: Running) -> None:
    """POST /studio/signout: the cookie is cleared and the session cannot be used again (a copy of
    the cookie is refused too)."""
    person = await make_person(services_of(studio), org="signout-org")
    async with httpx.AsyncClient(base_url=studio.base) as browser:
        await sign_in(browser, person)
        copy = dict(browser.cookies)
        r = await browser.post("/studio/signout")
        assert r.status_code == 303 and r.headers["location"] == "/studio/signin"
        assert 'lw_studio=""' in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]
    async with httpx.AsyncClient(base_url=studio.base, cookies=copy) as thief:
        assert (await thief.get("/studio/sessions")).status_code == 303
    services = services_of(studio)
    await services.engines.get(AuditLog).flushed()
    async with services.db.session() as session:
        actions = (
            await session.exec(
                select(AuditEntry.action).where(col(AuditEntry.account_id) == person.account.id)
            )
        ).all()
    assert sorted(actions) == ["signin", "signout"]


async def test_an_owner_sees_and_revokes_a_members_session(studio: Running) -> None:
    """An owner lists the sessions of their organisation's members and may revoke them; a member
    may not revoke the owner's (404, as for a session that does not exist)."""
    services = services_of(studio)
    owner = await make_person(services, org="sess-org", role=MemberRole.OWNER)
    member = await make_person(services, org="sess-org", role=MemberRole.ANALYST)
    async with (
        httpx.AsyncClient(base_url=studio.base) as boss,
        httpx.AsyncClient(base_url=studio.base) as staff,
    ):
        await sign_in(boss, owner)
        await sign_in(staff, member)
        [staff_session] = session_ids((await staff.get("/studio/sessions")).text)
        page = (await boss.get("/studio/sessions")).text
        assert staff_session in session_ids(page) and member.email in page
        [boss_session] = [s for s in session_ids(page) if s != staff_session]
        refused = await staff.post(f"/studio/sessions/{boss_session}/revoke")
        assert refused.status_code == 404
        assert (await boss.post(f"/studio/sessions/{staff_session}/revoke")).status_code == 303
        assert (await staff.get("/studio/sessions")).status_code == 303
        assert (await boss.get("/studio/sessions")).status_code == 200


async def test_a_revoked_members_console_closes_within_a_second(studio: Running) -> None:
    """A member's console opened with their studio session is closed (``revoked``, 4001) by the
    rooms' sweep within REVOCATION_SWEEP_SECS of signing out elsewhere."""
    services = services_of(studio)
    room = await create_room(studio, "Member console")
    async with services.db.session() as session:
        org = (await session.get(Room, room["id"])).org_id  # type: ignore[union-attr]
    host = await make_person(services, org=org, role=MemberRole.HOST)
    async with httpx.AsyncClient(base_url=studio.base) as browser:
        await sign_in(browser, host)
        [session_id] = session_ids((await browser.get("/studio/sessions")).text)
        token = services.tokens.member_host(room["id"], session_id)
        console = await Client.connect(studio.ws, "host", room["id"], {"token": token})
        started = time.monotonic()
        assert (await browser.post("/studio/signout")).status_code == 303
        frames: list[dict[str, object]] = []
        try:
            while True:
                frames.append(json.loads(await asyncio.wait_for(console.ws.recv(), TIMEOUT)))
        except websockets.ConnectionClosed:
            pass
    elapsed = time.monotonic() - started
    received = console.ws.protocol.close_rcvd
    assert received is not None and received.code == Close.UNAUTHORIZED
    assert [f["data"]["code"] for f in frames if f["type"] == "error"] == ["revoked"]  # type: ignore[index]
    assert elapsed < REVOCATION_SWEEP_SECS + 1
