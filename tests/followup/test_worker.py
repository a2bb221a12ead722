"""Durable delivery across processes: a worker killed mid-send and restarted sends exactly one
email; two workers on PostgreSQL share the queue (SKIP LOCKED) without sending anything twice."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlmodel import select

from server.config import Settings
from server.followup.channels.email import message_id
from server.followup.channels.registry import close_all, make_channels
from server.followup.runner import Runner
from server.rooms.actions import create_room
from server.storage import Database, now_ms
from server.storage.followup import Consent, Contact, Message
from tests.followup.channels.conftest import LOOPBACK_ALLOWED, Remote, Sink
from tests.followup.flow import eventually
from tests.helpers import free_port, spawn


class HoldingSink(Sink):
    """Holds the first message's DATA until the test lets go, then refuses it (the sender is gone)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.calls += 1
        if self.calls == 1:
            self.entered.set()
            while not self.release.is_set():  # noqa: ASYNC110 - the event is set from the test's thread
                await asyncio.sleep(0.01)
            return "451 4.3.0 sender went away"
        return await super().handle_DATA(server, session, envelope)


async def _seed(db: Database, n: int, channel: str, address: dict[str, str] | None = None) -> str:
    """A room and ``n`` due transactional messages to ``n`` contacts."""
    room, _ = await create_room(db, title="Worker room")
    t = now_ms()
    async with db.session() as session:
        for i in range(n):
            contact = Contact(
                id=f"c{i:04d}",
                email=f"buyer{i}@example.com",
                phone=f"+861380013{i:04d}",
                created_ms=t,
                updated_ms=t,
                locale="en",
            )
            session.add(contact)
            await session.flush()  # no ORM relationships: the contact row must exist first
            session.add(
                Consent(contact_id=contact.id, channel=channel, status="granted", source="test", updated_ms=t)
            )
            session.add(
                Message(
                    idem_key=f"test:{i}",
                    room_id=room.id,
                    contact_id=contact.id,
                    channel=channel,
                    template="payment-thanks",
                    transactional=True,
                    context=f'{{"order_id": "O-{i}"}}',
                    next_ms=t,
                    created_ms=t,
                )
            )
        await session.commit()
    # The room's templates are created on first use; make them now.
    from server.followup.store import ensure_room

    async with db.session() as session:
        await ensure_room(session, room.id)
        await session.commit()
    return room.id


async def _status(db: Database) -> list[tuple[str, int]]:
    async with db.session() as session:
        return [(m.status, m.attempts) for m in (await session.exec(select(Message))).all()]


async def test_killed_mid_send_restarts_and_sends_exactly_once(tmp_path: Path) -> None:
    """SIGKILL while the SMTP server holds the message: after the lease and the grace, the next worker
    sends it once, counted as an uncertain re-send; the inbox has exactly one copy."""
    sink = HoldingSink()
    smtp = Controller(sink, hostname="127.0.0.1", port=free_port())
    smtp.start()
    url = f"sqlite:///{tmp_path / 'lw.db'}"
    db = Database(url)
    await asyncio.to_thread(db.migrate)
    await _seed(db, 1, "email")
    env = {
        "LIVEWALL_DATABASE_URL": url,
        "LIVEWALL_DATA_DIR": str(tmp_path),
        "LIVEWALL_SECRET_KEY": "test-secret",
        "LIVEWALL_SMTP_URL": f"smtp://127.0.0.1:{smtp.port}?tls=none",
        "LIVEWALL_FOLLOWUP_LEASE_SECS": "1",
        "LIVEWALL_FOLLOWUP_TICK_SECS": "0.05",
        "LIVEWALL_FOLLOWUP_UNCERTAIN_GRACE_SECS": "0.2",
        "LIVEWALL_LOG_JSON": "false",
    }
    try:
        with spawn(["worker"], env) as first:
            assert await asyncio.to_thread(sink.entered.wait, 30), "the worker never reached DATA"
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
        sink.release.set()
        assert await _status(db) == [("sending", 1)]  # the killed worker's lease, nothing recorded
        assert sink.delivered == []
        with spawn(["worker"], env):
            await eventually(lambda: _sent(db), timeout=30)
        assert await _status(db) == [("sent", 2)]
        assert len(sink.delivered) == 1
        async with db.session() as session:
            (sent,) = (await session.exec(select(Message))).all()
        assert sent.uncertain_resends == 1 and sent.attempt_id is not None
        # Derived from the idempotency key: a duplicate would carry the same id.
        assert sink.delivered[0].message["Message-ID"] == message_id("test:0", Settings().mail_from)
    finally:
        smtp.stop()
        await db.dispose()


