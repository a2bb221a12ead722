"""What a review of follow-up found, each pinned by a test: goals stop messages already queued,
claims are exclusive on a shared SQLite file, long texts never cause a second send, campaigns
resume, the breaker restarts its count, templates are bounded, links are tracked only to own hosts,
an unsubscribe never lifts a block, and a squatted email is lost by the squatter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from server.errors import InvalidInput
from server.followup import contacts, delivery, instances, templates
from server.followup.contacts import Say
from server.followup.runner import Runner
from server.followup.store import ensure_room
from server.rooms.actions import create_room
from server.storage import Database, now_ms
from server.storage.followup import Campaign, Consent, Journey, JourneyInstance, Message
from tests.followup.channels.conftest import Smtp
from tests.followup.flow import UNREACHABLE, Stage, eventually, stage
from tests.followup.test_flow import confirmed_contact, smtp_settings


async def _one(s: Stage, template: str, status: str) -> Message | None:
    return next((m for m in await s.messages(template=template) if m.status == status), None)


async def test_goal_cancels_a_reminder_held_by_quiet_hours(
    tmp_path: Path, smtp_server: Callable[..., Smtp]
) -> None:
    """The journey finished queueing its reminder (held until morning); the payment still stops it."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    smtp = smtp_server()
    async with stage(tmp_path, **smtp_settings(smtp)) as s:
        phone = await confirmed_contact(s, smtp)
        local = datetime.now(ZoneInfo("Asia/Shanghai"))
        await s.settings(
            quiet_start=(local - timedelta(hours=1)).strftime("%H:%M"),
            quiet_end=(local + timedelta(hours=2)).strftime("%H:%M"),
        )
        async with s.host_http() as http:
            spec = {
                "key": "unpaid-reminder",
                "name": "No staleness",
                "entry": "product.buy",
                "key_by": "product_id",
                "goal": "order.paid",
                "steps": [{"send": {"channel": "email", "template": "unpaid-reminder"}}],
            }
            assert (
                await http.post(f"/api/rooms/{s.room_id}/followup/journeys", json=spec)
            ).status_code == 200
        await phone.get(f"/r/{s.room_id}/buy/{s.product['id']}")
        held = await eventually(lambda: _held(s))
        viewer_id = (await phone.post(f"/api/rooms/{s.room_id}/join", json={})).json()["viewer_id"]
        r = await s.shop("order.paid", {"order_id": "G-1", "viewer_id": viewer_id, "sku": "TEA-1"})
        assert r.status_code == 200
        cancelled = await eventually(lambda: _one(s, "unpaid-reminder", "cancelled"))
        assert cancelled.id == held.id and "order.paid" in (cancelled.reason or "")
        await phone.aclose()


async def _held(s: Stage) -> Message | None:
    found = await _one(s, "unpaid-reminder", "scheduled")
    return found if found is not None and found.reason == "quiet hours" else None


async def _seed_messages(db: Database, n: int) -> None:
    room, _ = await create_room(db, title="r")
    t = now_ms()
    async with db.session() as session:
        for i in range(n):
            session.add(
                Message(
                    idem_key=f"m{i}", room_id=room.id, channel="inapp", template="x", next_ms=t, created_ms=t
                )
            )
        await session.commit()


async def test_two_processes_on_one_sqlite_file_never_claim_the_same_message(tmp_path: Path) -> None:
    """Two engines on one SQLite file claim at once: every message is taken exactly once."""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    first, second = Database(url), Database(url)
    await asyncio.to_thread(first.migrate)
    await _seed_messages(first, 200)
    taken: list[int] = []
    for _ in range(10):
        a, b = await asyncio.gather(delivery.claim_due(first), delivery.claim_due(second))
        taken += [m.id for m in a + b if m.id is not None]
    assert sorted(taken) == sorted(set(taken)) and len(taken) == 200
    await first.dispose()
    await second.dispose()


