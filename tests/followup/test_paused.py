"""Entries that reach a paused journey: held and let in on resume (waits from the resume, a goal
reached meanwhile keeps them out), or skipped and listed; released once whatever the workers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from server.followup import journeys
from server.followup.runner import Runner
from server.followup.store import ensure_room
from server.rooms.actions import create_room
from server.storage import Database, now_ms
from server.storage.followup import Journey, JourneyInstance, PausedEntry
from server.storage.models import IntentEvent, Viewer
from tests.followup.flow import Stage, eventually, stage

JOURNEY = "unpaid-reminder"  # clicked buy (keyed by product), 30 minutes, then a reminder; goal: paid


async def _status(s: Stage, body: dict[str, Any], key: str = JOURNEY) -> dict[str, Any]:
    async with s.host_http() as http:
        r = await http.post(f"/api/rooms/{s.room_id}/followup/journeys/{key}/status", json=body)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def _journey(s: Stage) -> dict[str, Any]:
    async with s.host_http() as http:
        overview = (await http.get(f"/api/rooms/{s.room_id}/followup")).json()
    found: dict[str, Any] = next(j for j in overview["journeys"] if j["key"] == JOURNEY)
    return found


async def _entries(s: Stage, status: str | None = None) -> list[PausedEntry]:
    async with s.services.db.session() as session:
        query = select(PausedEntry).order_by(col(PausedEntry.id))
        if status is not None:
            query = query.where(PausedEntry.status == status)
        return list((await session.exec(query)).all())


async def _instances(s: Stage) -> list[JourneyInstance]:
    async with s.services.db.session() as session:
        journey = (await session.exec(select(Journey).where(Journey.key == JOURNEY))).one()
        rows = await session.exec(select(JourneyInstance).where(JourneyInstance.journey_id == journey.id))
        return list(rows.all())


async def _past(when_ms: int) -> bool:
    return now_ms() > when_ms


async def _routed(s: Stage) -> bool:
    async with s.services.db.session() as session:
        return not (await session.exec(select(IntentEvent).where(col(IntentEvent.routed).is_(False)))).all()


async def _buy(s: Stage, name: str) -> Any:
    phone = await s.phone(name)
    r = await phone.get(f"/r/{s.room_id}/buy/{s.product['id']}")
    assert r.status_code == 303
    return phone


async def test_an_entry_while_paused_goes_in_on_resume_and_waits_from_then(tmp_path: Path) -> None:
    """A buy clicked while the reminder journey is paused is kept, enters when it resumes, and its
    30-minute wait counts from the resume (not from the click)."""
    async with stage(tmp_path) as s:
        paused = await _status(s, {"status": "paused"})
        assert paused["while_paused"] == "hold"
        phone = await _buy(s, "Mei")
        (held,) = await eventually(lambda: _entries(s, "held"))
        assert await _instances(s) == []
        # Paused well past the wait (30 minutes scaled: 0.9 s): counted from the click it would be due.
        await eventually(lambda: _past(held.created_ms + 1500))
        assert (await _journey(s))["paused_entries"]["held"] == 1
        resumed_ms = now_ms()
        await _status(s, {"status": "active"})
        await eventually(lambda: _entries(s, "entered"))
        sent = await eventually(lambda: _sent(s))
        assert sent.channel == "inapp" and sent.sent_ms is not None
        assert sent.sent_ms >= resumed_ms + 900  # the wait ran after the resume
        (instance,) = await _instances(s)
        assert instance.created_ms >= resumed_ms
        entries = (await _journey(s))["paused_entries"]
        assert (entries["held"], entries["entered"], entries["goal"], entries["skipped"]) == (0, 1, 0, 0)
        await phone.aclose()


async def _sent(s: Stage) -> Any:
    return next((m for m in await s.messages(template=JOURNEY) if m.status == "sent"), None)


async def test_paid_while_paused_never_gets_the_reminder(tmp_path: Path) -> None:
    """A person who clicked buy and then paid while the journey was paused does not enter it on resume:
    no reminder for what they paid."""
    async with stage(tmp_path) as s:
        await _status(s, {"status": "paused"})
        phone = await _buy(s, "Mei")
        await eventually(lambda: _entries(s, "held"))
        me = (await phone.post(f"/api/rooms/{s.room_id}/join", json={})).json()["viewer_id"]
        r = await s.shop("order.paid", {"order_id": "A-1", "viewer_id": me, "sku": "TEA-1"})
        assert r.status_code == 200, r.text
        await eventually(lambda: _routed(s))
        await _status(s, {"status": "active"})
        (entry,) = await eventually(lambda: _entries(s, "goal"))
        assert entry.reason == "goal reached while paused: order.paid"
        assert await _instances(s) == []
        runner = s.services.engines.get(Runner)
        start = runner.rounds
        await eventually(lambda: _rounds(s, start + 3))
        assert await s.messages(template=JOURNEY) == []
        assert (await _journey(s))["paused_entries"]["goal"] == 1
        await phone.aclose()


async def _rounds(s: Stage, n: int) -> bool:
    return bool(s.services.engines.get(Runner).rounds >= n)


async def test_skip_while_paused_lists_the_entry_and_never_enters(tmp_path: Path) -> None:
    """With "skip while paused" a buy during the pause is recorded as skipped, listed with the journey
    (when, which event, who), and does not enter after the resume."""
    async with stage(tmp_path) as s:
        answer = await _status(s, {"status": "paused", "while_paused": "skip"})
        assert (answer["status"], answer["while_paused"]) == ("paused", "skip")
        phone = await _buy(s, "Mei")
        (entry,) = await eventually(lambda: _entries(s, "skipped"))
        assert entry.reason == "skipped while paused" and entry.ended_ms is not None
        listed = (await _journey(s))["paused_entries"]
        assert listed["skipped"] == 1 and listed["held"] == 0
        (item,) = listed["skipped_recent"]
        assert (item["event"], item["product_id"], item["name"]) == ("product.buy", s.product["id"], "Mei")
        await _status(s, {"status": "active"})
        start = s.services.engines.get(Runner).rounds
        await eventually(lambda: _rounds(s, start + 3))
        assert await _instances(s) == []
        assert [e.status for e in await _entries(s)] == ["skipped"]
        await phone.aclose()


async def test_the_choice_is_kept_by_the_journey_api_and_bad_values_are_refused(tmp_path: Path) -> None:
    """while_paused is set by the journey API and the status endpoint, kept when a journey is replaced
    without it, and anything but hold or skip is a 422 saying what is allowed."""
    async with stage(tmp_path) as s, s.host_http() as http:
        base = f"/api/rooms/{s.room_id}/followup/journeys"
        spec = {
            "key": "nudge",
            "name": "Nudge",
            "entry": "product.view",
            "steps": [{"send": {"channel": "inapp", "template": "unpaid-reminder"}}],
        }
        r = await http.post(base, json={**spec, "while_paused": "skip"})
        assert r.status_code == 200 and r.json()["while_paused"] == "skip", r.text
        r = await http.post(base, json=spec)  # replaced without it: the choice stays
        assert r.json()["while_paused"] == "skip"
        for bad in ({**spec, "while_paused": "later"}, {**spec, "while_paused": True}):
            r = await http.post(base, json=bad)
            assert r.status_code == 422 and "while_paused must be hold" in r.json()["error"]["message"]
        for body in ({}, {"while_paused": "never"}, {"status": "paused", "while_paused": 1}):
            r = await http.post(f"{base}/nudge/status", json=body)
            assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid"), body
        r = await http.post(f"{base}/nudge/status", json={"while_paused": "hold"})
        assert r.json()["while_paused"] == "hold" and r.json()["status"] == "active"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


async def test_two_workers_release_each_held_entry_once(shared_url: str) -> None:
    """Two processes releasing the same resume at once: every held entry is decided once and every
    person enters once (one of them twice held: the second finds them in already)."""
    first, second = Database(shared_url), Database(shared_url)
    await asyncio.to_thread(first.migrate)
    room, _ = await create_room(first, title="r")
    t = now_ms()
    async with first.session() as session:
        await ensure_room(session, room.id)
        journey = (await session.exec(select(Journey).where(Journey.key == JOURNEY))).one()
        for i in range(40):
            session.add(Viewer(id=f"v{i}", created_ms=t))
        await session.flush()
        for i in range(41):
            viewer = f"v{min(i, 39)}"  # v39 clicked twice
            event = IntentEvent(
                event_id=f"e{i}", room_id=room.id, viewer_id=viewer, kind="product.buy", product_id=7,
                created_ms=t, routed=True,
            )  # fmt: skip
            session.add(event)
            await session.flush()
            assert event.id is not None and journey.id is not None
            session.add(
                PausedEntry(
                    journey_id=journey.id, room_id=room.id, event_id=event.id, viewer_id=viewer,
                    status="held", created_ms=t,
                )
            )  # fmt: skip
        await session.commit()
    a, b = await asyncio.gather(journeys.release_held(first), journeys.release_held(second))
    assert a + b == 41
    async with first.session() as session:
        instances = (await session.exec(select(JourneyInstance))).all()
        statuses = [e.status for e in (await session.exec(select(PausedEntry))).all()]
    assert sorted(i.subject for i in instances) == sorted(f"v:v{i}" for i in range(40))
    assert statuses.count("entered") == 40 and statuses.count("skipped") == 1
    assert await journeys.release_held(first) == 0
    await first.dispose()
    await second.dispose()


async def test_an_entry_stays_held_when_its_journey_is_paused_again(tmp_path: Path) -> None:
    """A journey paused again between the release's look and its decision keeps the entry held: it
    goes in at the next resume, not skipped."""
    db = Database(f"sqlite:///{tmp_path / 'p.db'}")
    await asyncio.to_thread(db.migrate)
    room, _ = await create_room(db, title="r")
    t = now_ms()
    async with db.session() as session:
        await ensure_room(session, room.id)
        journey = (await session.exec(select(Journey).where(Journey.key == JOURNEY))).one()
        session.add(Viewer(id="v1", created_ms=t))
        event = IntentEvent(event_id="e1", room_id=room.id, viewer_id="v1", kind="product.buy", created_ms=t)
        session.add(event)
        await session.flush()
        assert event.id is not None and journey.id is not None
        entry = PausedEntry(
            journey_id=journey.id,
            room_id=room.id,
            event_id=event.id,
            viewer_id="v1",
            status="held",
            created_ms=t,
        )
        session.add(entry)
        journey.status = "paused"
        session.add(journey)
        await session.commit()
        assert await journeys._release(session, entry, t) is None
    assert await journeys.release_held(db) == 0
    assert [e.status for e in await _all_entries(db)] == ["held"]
    await db.dispose()


async def _all_entries(db: Database) -> list[PausedEntry]:
    async with db.session() as session:
        return list((await session.exec(select(PausedEntry))).all())
