"""The audit log's pages: console actions over the WebSocket and HTTP are recorded with their actor
(the account's email, or "host key"), session and category; an owner reads and filters them and
exports them as CSV; another organisation's entries never show; anyone else is refused."""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlmodel import select

from server.accounts.audit import Actor, AuditLog
from server.accounts.identity import STUDIO_COOKIE
from server.auth import MemberRole
from server.rooms.actions import create_room as do_create_room
from server.services import Services
from server.storage import Database, now_ms
from server.storage.accounts import DEFAULT_ORG, Account, AuditEntry, Membership, Organisation, StudioSession
from tests.helpers import Client, Running, create_room, join


@dataclass(frozen=True)
class Person:
    account_id: str
    email: str
    session_id: str


async def person(db: Database, role: MemberRole, org_id: str = DEFAULT_ORG) -> Person:
    """An account with ``role`` in the organisation and a live studio session."""
    now = now_ms()
    account_id, session_id = secrets.token_hex(8), secrets.token_hex(8)
    email = f"{role.value}-{account_id[:6]}@example.com"
    async with db.session() as session:
        session.add(Account(id=account_id, email=email, name=f"{role.value.title()} Li", created_ms=now))
        await session.flush()
        session.add(Membership(org_id=org_id, account_id=account_id, role=role.value, created_ms=now))
        session.add(
            StudioSession(
                id=session_id,
                account_id=account_id,
                created_ms=now,
                last_seen_ms=now,
                expires_ms=now + 3600_000,
            )
        )
        await session.commit()
    return Person(account_id, email, session_id)


def services_of(running: Running) -> Services:
    found: Services = running.app.state.services
    return found


def studio_client(running: Running, who: Person) -> httpx.AsyncClient:
    token = services_of(running).tokens.studio(who.session_id)
    return httpx.AsyncClient(base_url=running.base, cookies={STUDIO_COOKIE: token})


async def entries(running: Running) -> list[AuditEntry]:
    services = services_of(running)
    await services.engines.get(AuditLog).flushed()
    async with services.db.session() as session:
        return list((await session.exec(select(AuditEntry).order_by(AuditEntry.id))).all())  # type: ignore[arg-type]