async def test_long_texts_never_fail_the_record_of_a_send(tmp_path: Path) -> None:
    """A subject, reason and provider id longer than their columns are clipped, not an error."""
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    await asyncio.to_thread(db.migrate)
    await _seed_messages(db, 1)
    (message,) = await delivery.claim_due(db)
    outcome = delivery.Outcome("sent", "r" * 500, provider_id="p" * 500, subject="s" * 500, body="b")
    assert await delivery._finish(db, message, outcome)
    async with db.session() as session:
        row = (await session.exec(select(Message))).one()
    assert (row.status, len(row.subject or ""), len(row.provider_id or "")) == ("sent", 200, 200)
    await db.dispose()


async def test_a_crashed_campaign_filler_is_resumed(tmp_path: Path) -> None:
    """A campaign left 'sending' but not filled (its worker died) is filled by the next worker."""
    async with stage(tmp_path) as s:
        phone = await s.phone()
        async with s.services.db.session() as session:
            c = Campaign(
                room_id=s.room_id, name="c", segment="attended", channel="inapp", template="post-stream",
                send_ms=0, status="sending", lease_ms=1, created_ms=0,
            )  # fmt: skip
            session.add(c)
            await session.commit()
        s.services.engines.get(Runner).wake()
        done = await eventually(lambda: _campaign(s, "done"))
        assert done.populated and done.total == 1
        await phone.aclose()


async def _campaign(s: Stage, status: str) -> Campaign | None:
    async with s.services.db.session() as session:
        found: Campaign | None = (
            await session.exec(select(Campaign).where(Campaign.status == status))
        ).first()
        return found


async def test_resuming_a_journey_restarts_the_breakers_count(tmp_path: Path) -> None:
    """After the host resumes a journey the breaker only counts outcomes from then on."""
    async with stage(tmp_path) as s, s.host_http() as http:
        async with s.services.db.session() as session:
            journey = (await session.exec(select(Journey).where(Journey.key == "unpaid-reminder"))).one()
            for i in range(12):
                session.add(
                    Message(
                        idem_key=f"f{i}", room_id=s.room_id, journey_id=journey.id, channel="sms",
                        template="x", status="failed", next_ms=0, created_ms=now_ms(),
                    )
                )  # fmt: skip
            journey.status = "paused"
            session.add(journey)
            await session.commit()
        url = f"/api/rooms/{s.room_id}/followup/journeys/unpaid-reminder/status"
        assert (await http.post(url, json={"status": "active"})).status_code == 200
        runner = s.services.engines.get(Runner)
        settings = await _settings(s)
        await runner.deliverer._breaker(journey.id, s.room_id, settings)
        async with s.services.db.session() as session:
            assert (await session.get(Journey, journey.id)).status == "active"


async def _settings(s: Stage) -> object:
    async with s.services.db.session() as session:
        return await ensure_room(session, s.room_id)


@pytest.mark.parametrize(
    "body",
    [
        "{{ 'x' * 300000000 }}",
        "{{ 2 ** 100000 }}",
        "{% for i in range(100000) %}x{% endfor %}",
    ],
)
def test_templates_are_bounded_in_effort(body: str) -> None:
    """Repetition, powers and ranges beyond a message's size are refused at once."""
    with pytest.raises(InvalidInput):
        templates.render(None, body, {})


def test_no_loop_inside_a_loop() -> None:
    """Nested loops are refused when a template is saved."""
    with pytest.raises(InvalidInput, match="loop inside a loop"):
        templates.check(None, "{% for a in range(3) %}{% for b in range(3) %}x{% endfor %}{% endfor %}")


def test_only_own_links_are_tracked() -> None:
    """Links to the server or the shop become tracked redirects; any other link stays as typed."""
    text = "buy https://shop.example/tea or see https://evil.example/x"
    out = templates.rewrite_links(text, lambda url: "[T]", {"shop.example"})
    assert out == "buy [T] or see https://evil.example/x"


