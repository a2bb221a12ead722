"""/metrics over real uvicorn: the names operators alert on exist and move with what happens."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import Client, Running, create_room, join

TIMEOUT = 10.0
REQUIRED = (
    "livewall_connections",
    "livewall_deliveries_total",
    "livewall_slow_consumer_disconnects_total",
    "livewall_resumes_total",
)


async def scrape(running: Running) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample on /metrics, keyed by (name, sorted labels)."""
    async with httpx.AsyncClient(base_url=running.base, timeout=TIMEOUT) as http:
        r = await http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


async def test_required_metrics_exposed(running: Running) -> None:
    """A fresh server already exposes every metric operators alert on."""
    async with httpx.AsyncClient(base_url=running.base, timeout=TIMEOUT) as http:
        text = (await http.get("/metrics")).text
    families = {f.name for f in text_string_to_metric_families(text)}
    # the parser names counters without their _total suffix
    assert {name.removesuffix("_total") for name in REQUIRED} <= families
    samples = await scrape(running)
    assert samples[("livewall_deliveries_total", ())] == 0
    assert samples[("livewall_slow_consumer_disconnects_total", ())] == 0


async def test_connections_gauge_follows_connections(running: Running) -> None:
    """livewall_connections counts open connections by role, and drops when they close."""
    room = await create_room(running)
    viewer = await join(running.base, room["id"])
    v = await Client.connect(running.ws, "viewer", room["id"], {"token": viewer["token"]})
    h = await Client.connect(running.ws, "host", room["id"], {"token": room["host_token"]})
    samples = await scrape(running)
    assert samples[("livewall_connections", (("role", "viewer"),))] == 1
    assert samples[("livewall_connections", (("role", "host"),))] == 1
    await v.close()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while (await scrape(running))[("livewall_connections", (("role", "viewer"),))] != 0:
        assert loop.time() < deadline, "the viewer connection was never counted out"
        await asyncio.sleep(0.02)
    await h.close()


async def test_deliveries_counted(running: Running) -> None:
    """An event delivered to a viewer and a host adds at least two deliveries."""
    room = await create_room(running)
    viewer = await join(running.base, room["id"])
    v = await Client.connect(running.ws, "viewer", room["id"], {"token": viewer["token"]})
    h = await Client.connect(running.ws, "host", room["id"], {"token": room["host_token"]})
    before = (await scrape(running))[("livewall_deliveries_total", ())]
    assert (await h.request("announce", {"text": "counted"}))["type"] == "ack"
    await v.recv_type("announcement", TIMEOUT)
    await h.recv_type("announcement", TIMEOUT)
    assert (await scrape(running))[("livewall_deliveries_total", ())] >= before + 2
    await v.close()
    await h.close()


async def test_resumes_counted_by_result(running: Running) -> None:
    """A successful resume counts as hit, an impossible one as miss."""
    room = await create_room(running)
    viewer = await join(running.base, room["id"])
    first = await Client.connect(running.ws, "viewer", room["id"], {"token": viewer["token"]})
    await first.close()
    hit = await Client.connect(
        running.ws, "viewer", room["id"], {"token": viewer["token"]}, resume=(first.epoch, 0)
    )
    miss = await Client.connect(
        running.ws, "viewer", room["id"], {"token": viewer["token"]}, resume=("old-epoch", 3)
    )
    assert hit.welcome["resumed"] is True and miss.welcome["resumed"] is False
    samples = await scrape(running)
    assert samples[("livewall_resumes_total", (("result", "hit"),))] == 1
    assert samples[("livewall_resumes_total", (("result", "miss"),))] == 1
    await hit.close()
    await miss.close()
