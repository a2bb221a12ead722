"""End-to-end smoke test of the embedded default: announce reaches a viewer over real uvicorn."""

from __future__ import annotations

from tests.helpers import Client, Running, create_room, join


async def test_announcement_reaches_viewer(running: Running) -> None:
    """An announcement posted by the host arrives at a connected viewer with the next seq."""
    room = await create_room(running)
    viewer = await join(running.base, room["id"], "Ann")
    v = await Client.connect(running.ws, "viewer", room["id"], {"token": viewer["token"]})
    h = await Client.connect(running.ws, "host", room["id"], {"token": room["host_token"]})
    ack = await h.request("announce", {"text": "hello"})
    assert ack["type"] == "ack"
    event = await v.recv_type("announcement")
    assert event["data"]["text"] == "hello"
    await v.close()
    await h.close()