async def test_an_unsubscribe_does_not_lift_a_block(tmp_path: Path) -> None:
    """A blocked address stays blocked when an old unsubscribe link is used."""
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    await asyncio.to_thread(db.migrate)
    c, _ = await contacts.identify(db, viewer_id="va", email="li@example.com")
    await contacts.say(db, c.id, Say("email", "blocked", source="provider", reason="bounced"))
    await contacts.say(db, c.id, Say("email", "withdrawn", source="unsubscribe link", reason="unsubscribed"))
    async with db.session() as session:
        consent = (await session.exec(select(Consent))).one()
    assert (consent.status, consent.reason) == ("blocked", "bounced")
    await db.dispose()


async def test_typing_an_address_first_squats_nothing(tmp_path: Path) -> None:
    """The first to type an address without confirming it loses it to the one who confirms it."""
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    await asyncio.to_thread(db.migrate)
    squatter, _ = await contacts.identify(db, viewer_id="attacker", email="li@example.com")
    owner, pending = await contacts.identify(
        db, viewer_id="owner", email="li@example.com", says=[Say("email", "pending", source="box")]
    )
    assert pending == ["email"] and owner.id != squatter.id
    confirmed = await contacts.confirm_email(db, owner.id, "li@example.com")
    assert confirmed is not None and confirmed.id == owner.id
    async with db.session() as session:
        lost = await contacts.live(session, squatter.id)
        assert lost is not None and lost.id == squatter.id and lost.email is None
        assert (await contacts.contact_of_viewer(session, "attacker")).id == squatter.id  # type: ignore[union-attr]
    await db.dispose()


async def test_confirmations_are_limited_per_address(tmp_path: Path) -> None:
    """The opt-in box sends at most three confirmations a day to one address, whoever asks."""
    async with stage(tmp_path, smtp_url=UNREACHABLE["smtp_url"]) as s:
        answers = []
        for i in range(4):
            phone = await s.phone(f"p{i}")
            answers.append(await s.opt_in(phone, email="victim@example.com", consent={"email": True}))
            await phone.aclose()
        assert [a["confirmation_sent"] for a in answers] == [True, True, True, False]


async def test_instances_are_claimed_once(tmp_path: Path) -> None:
    """Two workers claiming due journey instances on one SQLite file never share one."""
    url = f"sqlite:///{tmp_path / 'i.db'}"
    first, second = Database(url), Database(url)
    await asyncio.to_thread(first.migrate)
    room, _ = await create_room(first, title="r")
    async with first.session() as session:
        await ensure_room(session, room.id)
        for i in range(100):
            session.add(
                JourneyInstance(journey_id=1, room_id=room.id, subject=f"v:{i}", wake_ms=0, created_ms=0)
            )
        await session.commit()
    t = now_ms()
    async with first.session() as a, second.session() as b:
        x, y = await asyncio.gather(
            instances._claim_due_instances(a, t), instances._claim_due_instances(b, t)
        )
    ids = [i.id for i in x + y]
    assert len(ids) == len(set(ids)) == 100
    await first.dispose()
    await second.dispose()


async def test_confirm_link_get_confirms_nothing(tmp_path: Path) -> None:
    """A mail scanner fetching the confirmation link does not confirm it; the button does."""
    async with stage(tmp_path, smtp_url=UNREACHABLE["smtp_url"]) as s:
        phone = await s.phone()
        answer = await s.opt_in(phone, email="li@example.com", consent={"email": True})
        links = s.services.engines.get(Runner).links
        assert answer["pending"] == ["email"]
        url = links.confirm(await _contact_id(s), "li@example.com")
        async with httpx.AsyncClient() as scanner:
            assert (await scanner.get(url)).status_code == 200
            async with s.services.db.session() as session:
                assert (await session.exec(select(Consent))).one().status == "pending"
            assert (await scanner.post(url)).status_code == 200
        async with s.services.db.session() as session:
            assert (await session.exec(select(Consent))).one().status == "granted"
        await phone.aclose()


async def _contact_id(s: Stage) -> str:
    async with s.services.db.session() as session:
        return (await session.exec(select(Consent))).one().contact_id
