"""The team API and page: adding, changing and removing members (never the last owner), per-room
overrides (which change what a member's console may do), refusals for non-owners, audit entries."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import websockets
from sqlmodel import col, select

from server.accounts import actions
from server.accounts.audit import AuditLog
from server.auth import MemberRole
from server.realtime.protocol import Close
from server.services import Services
from server.storage.accounts import AuditEntry, StudioSession
from server.storage.models import Room
from tests.accounts.conftest import TIMEOUT, Mailbox, mails_sent, make_person, new_email, services_of, sign_in
from tests.conftest import make_settings
from tests.helpers import Client, Running, create_room, serve


@contextlib.asynccontextmanager
async def owner_browser(running: Running, org: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A signed-in owner of ``org``: their browser and account id."""
    owner = await make_person(services_of(running), org=org, role=MemberRole.OWNER)
    async with httpx.AsyncClient(base_url=running.base, timeout=TIMEOUT) as browser:
        assert (await sign_in(browser, owner)).status_code == 303
        yield browser, owner.account.id


async def room_in(running: Running, org: str) -> str:
    services = services_of(running)
    await actions.ensure_org(services.db, org)
    room = await create_room(running, f"Room of {org}")
    async with services.db.session() as session:
        row = await session.get(Room, room["id"])
        assert row is not None
        row.org_id = org
        session.add(row)
        await session.commit()
    return room["id"]


