"""The smoke flow on PostgreSQL: the in-process server under real uvicorn, storage on a fresh database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings
from tests.helpers import Client, Running, create_room, join, serve

pytestmark = pytest.mark.postgres


@pytest.fixture
async def on_postgres(tmp_path: Path, postgres_url: str) -> AsyncIterator[Running]:
    async with serve(make_settings(tmp_path, database_url=postgres_url)) as running:
        yield running


async def test_ready_on_postgres(on_postgres: Running) -> None:
    """/readyz reports the PostgreSQL database up, and no SQLite file is created in the data dir."""
    async with httpx.AsyncClient(base_url=on_postgres.base) as http:
        r = await http.get("/readyz")
    assert r.status_code == 200 and r.json()["checks"]["database"] is True
    assert on_postgres.app.state.services.db.async_url.startswith("postgresql+psycopg://")
    assert not (on_postgres.app.state.services.settings.data_dir / "livewall.db").exists()


async def test_smoke_flow_on_postgres(on_postgres: Running) -> None:
    """Host announces, viewer receives; room start and end reach the viewer and are stored."""
    room = await create_room(on_postgres, "Postgres room")
    viewer = await join(on_postgres.base, room["id"], "Pia")
    v = await Client.connect(on_postgres.ws, "viewer", room["id"], {"token": viewer["token"]})
    h = await Client.connect(on_postgres.ws, "host", room["id"], {"token": room["host_token"]})

    ack = await h.request("announce", {"text": "hello postgres"})
    assert ack["type"] == "ack"
    assert (await v.recv_type("announcement"))["data"]["text"] == "hello postgres"

    assert (await h.request("room.start"))["data"]["result"] == {"status": "live"}
    started = await v.recv_type("room.status")
    assert started["data"]["status"] == "live" and started["data"]["started_ms"]

    assert (await h.request("room.end"))["data"]["result"] == {"status": "ended"}
    ended = await v.recv_type("room.status")
    assert ended["data"]["status"] == "ended" and ended["data"]["ended_ms"] >= started["data"]["started_ms"]

    async with httpx.AsyncClient(base_url=on_postgres.base) as http:
        info = (await http.get(f"/api/rooms/{room['id']}")).json()
    assert info["status"] == "ended"

    # A fresh connection's snapshot is read back from PostgreSQL.
    again = await Client.connect(on_postgres.ws, "viewer", room["id"], {"token": viewer["token"]})
    snapshot = again.welcome["snapshot"]
    assert snapshot["room"]["status"] == "ended"
    assert snapshot["announcement"]["text"] == "hello postgres"
    for client in (v, h, again):
        await client.close()


async def test_concurrent_starts_go_live_once_on_postgres(on_postgres: Running) -> None:
    """Two hosts starting at once: one succeeds, one gets 409, and viewers see one status event."""
    room = await create_room(on_postgres)
    viewer = await join(on_postgres.base, room["id"], "Pia")
    v = await Client.connect(on_postgres.ws, "viewer", room["id"], {"token": viewer["token"]})
    auth = {"Authorization": f"Bearer {room['host_token']}"}
    async with httpx.AsyncClient(base_url=on_postgres.base, headers=auth) as http:
        answers = await asyncio.gather(*[http.post(f"/api/rooms/{room['id']}/start") for _ in range(2)])
        assert sorted(r.status_code for r in answers) == [200, 409]
        marker = await http.post(f"/api/rooms/{room['id']}/announcements", json={"text": "marker"})
        assert marker.status_code == 201
    await v.recv_type("announcement")
    assert [e["data"]["status"] for e in v.events if e["type"] == "room.status"] == ["live"]
    await v.close()
