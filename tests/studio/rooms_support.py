"""What the studio rooms tests share: people with a role and a live studio session, rooms in an
organisation, and HTTP clients signed in to the studio."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from server.accounts.identity import STUDIO_COOKIE
from server.auth import MemberRole
from server.rooms.actions import create_room
from server.rooms.wire import ProductSeed
from server.services import Services
from server.storage import now_ms
from server.storage.accounts import DEFAULT_ORG, Account, Membership, Organisation, StudioSession
from server.storage.models import Room
from tests.helpers import Running


@dataclass(frozen=True)
class Person:
    account_id: str
    email: str
    session_id: str


def services_of(running: Running) -> Services:
    found: Services = running.app.state.services
    return found


async def organisation(running: Running, org_id: str) -> str:
    async with services_of(running).db.session() as session:
        session.add(Organisation(id=org_id, name=org_id.title(), created_ms=now_ms()))
        await session.commit()
    return org_id


async def person(running: Running, role: MemberRole | None, org_id: str = DEFAULT_ORG) -> Person:
    """An account with ``role`` in the organisation (None: in none) and a live studio session."""
    now = now_ms()
    account_id, session_id = secrets.token_hex(8), secrets.token_hex(8)
    email = f"{role or 'nobody'}-{account_id[:6]}@example.com"
    async with services_of(running).db.session() as session:
        session.add(Account(id=account_id, email=email, name="Li", created_ms=now))
        await session.flush()
        if role is not None:
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


def studio(running: Running, who: Person) -> httpx.AsyncClient:
    """An HTTP client signed in to the studio as ``who``."""
    token = services_of(running).tokens.studio(who.session_id)
    return httpx.AsyncClient(base_url=running.base, cookies={STUDIO_COOKIE: token}, timeout=30)


async def room_in(
    running: Running,
    title: str = "Spring sale",
    org_id: str = DEFAULT_ORG,
    products: Sequence[ProductSeed] = (),
    **fields: object,
) -> Room:
    room, _key = await create_room(
        services_of(running).db,
        title=title,
        org_id=org_id,
        products=products,
        **fields,  # type: ignore[arg-type]
    )
    return room
