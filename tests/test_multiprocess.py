"""Two `livewall serve` processes and a `livewall worker` sharing one Redis, one database and one data
directory (deploy/compose.yaml's topology) behave as one server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from server.rooms.actions import create_room
from server.storage import Database
from tests.followup.channels.conftest import Delivered, Sink
from tests.followup.flow import PRODUCT, TIME_SCALE, eventually, links_in
from tests.helpers import REPO, Client, free_port, join, spawn, wait_ready

pytestmark = pytest.mark.redis

SECRET = "multiprocess-secret"
WAIT_SECS = 10.0
STARTUP_SECS = 60.0
SERVING = r"Livewall serving on (http://[^\s\"]+)"
WORKING = r"(follow-up worker running)"


class _Output:
    """Drains a process's stderr on a thread (so the pipe never fills) and finds the line that says it
    started: ``pattern``'s first group (the URL a server serves on)."""

    def __init__(self, proc: subprocess.Popen[str], pattern: str = SERVING) -> None:
        self.proc = proc
        self.pattern = pattern
        self.lines: list[str] = []
        self.url: str | None = None
        self._found = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        with contextlib.suppress(ValueError):  # the stream is closed when the process is stopped
            for line in self.proc.stderr:
                self.lines.append(line)
                match = re.search(self.pattern, line)
                if match and self.url is None:
                    self.url = match.group(1)
                    self._found.set()
        self._found.set()

    def wait_started(self) -> str:
        self._found.wait(STARTUP_SECS)
        if self.url is None:
            raise RuntimeError(f"process did not start (exit {self.proc.poll()}):\n{''.join(self.lines)}")
        return self.url


@dataclass
class Cluster:
    """Processes A and B and a follow-up worker on one Redis and one database, a room made with
    `livewall rooms create`, and the SMTP server only the worker is told about."""

    a: str
    b: str
    database_url: str
    cli_room: dict[str, str]
    mail: Sink

    @staticmethod
    def ws(base: str) -> str:
        return base.replace("http://", "ws://")


