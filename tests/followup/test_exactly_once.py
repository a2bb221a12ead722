"""The states of one send (docs/followup.md#exactly-once): claimed, then ``sending`` with an attempt
id committed before the provider is contacted, ``sent`` committed right after it accepts; a lapsed
``sending`` becomes ``uncertain`` (held for the grace where the provider has no idempotency key),
and the report of the attempt that contacted the provider wins until another attempt has."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from server.followup import delivery
from server.rooms.actions import create_room
from server.storage import Database, now_ms
from server.storage.followup import Message


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'once.db'}")
    await asyncio.to_thread(database.migrate)
    yield database
    await database.dispose()


async def _seed(db: Database, channels: list[str]) -> None:
    room, _ = await create_room(db, title="r")
    t = now_ms()
    async with db.session() as session:
        for i, channel in enumerate(channels):
            session.add(
                Message(
                    idem_key=f"m{i}", room_id=room.id, channel=channel, template="x", next_ms=t, created_ms=t
                )
            )
        await session.commit()


async def _row(db: Database, message_id: int | None) -> Message:
    async with db.session() as session:
        return (await session.exec(select(Message).where(col(Message.id) == message_id))).one()


async def _lapse(db: Database) -> None:
    """As if the lease of every message had run out (its worker was killed)."""
    async with db.session() as session:
        await session.exec(update(Message).values(lease_ms=1))
        await session.commit()


def _sent() -> delivery.Outcome:
    return delivery.Outcome("sent", provider_id="p-1", subject="s", body="b")


async def test_sending_is_committed_with_an_attempt_id_before_the_provider(db: Database) -> None:
    await _seed(db, ["email"])
    (message,) = await delivery.claim_due(db)
    assert message.status == "claimed"
    assert await delivery.mark_sending(db, message, "email", 60_000)
    row = await _row(db, message.id)
    assert (row.status, row.attempt_id, row.channel) == ("sending", message.attempt_id, "email")
    assert row.attempt_id and len(row.attempt_id) == 32
    assert row.lease_ms == message.lease_ms > now_ms()
    assert await delivery._finish(db, message, _sent())
    row = await _row(db, message.id)
    assert (row.status, row.provider_id, row.lease_ms) == ("sent", "p-1", 0)


async def test_a_worker_that_lost_its_lease_does_not_send(db: Database) -> None:
    await _seed(db, ["email"])
    (mine,) = await delivery.claim_due(db)
    await _lapse(db)
    (theirs,) = await delivery.claim_due(db)  # another worker takes it up after the lease ran out
    assert not await delivery.mark_sending(db, mine, "email", 60_000)
    assert await delivery.mark_sending(db, theirs, "email", 60_000)


async def test_a_lapsed_send_becomes_uncertain_email_after_the_grace(db: Database) -> None:
    await _seed(db, ["email", "webhook", "email"])
    first, second, third = await delivery.claim_due(db)
    for message, channel in ((first, "email"), (second, "webhook")):
        assert await delivery.mark_sending(db, message, channel, 60_000)
    await _lapse(db)  # the third is only claimed: taken up again as new, not as uncertain
    before = now_ms()
    assert await delivery.settle_lapsed(db, grace_ms=30_000) == 2
    email, webhook, claimed = [await _row(db, m.id) for m in (first, second, third)]
    assert email.status == webhook.status == "uncertain" and claimed.status == "claimed"
    assert email.next_ms >= before + 30_000  # SMTP has no idempotency key: held for the grace
    assert webhook.next_ms <= now_ms()  # the webhook-id lets the receiver drop a repeat: at once
    rows, uncertain = await delivery.claim(db)
    assert {m.id for m in rows} == {second.id, third.id} and uncertain == {second.id}
    assert (await _row(db, second.id)).uncertain_resends == 1
    assert (await _row(db, third.id)).uncertain_resends == 0
    # A sending message whose lease has not run out is left alone.
    (again,) = [m for m in rows if m.id == second.id]
    assert await delivery.mark_sending(db, again, "webhook", 60_000)
    assert await delivery.settle_lapsed(db, grace_ms=0) == 0


async def test_the_report_of_the_attempt_that_contacted_the_provider_wins(db: Database) -> None:
    """A slow worker whose lease lapsed reports after all: its report stands while the message is
    only uncertain (no second send), and is ignored once a re-send has contacted the provider."""
    await _seed(db, ["webhook", "webhook"])
    slow, late = await delivery.claim_due(db)
    for message in (slow, late):
        assert await delivery.mark_sending(db, message, "webhook", 60_000)
    await _lapse(db)
    await delivery.settle_lapsed(db, grace_ms=0)
    assert await delivery._finish(db, slow, _sent())  # uncertain, not yet re-sent: the report wins
    assert (await _row(db, slow.id)).status == "sent"
    (resend,), _ = await delivery.claim(db)  # only the other one is due again
    assert resend.id == late.id
    assert await delivery.mark_sending(db, resend, "webhook", 60_000)  # the re-send contacts it
    assert not await delivery._finish(db, late, _sent())  # the first attempt's late report: ignored
    row = await _row(db, late.id)
    assert (row.status, row.attempt_id) == ("sending", resend.attempt_id)
    assert await delivery._finish(db, resend, _sent())
    assert (await _row(db, late.id)).status == "sent"


async def test_records_that_arrive_together_are_each_recorded(db: Database) -> None:
    """Forty accepted sends recorded at once (the immediate path and the grouped one) all land."""
    await _seed(db, ["webhook"] * 40)
    messages = await delivery.claim_due(db)
    for message in messages:
        assert await delivery.mark_sending(db, message, "webhook", 60_000)
    results = await asyncio.gather(*(delivery._finish(db, m, _sent()) for m in messages))
    assert all(results)
    async with db.session() as session:
        statuses = (await session.exec(select(Message.status))).all()
    assert statuses == ["sent"] * 40


async def test_a_record_waits_its_turn_when_another_process_holds_the_lock(
    db: Database, tmp_path: Path
) -> None:
    """The immediate path never waits on SQLite's lock: held by another process, the record goes
    the queued way and lands once the lock is free; nothing else is recorded twice."""
    await _seed(db, ["webhook"])
    (message,) = await delivery.claim_due(db)
    assert await delivery.mark_sending(db, message, "webhook", 60_000)
    other = sqlite3.connect(tmp_path / "once.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process is writing
    record = asyncio.create_task(delivery._finish(db, message, _sent()))
    await asyncio.sleep(0.05)  # the lock is held on purpose for a moment
    assert not record.done()
    other.execute("COMMIT")
    other.close()
    assert await asyncio.wait_for(record, 10)
    assert (await _row(db, message.id)).status == "sent"