async def ok(client: Client, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    ack = await client.request(kind, data)
    assert ack["type"] == "ack", ack
    result: dict[str, Any] = ack["data"]["result"]
    return result


@pytest.fixture
async def scene(running: Running) -> dict[str, Any]:
    """A room of the default organisation where a moderator (a member), the host key and the owner
    (a member) act over the WebSocket and HTTP, and another organisation with its own entry."""
    services = services_of(running)
    owner = await person(services.db, MemberRole.OWNER)
    moderator = await person(services.db, MemberRole.MODERATOR)
    room = await create_room(running, "Tea tasting")
    room_id = room["id"]
    key_console = await Client.connect(
        running.ws, "host", room_id, {"token": room["host_token"], "name": "Ann"}
    )
    mod_console = await Client.connect(
        running.ws, "host", room_id, {"token": services.tokens.member_host(room_id, moderator.session_id)}
    )
    viewer = await join(running.base, room_id, "Bo")
    phone = await Client.connect(running.ws, "viewer", room_id, {"token": viewer["token"]})
    item = await ok(phone, "item.submit", {"kind": "question", "text": "Is it organic?"})
    await ok(mod_console, "item.hide", {"id": item["id"]})
    product = await ok(
        key_console, "product.save", {"name": "Jasmine", "price_minor": 6800, "currency": "CNY", "stock": 5}
    )
    await ok(
        key_console,
        "discount.launch",
        {"product_id": product["id"], "percent_off": 10, "quantity": 2, "duration_secs": 60},
    )
    await ok(key_console, "draw.create", {"title": "Gift", "count": 1, "mode": "join"})
    async with httpx.AsyncClient(base_url=running.base) as http:
        r = await http.post(
            f"/api/rooms/{room_id}/host-key/rotate", headers={"authorization": f"Bearer {room['host_token']}"}
        )
        assert r.status_code == 200, r.text
        owner_token = services.tokens.member_host(room_id, owner.session_id)
        r = await http.put(
            f"/api/rooms/{room_id}/followup/settings",
            json={"cap_per_day": 2},
            headers={"authorization": f"Bearer {owner_token}"},
        )
        assert r.status_code == 200, r.text
    for c in (key_console, mod_console, phone):
        await c.close()
    # Another organisation, its owner, a room and an entry there.
    async with services.db.session() as session:
        session.add(Organisation(id="otherorg", name="Other shop", created_ms=now_ms()))
        await session.commit()
    other_owner = await person(services.db, MemberRole.OWNER, "otherorg")
    other_room, _key = await do_create_room(services.db, title="Elsewhere", org_id="otherorg")
    services.engines.get(AuditLog).record(
        Actor(other_owner.email, other_owner.account_id, other_owner.session_id),
        "discount.launch",
        "deals",
        room_id=other_room.id,
        detail={"secret": "other-org-only"},
    )
    await entries(running)
    return {"owner": owner, "moderator": moderator, "room_id": room_id, "other_owner": other_owner}


async def test_actions_are_recorded_with_actor_session_and_category(
    running: Running, scene: dict[str, Any]
) -> None:
    """WebSocket moderation, deal and draw actions, an HTTP key rotation and a follow-up settings
    change each leave one entry naming who, from which session, in which category."""
    by_action = {e.action: e for e in await entries(running)}
    moderator, owner = scene["moderator"], scene["owner"]
    hide = by_action["item.hide"]
    assert (hide.actor, hide.account_id, hide.session_id, hide.category) == (
        moderator.email,
        moderator.account_id,
        moderator.session_id,
        "moderation",
    )
    assert hide.org_id == DEFAULT_ORG and hide.room_id == scene["room_id"]
    for action, category in (
        ("discount.launch", "deals"),
        ("draw.create", "draws"),
        ("host_key.rotate", "access"),
    ):
        entry = next(
            e for e in await entries(running) if e.action == action and e.room_id == scene["room_id"]
        )
        assert (entry.actor, entry.account_id, entry.session_id, entry.category) == (
            "host key",
            None,
            None,
            category,
        )
    settings = by_action["followup.settings"]
    assert (settings.actor, settings.session_id, settings.category) == (
        owner.email,
        owner.session_id,
        "campaigns",
    )
    assert '"cap_per_day":2' in settings.detail


async def test_owner_reads_filters_and_pages(running: Running, scene: dict[str, Any]) -> None:
    """The page lists the organisation's entries newest first; filters narrow them."""
    async with studio_client(running, scene["owner"]) as http:
        page = await http.get("/studio/audit")
        assert page.status_code == 200, page.text
        text = page.text
        assert "item.hide" in text and "discount.launch" in text and "host_key.rotate" in text
        assert scene["moderator"].email in text and scene["moderator"].session_id[:8] in text
        assert "Tea tasting" in text
        assert text.index("followup.settings") < text.index("item.hide")  # newest first
        assert "other-org-only" not in text and "Elsewhere" not in text
        only = (await http.get("/studio/audit", params={"category": "moderation"})).text
        assert "item.hide" in only and "discount.launch" not in only
        mine = (await http.get("/studio/audit", params={"actor": scene["moderator"].account_id})).text
        assert "item.hide" in mine and "draw.create" not in mine
        keyed = (await http.get("/studio/audit", params={"actor": "host key", "action": "draw"})).text
        assert "draw.create" in keyed and "discount.launch" not in keyed
        today = (await http.get("/studio/audit", params={"from": "2000-01-01", "to": "2000-01-02"})).text
        assert "item.hide" not in today and "data-audit-empty" in today
        by_room = (await http.get("/studio/audit", params={"room": scene["room_id"]})).text
        assert "item.hide" in by_room


async def test_older_pages_by_id(running: Running, scene: dict[str, Any]) -> None:
    """More than a page of entries: the "older" link goes on where the page stopped."""
    log = services_of(running).engines.get(AuditLog)
    for i in range(120):
        log.record(Actor("host key"), f"bulk.{i:03d}", "show", room_id=scene["room_id"])
    await entries(running)
    async with studio_client(running, scene["owner"]) as http:
        first = (await http.get("/studio/audit", params={"action": "bulk."})).text
        assert "bulk.119" in first and "bulk.019" not in first and "data-audit-older" in first
        assert first.count("data-audit-id=") == 100
        before = first.split('data-audit-id="')[100].split('"')[0]
        older = (await http.get("/studio/audit", params={"action": "bulk.", "before": before})).text
        assert "bulk.019" in older and "bulk.000" in older and "bulk.020" not in older
        assert older.count("data-audit-id=") == 20 and "data-audit-older" not in older


async def test_csv_export(running: Running, scene: dict[str, Any]) -> None:
    """The export has a BOM, is an attachment, holds the filtered rows and nothing of another org."""
    async with studio_client(running, scene["owner"]) as http:
        r = await http.get("/studio/audit.csv")
        assert r.status_code == 200
        assert r.headers["content-disposition"].startswith("attachment;")
        assert r.content.startswith("\ufeff".encode())
        rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
        actions = {row["action"] for row in rows}
        assert {
            "item.hide",
            "discount.launch",
            "draw.create",
            "host_key.rotate",
            "followup.settings",
        } <= actions
        assert all(row["organisation"] == DEFAULT_ORG for row in rows)
        hide = next(row for row in rows if row["action"] == "item.hide")
        assert (
            hide["actor"] == scene["moderator"].email and hide["session_id"] == scene["moderator"].session_id
        )
        assert hide["room"] == "Tea tasting"
        deals = list(
            csv.DictReader(
                io.StringIO((await http.get("/studio/audit.csv?category=deals")).text.lstrip("\ufeff"))
            )
        )
        assert [row["action"] for row in deals] == ["discount.launch"]
    async with studio_client(running, scene["other_owner"]) as http:
        other = (await http.get("/studio/audit.csv")).text
        assert "other-org-only" in other and "item.hide" not in other


async def test_non_owners_are_refused(running: Running, scene: dict[str, Any]) -> None:
    """A moderator gets 403 on the page and the export; no studio session: sent to sign in."""
    async with studio_client(running, scene["moderator"]) as http:
        assert (await http.get("/studio/audit")).status_code == 403
        assert (await http.get("/studio/audit.csv")).status_code == 403
    async with httpx.AsyncClient(base_url=running.base) as http:
        r = await http.get("/studio/audit")
        assert r.status_code == 303 and r.headers["location"].startswith("/studio/signin")
        assert (await http.get("/studio/audit.csv")).status_code == 401
