"""A viewer's private state in the welcome: the gathered quick read must say exactly what the full read
says, for a viewer with nothing and for a viewer with any one kind of state (then the full read runs)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from server.auth import Principal, Role
from server.domain import PersonalPart
from server.errors import Unauthorized
from server.rooms import snapshot
from server.services import Services
from server.storage import now_ms
from server.storage.followup import Contact, ContactViewer, Message
from server.storage.models import Claim, Discount, Draw, DrawEntry, DrawWinner, Follow, Item, Product, Vote
from tests.conftest import make_settings
from tests.helpers import Running, create_room, join, serve


@pytest.fixture(scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    async with serve(make_settings(tmp_path_factory.mktemp("personal"))) as running:
        yield running


def services_of(running: Running) -> Services:
    services: Services = running.app.state.services
    return services


async def full_read(services: Services, principal: Principal) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in services.registry.personal:
        await part.read(services, principal, out)
    return out


def count_full_reads(monkeypatch: pytest.MonkeyPatch, services: Services) -> list[str]:
    calls: list[str] = []
    counted = []
    for part in services.registry.personal:

        async def read(
            services: Services, principal: Principal, out: dict[str, Any], part: Any = part
        ) -> None:
            calls.append(principal.viewer_id or "")
            await part.read(services, principal, out)

        counted.append(PersonalPart(read, part.has_state, part.empty))
    monkeypatch.setattr(services.registry, "personal", tuple(counted))
    return calls


async def test_a_viewer_with_nothing_gets_the_quick_answer_and_it_equals_the_full_read(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = services_of(running)
    room = await create_room(running)
    viewer = await join(running.base, room["id"], "Ann")
    principal = Principal(Role.VIEWER, room["id"], viewer["viewer_id"])
    full = await full_read(services, principal)
    calls = count_full_reads(monkeypatch, services)
    quick = await snapshot.personal(services, principal)
    assert calls == []  # answered without any part's own read
    assert quick == full
    assert quick["joined_ms"] is not None and quick["following"] is False


async def test_a_storm_of_welcomes_is_read_in_a_few_gathered_queries(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = services_of(running)
    room = await create_room(running)
    viewers = [await join(running.base, room["id"], f"v{i}") for i in range(40)]
    reader = snapshot._quick_reader(services.db, services.registry.personal)
    batches: list[int] = []
    fetch = reader.fetch

    async def counting(keys: set[tuple[str, str]]) -> Any:
        batches.append(len(keys))
        return await fetch(keys)

    monkeypatch.setattr(reader, "fetch", counting)
    principals = [Principal(Role.VIEWER, room["id"], v["viewer_id"]) for v in viewers]
    answers = await asyncio.gather(*(snapshot.personal(services, p) for p in principals))
    assert sum(batches) == 40 and len(batches) <= 2
    for principal, answer in zip(principals, answers, strict=True):
        assert answer == await full_read(services, principal)


async def _item(session: AsyncSession, room_id: str, viewer_id: str, _other: str) -> None:
    session.add(Item(room_id=room_id, viewer_id=viewer_id, kind="question", text="q?", created_ms=now_ms()))


async def _hidden_item(session: AsyncSession, room_id: str, viewer_id: str, _other: str) -> None:
    session.add(
        Item(
            room_id=room_id,
            viewer_id=viewer_id,
            kind="comment",
            text="x",
            status="hidden",
            created_ms=now_ms(),
        )
    )


async def _vote(session: AsyncSession, room_id: str, viewer_id: str, other: str) -> None:
    item = Item(room_id=room_id, viewer_id=other, kind="question", text="q?", created_ms=now_ms())
    session.add(item)
    await session.flush()
    assert item.id is not None
    session.add(Vote(item_id=item.id, viewer_id=viewer_id, created_ms=now_ms()))


async def _follow(session: AsyncSession, room_id: str, viewer_id: str, _other: str) -> None:
    session.add(Follow(room_id=room_id, viewer_id=viewer_id, created_ms=now_ms()))


async def _claim(session: AsyncSession, room_id: str, viewer_id: str, _other: str) -> None:
    t = now_ms()
    product = Product(room_id=room_id, name="Tea", price_minor=1000, created_ms=t)
    session.add(product)
    await session.flush()
    assert product.id is not None
    discount = Discount(
        room_id=room_id,
        product_id=product.id,
        price_minor=800,
        list_price_minor=1000,
        currency="CNY",
        quantity=5,
        claimed=1,
        starts_ms=t,
        ends_ms=t + 60_000,
        created_ms=t,
    )
    session.add(discount)
    await session.flush()
    assert discount.id is not None
    session.add(
        Claim(
            discount_id=discount.id,
            room_id=room_id,
            viewer_id=viewer_id,
            code=f"C{viewer_id[:10]}",
            price_minor=800,
            created_ms=t,
            expires_ms=t + 900_000,
        )
    )


async def _draw(session: AsyncSession, room_id: str) -> int:
    t = now_ms()
    draw = Draw(
        room_id=room_id,
        code=f"d{t % 10**9}{id(session) % 1000}",
        title="Draw",
        mode="join",
        tiers="[]",
        seed="00",
        seed_sha256="00",
        created_ms=t,
        closes_ms=t + 60_000,
    )
    session.add(draw)
    await session.flush()
    assert draw.id is not None
    return draw.id


async def _draw_entry(session: AsyncSession, room_id: str, viewer_id: str, _other: str) -> None:
    draw_id = await _draw(session, room_id)
    session.add(DrawEntry(draw_id=draw_id, viewer_id=viewer_id, entrant="E1", created_ms=now_ms()))


async def _draw_win(session: AsyncSession, room_id: str, viewer_id: str, _other: str) -> None:
    draw_id = await _draw(session, room_id)
    session.add(
        DrawWinner(draw_id=draw_id, place=1, tier=0, viewer_id=viewer_id, entrant="E1", created_ms=now_ms())
    )


async def _contact(session: AsyncSession, _room_id: str, viewer_id: str, _other: str) -> None:
    t = now_ms()
    contact = Contact(id=f"k{viewer_id[:20]}", email="ann@example.com", created_ms=t, updated_ms=t)
    session.add(contact)
    session.add(ContactViewer(viewer_id=viewer_id, contact_id=contact.id, created_ms=t))


async def _inapp(session: AsyncSession, room_id: str, viewer_id: str, _other: str) -> None:
    t = now_ms()
    session.add(
        Message(
            idem_key=f"t:{viewer_id}",
            room_id=room_id,
            viewer_id=viewer_id,
            channel="inapp",
            template="x",
            status="sent",
            subject="Hi",
            body="Hello",
            next_ms=t,
            created_ms=t,
            sent_ms=t,
        )
    )


Make = Callable[[AsyncSession, str, str, str], Awaitable[None]]


@pytest.mark.parametrize(
    "make",
    [_item, _hidden_item, _vote, _follow, _claim, _draw_entry, _draw_win, _contact, _inapp],
    ids=lambda f: f.__name__.strip("_"),
)
async def test_a_viewer_with_any_private_state_gets_the_full_read(
    running: Running, monkeypatch: pytest.MonkeyPatch, make: Make
) -> None:
    services = services_of(running)
    room = await create_room(running)
    viewer = await join(running.base, room["id"], "Ann")
    other = await join(running.base, room["id"], "Bob")
    async with services.db.session() as session:
        await make(session, room["id"], viewer["viewer_id"], other["viewer_id"])
        await session.commit()
    principal = Principal(Role.VIEWER, room["id"], viewer["viewer_id"])
    calls = count_full_reads(monkeypatch, services)
    got = await snapshot.personal(services, principal)
    assert calls, "the quick read answered for a viewer who has private state"
    assert got == await full_read(services, principal)
    # The other viewer has nothing of their own here, so they still get the quick answer.
    calls.clear()
    if make is not _vote:
        await snapshot.personal(services, Principal(Role.VIEWER, room["id"], other["viewer_id"]))
        assert calls == []


async def test_the_private_part_names_the_viewer_and_refuses_an_unknown_one(running: Running) -> None:
    services = services_of(running)
    room = await create_room(running)
    viewer = await join(running.base, room["id"], "Ann 小明")
    me = await snapshot.private_parts(services, Principal(Role.VIEWER, room["id"], viewer["viewer_id"]))
    assert me == {"me": {"id": viewer["viewer_id"], "name": "Ann 小明"}}
    with pytest.raises(Unauthorized):
        await snapshot.private_parts(services, Principal(Role.VIEWER, room["id"], "no-such-viewer"))