async def _sent(db: Database) -> bool:
    return all(status == "sent" for status, _ in await _status(db))


async def test_two_workers_share_the_queue_on_postgres(
    postgres_url: str, remote: Remote, tmp_path: Path
) -> None:
    """Two workers with their own connections claim rows with SKIP LOCKED: every message is sent
    exactly once."""
    url = remote.script("/sms")
    seed = Database(postgres_url)
    await asyncio.to_thread(seed.migrate)
    await _seed(seed, 40, "sms")
    settings = Settings(
        data_dir=tmp_path,
        database_url=postgres_url,
        secret_key="test-secret",
        sms_url=url,
        sms_token="tok",
        followup_tick_secs=0.05,
        outbound_allow=LOOPBACK_ALLOWED,
    )
    workers = []
    for _ in range(2):
        db = Database(postgres_url)
        workers.append((db, Runner(db, settings, make_channels(settings))))
    try:
        await asyncio.gather(*(runner.run_once() for _, runner in workers))
        for _, runner in workers:
            await runner.start()
        await eventually(lambda: _sent(seed), timeout=30)
    finally:
        for db, runner in workers:
            await runner.stop()
            await close_all(runner.channels)
            await db.dispose()
        await seed.dispose()
    keys = [r.headers["idempotency-key"] for r in remote.received]
    assert sorted(keys) == sorted(f"test:{i}" for i in range(40))
    assert len(set(keys)) == 40


async def test_a_worker_reaches_the_room_through_redis(tmp_path: Path, redis_clean: str) -> None:
    """With delivery in a `livewall worker` process, campaign progress reaches the host console and
    an in-app message the open phone, through Redis, on the server's connections."""
    import httpx

    from tests.conftest import make_settings
    from tests.helpers import Client, create_room, serve

    url = f"sqlite:///{tmp_path / 'lw.db'}"
    settings = make_settings(tmp_path, database_url=url, redis_url=redis_clean, followup_embedded=False)
    async with serve(settings) as running:
        room = await create_room(running)
        host = await Client.connect(running.ws, "host", room["id"], {"token": room["host_token"]})
        async with httpx.AsyncClient(base_url=running.base) as phone:
            joined = (await phone.post(f"/api/rooms/{room['id']}/join", json={"name": "p"})).json()
            viewer = await Client.connect(running.ws, "viewer", room["id"], {"token": joined["token"]})
        env = {
            "LIVEWALL_DATABASE_URL": url,
            "LIVEWALL_REDIS_URL": redis_clean,
            "LIVEWALL_DATA_DIR": str(tmp_path),
            "LIVEWALL_SECRET_KEY": "test-secret",
            "LIVEWALL_FOLLOWUP_TICK_SECS": "0.05",
            "LIVEWALL_LOG_JSON": "false",
        }
        with spawn(["worker"], env):
            headers = {"authorization": f"Bearer {room['host_token']}"}
            async with httpx.AsyncClient(base_url=running.base, headers=headers) as http:
                body = {
                    "name": "Thanks",
                    "segment": "attended",
                    "channel": "inapp",
                    "template": "post-stream",
                }
                r = await http.post(f"/api/rooms/{room['id']}/followup/campaigns", json=body)
                assert r.status_code == 200, r.text
            frame = await viewer.recv_type("inbox", timeout=30)
            assert "Test room" in frame["data"]["text"]
            event = await host.recv_type("followup", timeout=30)
            while not event["data"]["campaigns"] or event["data"]["campaigns"][0]["status"] != "done":
                event = await host.recv_type("followup", timeout=30)
            assert event["data"]["campaigns"][0]["counts"] == {"sent": 1}
        await viewer.close()
        await host.close()