async def test_an_owner_adds_changes_and_removes_a_member(
    studio: Running, mailbox: tuple[Mailbox, int]
) -> None:
    """POST adds by email (a new account without a password gets an invitation mail with a link to
    set one), PUT changes the role, DELETE removes; each change is a "roles" audit entry."""
    services = services_of(studio)
    base = "/api/studio/orgs/team-a/members"
    async with owner_browser(studio, "team-a") as (browser, _owner):
        mail = new_email("newbie")
        r = await browser.post(base, json={"email": mail, "name": "New Bie", "role": "moderator"})
        assert r.status_code == 201, r.text
        added = r.json()
        assert added["created"] and added["link"] is None  # mailed: SMTP is on
        assert added["member"]["role"] == "moderator" and not added["member"]["has_password"]
        account_id = added["member"]["account_id"]
        await mails_sent(studio)
        [invite] = mailbox[0].to(mail)
        assert "/studio/reset/" in invite.get_content() and "team-a" in invite["Subject"]
        again = await browser.post(base, json={"email": mail, "role": "host"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "member_exists"
        r = await browser.put(f"{base}/{account_id}", json={"role": "seller"})
        assert r.status_code == 200 and r.json()["old"] == "moderator"
        listing = (await browser.get(base)).json()
        assert {m["email"]: m["role"] for m in listing["members"]}[mail] == "seller"
        page = await browser.get("/studio/team")
        assert page.status_code == 200 and mail in page.text
        assert (await browser.delete(f"{base}/{account_id}")).status_code == 200
        assert mail not in [m["email"] for m in (await browser.get(base)).json()["members"]]
    await services.engines.get(AuditLog).flushed()
    async with services.db.session() as session:
        entries = (
            await session.exec(
                select(AuditEntry).where(
                    col(AuditEntry.org_id) == "team-a", col(AuditEntry.category) == "roles"
                )
            )
        ).all()
    changes = [(e.action, e.target, json.loads(e.detail)) for e in entries]
    assert changes == [
        ("member.add", mail, {"old": None, "new": "moderator"}),
        ("member.role", mail, {"old": "moderator", "new": "seller"}),
        ("member.remove", mail, {"old": "seller", "new": None}),
    ]


async def test_bad_input_is_refused_with_a_message(studio: Running) -> None:
    """A bad email or role: 422 with a code and a message."""
    async with owner_browser(studio, "team-b") as (browser, _owner):
        for body, code in (
            ({"email": "not-an-email", "role": "host"}, "bad_email"),
            ({"email": new_email(), "role": "emperor"}, "bad_role"),
        ):
            r = await browser.post("/api/studio/orgs/team-b/members", json=body)
            assert r.status_code == 422 and r.json()["error"]["code"] == code and r.json()["error"]["message"]


async def test_the_last_owner_stays(studio: Running) -> None:
    """The only owner can neither be demoted nor removed (409 last_owner); with a second owner, can."""
    services = services_of(studio)
    base = "/api/studio/orgs/team-c/members"
    async with owner_browser(studio, "team-c") as (browser, owner_id):
        r = await browser.put(f"{base}/{owner_id}", json={"role": "host"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "last_owner"
        r = await browser.delete(f"{base}/{owner_id}")
        assert r.status_code == 409 and r.json()["error"]["code"] == "last_owner"
        second = await make_person(services, org="team-c", role=MemberRole.OWNER)
        assert (await browser.put(f"{base}/{second.account.id}", json={"role": "host"})).status_code == 200
        await browser.put(f"{base}/{second.account.id}", json={"role": "owner"})
        assert (await browser.put(f"{base}/{owner_id}", json={"role": "host"})).status_code == 200


async def test_only_owners_manage_the_team(studio: Running) -> None:
    """A host of the organisation and an owner of another are refused (403); signed out: 401."""
    services = services_of(studio)
    await make_person(services, org="team-d", role=MemberRole.OWNER)
    host = await make_person(services, org="team-d", role=MemberRole.HOST)
    stranger = await make_person(services, org="team-elsewhere", role=MemberRole.OWNER)
    base = "/api/studio/orgs/team-d/members"
    for person in (host, stranger):
        async with httpx.AsyncClient(base_url=studio.base) as browser:
            await sign_in(browser, person)
            for method, body in (("GET", None), ("POST", {"email": new_email(), "role": "host"})):
                r = await browser.request(method, base, json=body)
                assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    async with httpx.AsyncClient(base_url=studio.base) as browser:
        await sign_in(browser, host)
        page = await browser.get("/studio/team")
        assert page.status_code == 403 and "data-team-forbidden" in page.text
        assert (await httpx.AsyncClient(base_url=studio.base).get(base)).status_code == 401


async def test_the_team_api_refuses_other_sites(studio: Running) -> None:
    """A change with a foreign Origin is refused (CSRF) even for an owner."""
    async with owner_browser(studio, "team-e") as (browser, _owner):
        r = await browser.post(
            "/api/studio/orgs/team-e/members",
            json={"email": new_email(), "role": "host"},
            headers={"origin": "https://evil.example"},
        )
    assert r.status_code == 403 and r.json()["error"]["code"] == "bad_origin"


async def member_token(services: Services, person_id: str, room_id: str, browser: httpx.AsyncClient) -> str:
    async with services.db.session() as session:
        [session_id] = (
            await session.exec(
                select(StudioSession.id).where(
                    col(StudioSession.account_id) == person_id, col(StudioSession.revoked_ms).is_(None)
                )
            )
        ).all()
    return services.tokens.member_host(room_id, session_id)


async def test_a_room_override_changes_what_the_console_may_do(studio: Running) -> None:
    """An analyst may not announce in a room; made host there, they may (and not in the org's other
    room); an open console of theirs closes when their role there changes; clearing the override
    brings the organisation role back."""
    services = services_of(studio)
    room, other_room = await room_in(studio, "team-f"), await room_in(studio, "team-f")
    analyst = await make_person(services, org="team-f", role=MemberRole.ANALYST)
    async with (
        owner_browser(studio, "team-f") as (browser, _owner),
        httpx.AsyncClient(base_url=studio.base) as theirs,
    ):
        await sign_in(theirs, analyst)
        token = await member_token(services, analyst.account.id, room, theirs)
        other_token = services.tokens.member_host(other_room, token_session(services, token))

        async def announce(room_id: str, with_token: str) -> int:
            r = await theirs.post(
                f"/api/rooms/{room_id}/announcements",
                json={"text": "hello"},
                headers={"authorization": f"Bearer {with_token}"},
            )
            return r.status_code

        assert await announce(room, token) == 403
        console = await Client.connect(studio.ws, "host", room, {"token": token})
        url = f"/api/studio/orgs/team-f/members/{analyst.account.id}/rooms/{room}"
        assert (await browser.put(url, json={"role": "host"})).status_code == 200
        frames: list[dict[str, object]] = []
        try:
            while True:
                frames.append(json.loads(await asyncio.wait_for(console.ws.recv(), TIMEOUT)))
        except websockets.ConnectionClosed:
            pass
        received = console.ws.protocol.close_rcvd
        assert received is not None and received.code == Close.UNAUTHORIZED
        assert await announce(room, token) == 201
        assert await announce(other_room, other_token) == 403
        listing = (await browser.get("/api/studio/orgs/team-f/members")).json()
        assert listing["overrides"] == [{"room_id": room, "account_id": analyst.account.id, "role": "host"}]
        bad = await browser.put(
            f"/api/studio/orgs/team-f/members/{analyst.account.id}/rooms/nope", json={"role": "host"}
        )
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_room"
        assert (await browser.delete(url)).status_code == 200
        assert await announce(room, token) == 403


def token_session(services: Services, token: str) -> str:
    """The studio session a member console token is bound to."""
    data = services.tokens._host.loads(token)
    session_id: str = data["s"]
    return session_id


async def test_without_mail_a_new_member_gets_a_link_to_pass_on(tmp_path: Path) -> None:
    """SMTP off: adding someone new answers a one-time link (valid once) that lets them set a
    password and sign in."""
    async with (
        serve(make_settings(tmp_path)) as running,
        owner_browser(running, "team-g") as (browser, _owner),
        httpx.AsyncClient(base_url=running.base) as newcomer,
    ):
        mail = new_email()
        r = await browser.post("/api/studio/orgs/team-g/members", json={"email": mail, "role": "host"})
        link = r.json()["link"]
        assert link.startswith(f"{running.base}/studio/reset/")
        path = link.removeprefix(running.base)
        password = "newcomer password 1"
        done = await newcomer.post(path, data={"password": password, "password2": password})
        assert done.status_code == 303
        assert (await newcomer.get("/studio/sessions")).status_code == 200
        assert (
            await newcomer.post(path, data={"password": password, "password2": password})
        ).status_code == 401