@contextlib.contextmanager
def _database(kind: str, request: pytest.FixtureRequest, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'shared.db'}"
        return
    import psycopg

    server = request.getfixturevalue("postgres_server")
    name = f"lw_mp_{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cluster(
    request: pytest.FixtureRequest, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Start A and B and create a room with the CLI, all at once (three processes migrate one database),
    then the worker, whose links point at B."""
    tmp = tmp_path_factory.mktemp(f"cluster-{request.param}")
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(_database(request.param, request, tmp))
        # One data directory for all, as compose's shared volume: the processes starting together
        # make one web push key there.
        shared = ["--database-url", database_url, "--secret-key", SECRET, "--data-dir", str(tmp / "data")]
        # Presence ticks fast so that viewer counts converge quickly; the count logic is the same.
        # The worker delivers follow-up; the servers only record it.
        env = {"LIVEWALL_PRESENCE_TICK_SECS": "0.1", "LIVEWALL_FOLLOWUP_EMBEDDED": "false"}
        outputs = []
        for _ in range(2):
            args = ["serve", "--port", "0", "--redis-url", redis_url]
            proc = stack.enter_context(spawn([*args, *shared], env=env))
            outputs.append(_Output(proc))
        create = ["rooms", "create", "--title", "Two processes", "--json"]
        created = subprocess.run(
            [sys.executable, "-m", "server", *create, *shared],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=STARTUP_SECS,
        )
        assert created.returncode == 0, created.stderr
        a, b = (out.wait_started() for out in outputs)
        wait_ready(a)
        wait_ready(b)
        mail = Sink()
        smtp = Controller(mail, hostname="127.0.0.1", port=free_port())
        smtp.start()
        stack.callback(smtp.stop)
        work_env = {
            "LIVEWALL_SMTP_URL": f"smtp://127.0.0.1:{smtp.port}?tls=none",
            # 30 minutes of journey wait become ~0.9 s.
            "LIVEWALL_FOLLOWUP_TIME_SCALE": str(TIME_SCALE),
            "LIVEWALL_FOLLOWUP_TICK_SECS": "0.1",
        }
        worker = stack.enter_context(
            spawn(["worker", "--public-url", b, "--redis-url", redis_url, *shared], env=work_env)
        )
        _Output(worker, WORKING).wait_started()
        yield Cluster(a, b, database_url, json.loads(created.stdout), mail)


@pytest.fixture
async def room(cluster: Cluster) -> AsyncIterator[dict[str, str]]:
    """A fresh room per test (made in-process: a CLI start per test would be slow) and its host token."""
    db = Database(cluster.database_url)
    try:
        created, key = await create_room(db, title="Multi-process test")
    finally:
        await db.dispose()
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{cluster.a}/api/rooms/{created.id}/host-token", json={"key": key})
        r.raise_for_status()
    yield {"id": created.id, "host_token": r.json()["token"]}


async def _viewer(cluster: Cluster, base: str, room_id: str, name: str, **kwargs: Any) -> Client:
    token = (await join(base, room_id, name))["token"]
    return await Client.connect(cluster.ws(base), "viewer", room_id, {"token": token}, **kwargs)


async def _host(cluster: Cluster, base: str, room: dict[str, str]) -> Client:
    return await Client.connect(cluster.ws(base), "host", room["id"], {"token": room["host_token"]})


async def _presence(client: Client, viewers: int) -> dict[str, Any]:
    """Read until a presence event reports ``viewers`` (or the snapshot already does)."""
    snapshot = client.welcome.get("snapshot") or {}
    if not client.events and snapshot.get("presence", {}).get("viewers") == viewers:
        return dict(snapshot["presence"])
    async with asyncio.timeout(WAIT_SECS):
        while True:
            msg = await client.recv_type("presence", WAIT_SECS)
            if msg["data"]["viewers"] == viewers:
                return dict(msg["data"])


async def _close(*clients: Client) -> None:
    for client in clients:
        await client.close()


def test_room_created_by_the_cli_is_served_by_both(cluster: Cluster) -> None:
    """A room from `livewall rooms create` on the shared database works on both processes."""
    room_id, key = cluster.cli_room["room"], cluster.cli_room["host_key"]
    for base in (cluster.a, cluster.b):
        assert httpx.get(f"{base}/api/rooms/{room_id}").json()["title"] == "Two processes"
        token = httpx.post(f"{base}/api/rooms/{room_id}/host-token", json={"key": key})
        assert token.status_code == 200
        assert httpx.get(f"{base}/readyz").json()["checks"] == {"database": True, "hub": True}


async def test_announcement_from_a_reaches_viewer_on_b(cluster: Cluster, room: dict[str, str]) -> None:
    """A host connected to process A announces; a viewer connected to process B receives it."""
    viewer = await _viewer(cluster, cluster.b, room["id"], "Bea")
    host = await _host(cluster, cluster.a, room)
    ack = await host.request("announce", {"text": "hello from A"})
    assert ack["type"] == "ack"
    event = await viewer.recv_type("announcement", WAIT_SECS)
    assert event["data"]["text"] == "hello from A"
    assert event["data"]["id"] == ack["data"]["result"]["id"]
    await _close(viewer, host)


async def test_viewers_on_both_processes_see_one_order(cluster: Cluster, room: dict[str, str]) -> None:
    """Announcements posted through A (WebSocket) and B (HTTP) at once reach both viewers in one seq order."""
    on_a = await _viewer(cluster, cluster.a, room["id"], "Ann")
    on_b = await _viewer(cluster, cluster.b, room["id"], "Ben")
    assert on_a.epoch == on_b.epoch
    start = max(on_a.seq, on_b.seq)
    host = await _host(cluster, cluster.a, room)
    auth = {"Authorization": f"Bearer {room['host_token']}"}

    async def via_a() -> None:
        for i in range(5):
            assert (await host.request("announce", {"text": f"A{i}"}))["type"] == "ack"

    async def via_b() -> None:
        async with httpx.AsyncClient(base_url=cluster.b, headers=auth) as http:
            for i in range(5):
                r = await http.post(f"/api/rooms/{room['id']}/announcements", json={"text": f"B{i}"})
                assert r.status_code == 201

    await asyncio.gather(via_a(), via_b())
    texts = {f"A{i}" for i in range(5)} | {f"B{i}" for i in range(5)}
    for viewer in (on_a, on_b):
        seen: set[str] = set()
        async with asyncio.timeout(WAIT_SECS):
            while seen != texts:
                seen.add((await viewer.recv_type("announcement", WAIT_SECS))["data"]["text"])
    upto = min(on_a.seq, on_b.seq)
    order_a = [e for e in on_a.events if start < e["seq"] <= upto]
    order_b = [e for e in on_b.events if start < e["seq"] <= upto]
    assert order_a == order_b
    assert {e["data"]["text"] for e in order_a if e["type"] == "announcement"} == texts
    await _close(on_a, on_b, host)


async def test_viewer_count_includes_both_processes(cluster: Cluster, room: dict[str, str]) -> None:
    """The presence event counts viewers on A and on B, and drops when one of them leaves."""
    host = await _host(cluster, cluster.a, room)
    on_a = await _viewer(cluster, cluster.a, room["id"], "Ann")
    on_b = await _viewer(cluster, cluster.b, room["id"], "Ben")
    both = await _presence(host, 2)
    assert both["peak"] >= 2
    for base in (cluster.a, cluster.b):
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{base}/api/rooms/{room['id']}")).json()["viewers"] == 2
    await on_b.close()
    after = await _presence(host, 1)
    assert after["peak"] >= 2
    await _close(on_a, host)


async def test_resume_on_the_other_process_replays_exactly_the_missed(
    cluster: Cluster, room: dict[str, str]
) -> None:
    """A viewer leaves A and resumes on B with (epoch, seq): welcome.resumed, missed == n, then those n."""
    token = (await join(cluster.a, room["id"], "Ria"))["token"]
    hello = {"token": token}
    # The same viewer keeps a tab open on each process, so the viewer count (and with it the presence
    # events) stays the same while one tab moves: the only events missed are the announcements.
    leaving = await Client.connect(cluster.ws(cluster.a), "viewer", room["id"], hello)
    stay_a = await Client.connect(cluster.ws(cluster.a), "viewer", room["id"], hello)
    stay_b = await Client.connect(cluster.ws(cluster.b), "viewer", room["id"], hello)
    await _presence(leaving, 2)
    epoch, seq = leaving.epoch, leaving.seq
    await leaving.close()

    host = await _host(cluster, cluster.b, room)
    n = 3
    for i in range(n):
        assert (await host.request("announce", {"text": f"while away {i}"}))["type"] == "ack"
    for _ in range(n):
        await stay_a.recv_type("announcement", WAIT_SECS)
        # B replays what it has delivered (anything newer reaches a resumed viewer live, right after):
        # wait until B has them all, so that the welcome counts all n as missed.
        await stay_b.recv_type("announcement", WAIT_SECS)

    back = await Client.connect(cluster.ws(cluster.b), "viewer", room["id"], hello, resume=(epoch, seq))
    assert back.welcome["resumed"] is True
    assert back.welcome["missed"] == n
    assert "snapshot" not in back.welcome
    replayed = [await back.recv(WAIT_SECS) for _ in range(n)]
    assert replayed == [e for e in stay_a.events if e["seq"] > seq]
    assert [e["data"]["text"] for e in replayed] == [f"while away {i}" for i in range(n)]

    await host.request("announce", {"text": "live again"})
    live = await back.recv_type("announcement", WAIT_SECS)
    assert (live["seq"], live["data"]["text"]) == (seq + n + 1, "live again")
    await _close(back, stay_a, stay_b, host)


async def test_private_reply_reaches_viewer_on_other_process(cluster: Cluster, room: dict[str, str]) -> None:
    """A host on process A replies privately to a viewer on process B; only that viewer gets it."""
    asker = await _viewer(cluster, cluster.b, room["id"], "asker")
    other = await _viewer(cluster, cluster.b, room["id"], "other")
    host = await _host(cluster, cluster.a, room)
    q = (await asker.request("item.submit", {"kind": "question", "text": "Size?"}))["data"]["result"]
    reply = await host.request("item.reply", {"id": q["id"], "text": "M fits 170 cm"})
    assert reply["type"] == "ack"
    async with asyncio.timeout(WAIT_SECS):
        while True:
            msg = await asker.recv(WAIT_SECS)
            if msg["type"] == "mine" and msg["data"].get("reply"):
                break
    assert msg["data"]["reply"] == "M fits 170 cm"
    # Everything the other viewer received up to a fresh ack: no private frame among it.
    await other.ws.send(json.dumps({"type": "viewer.rename", "id": "drain", "data": {"name": "other"}}))
    seen: list[str] = []
    while True:
        msg = await other.recv(WAIT_SECS)
        seen.append(msg["type"])
        if msg["type"] == "ack" and msg["data"]["id"] == "drain":
            break
    assert "mine" not in seen
    await _close(asker, other, host)


async def test_claim_rush_across_processes_is_exact(cluster: Cluster, room: dict[str, str]) -> None:
    """Phones on A and on B rush one discount (one Lua script decides every claim): exactly the
    stock is granted, nobody over the per-viewer limit, and the stored claims agree."""
    from sqlalchemy import func
    from sqlmodel import select

    from server.storage.models import Claim
    from tests.discounts.rush import rush

    host = await _host(cluster, cluster.a, room)
    product = (await host.request("product.save", {"name": "Rush", "price_minor": 1000}))["data"]["result"]
    deal = await host.request(
        "discount.launch",
        {"product_id": product["id"], "price_minor": 500, "quantity": 60, "duration_secs": 600},
    )
    discount_id = deal["data"]["result"]["id"]
    bases = [(base, cluster.ws(base)) for base in (cluster.a, cluster.b)]
    result = await rush(bases, room["id"], discount_id, viewers=80, claims_each=10)
    assert sum(result.granted.values()) == 60
    assert max(result.granted.values()) == 1
    assert len(set(result.codes)) == 60
    assert sum(result.refused.values()) == 80 * 10 - 60
    db = Database(cluster.database_url)
    try:
        async with db.session() as session:
            stored = (
                await session.exec(
                    select(func.count()).select_from(Claim).where(Claim.discount_id == discount_id)
                )
            ).one()
    finally:
        await db.dispose()
    assert stored == 60
    # Stock added on B reopens the deal for a phone on A.
    more = await _host(cluster, cluster.b, room)
    assert (await more.request("discount.update", {"id": discount_id, "add_stock": 1}))["type"] == "ack"
    late = await _viewer(cluster, cluster.a, room["id"], "Late")
    assert (await late.request("discount.claim", {"id": discount_id}))["type"] == "ack"
    await _close(host, more, late)


async def test_draw_across_processes(cluster: Cluster, room: dict[str, str]) -> None:
    """Viewers on A and B enter a draw made on A; B draws it once (A's second press is refused) and
    every screen, on either process, sees the same winners."""
    host_a = await _host(cluster, cluster.a, room)
    host_b = await _host(cluster, cluster.b, room)
    phones = [
        await _viewer(cluster, base, room["id"], f"p{i}") for i, base in enumerate([cluster.a, cluster.b] * 3)
    ]
    draw = (await host_a.request("draw.create", {"title": "Gift", "count": 2, "mode": "join"}))["data"][
        "result"
    ]
    for phone in phones:
        assert (await phone.request("draw.enter", {"id": draw["id"]}))["type"] == "ack"
    drawn = await host_b.request("draw.run", {"id": draw["id"]})
    assert drawn["type"] == "ack" and drawn["data"]["result"]["entrants"] == 6
    again = await host_a.request("draw.run", {"id": draw["id"]})
    assert again["data"]["code"] == "bad_state"
    winners = [w["entrant"] for w in drawn["data"]["result"]["winners"]]
    for phone in phones[:2]:
        event = await phone.recv_type("draw", WAIT_SECS)
        while event["data"]["status"] != "drawn":
            event = await phone.recv_type("draw", WAIT_SECS)
        assert [w["entrant"] for w in event["data"]["winners"]] == winners
    await _close(host_a, host_b, *phones)


def test_push_key_is_the_same_on_both_processes(cluster: Cluster) -> None:
    """A and B, started together on one data directory, serve one web push key."""
    keys = {httpx.get(f"{base}/api/push/key").json()["key"] for base in (cluster.a, cluster.b)}
    assert len(keys) == 1


async def _mail_to(cluster: Cluster, address: str, n: int) -> list[Delivered] | None:
    found = [d for d in cluster.mail.delivered if address in d.rcpt_tos]
    return found if len(found) >= n else None


async def test_worker_delivers_followup_for_the_cluster(cluster: Cluster, room: dict[str, str]) -> None:
    """Opt in on A, confirm on B, buy on A: the worker, the only process with SMTP, sends both emails."""
    room_id = room["id"]
    host = await _host(cluster, cluster.a, room)
    product = (await host.request("product.save", PRODUCT))["data"]["result"]
    auth = {"authorization": f"Bearer {room['host_token']}"}
    async with httpx.AsyncClient(base_url=cluster.b, headers=auth) as console:
        quiet_off = {"quiet_start": "00:00", "quiet_end": "00:00"}
        r = await console.put(f"/api/rooms/{room_id}/followup/settings", json=quiet_off)
        assert r.status_code == 200, r.text
    address = f"{room_id.lower()}@example.com"  # the SMTP server is the module's; rooms are the test's
    async with httpx.AsyncClient(base_url=cluster.a) as phone:
        (await phone.post(f"/api/rooms/{room_id}/join", json={"name": "Mei"})).raise_for_status()
        consent = {"lang": "en", "wording": "Email me.", "tz": "Asia/Shanghai", "consent": {"email": True}}
        r = await phone.post(f"/api/rooms/{room_id}/contact", json={**consent, "email": address})
        assert r.json()["pending"] == ["email"]
        (confirmation,) = await eventually(lambda: _mail_to(cluster, address, 1), timeout=WAIT_SECS)
        text = confirmation.message.get_body(("plain",)).get_content()
        link = next(url for url in links_in(text) if "/optin/" in url)
        assert link.startswith(f"{cluster.b}/")  # the worker's public URL
        async with httpx.AsyncClient() as browser:  # another device, no viewer cookie
            assert (await browser.post(link)).status_code == 200
        r = await phone.get(f"/r/{room_id}/buy/{product['id']}")
        assert r.status_code == 303
        reminder = (await eventually(lambda: _mail_to(cluster, address, 2), timeout=WAIT_SECS))[1]
    assert "Jasmine tea" in reminder.message["Subject"]
    assert all(
        url.startswith(f"{cluster.b}/")
        for url in links_in(reminder.message.get_body(("plain",)).get_content())
    )
    await host.close()
