"""The feed's two lanes: the stage (screens, hosts) and the phones get their own samples and ticks."""

from __future__ import annotations

from typing import Any

from server.questions.events import PhoneWall, QueueBatch, WallBatch
from server.questions.feed import Feed
from server.realtime.protocol import Event


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def publish(self, room_id: str, event: Event) -> dict[str, int]:
        self.events.append(event)
        return {}

    def take(self, kind: type[Event]) -> list[Any]:
        found = [e for e in self.events if type(e) is kind]
        self.events = [e for e in self.events if type(e) is not kind]
        return found


def _item(i: int, kind: str = "comment", votes: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    public = {"id": i, "kind": kind, "text": f"t{i}", "votes": votes, "status": "visible"}
    return public, {**public, "viewer_id": f"v{i}"}


TOP = [{"id": 100, "kind": "question", "votes": 0}]


async def top(room_id: str) -> list[dict[str, Any]]:
    return [dict(i) for i in TOP]


def _feed(hub: Recorder) -> Feed:
    return Feed(hub, top, cap=10, phone_cap=8)  # type: ignore[arg-type]


async def test_each_lane_samples_for_its_audience_and_the_host_gets_everything() -> None:
    hub = Recorder()
    feed = _feed(hub)
    for i in range(1, 31):
        feed.item("r", *_item(i), new=True)
    for i in range(31, 34):
        feed.item("r", *_item(i, "question"), new=True)
    await feed.flush()
    (stage,) = hub.take(WallBatch)
    (phones,) = hub.take(PhoneWall)
    (queue,) = hub.take(QueueBatch)
    assert WallBatch.audiences == ("screen", "host") and PhoneWall.audiences == ("viewer",)
    assert len(stage.items) == 10 and stage.dropped == 23
    assert len(phones.items) == 8 and phones.dropped == 25
    for sample in (stage.items, phones.items):  # questions first
        assert {31, 32, 33} <= {i["id"] for i in sample}
    assert len(queue.items) == 33  # the host's queue is never sampled


async def test_phones_get_the_top_list_only_when_it_changed() -> None:
    hub = Recorder()
    feed = _feed(hub)
    feed.item("r", *_item(100, "question"), new=True)
    await feed.flush()
    assert hub.take(PhoneWall)[0].top == TOP and hub.take(WallBatch)[0].top == TOP
    feed.item("r", *_item(101, "question"), new=True)  # a new question: the top list is unchanged
    await feed.flush()
    assert hub.take(PhoneWall)[0].top is None and hub.take(WallBatch)[0].top == TOP
    TOP[0]["votes"] = 1
    try:
        feed.votes("r", 100, 1)
        await feed.flush()
        phones = hub.take(PhoneWall)[0]
        assert phones.top == TOP and phones.votes == {"100": 1}
    finally:
        TOP[0]["votes"] = 0


async def test_lanes_tick_on_their_own_clocks() -> None:
    hub = Recorder()
    feed = _feed(hub)
    assert (feed.stage.tick_secs, feed.phones.tick_secs) == (0.1, 0.4)
    feed.item("r", *_item(1), new=True)
    await feed.stage.flush()
    assert len(hub.take(WallBatch)) == 1 and hub.take(PhoneWall) == []
    await feed.phones.flush()
    assert [e.items[0]["id"] for e in hub.take(PhoneWall)] == [1]


async def test_the_phones_tick_stretches_while_a_storm_is_sampled() -> None:
    hub = Recorder()
    feed = _feed(hub)
    for i in range(1, 21):
        feed.item("r", *_item(i), new=True)
    await feed.flush()
    assert (feed.stage.tick_secs, feed.phones.tick_secs) == (0.1, 1.0)
    feed.item("r", *_item(21), new=True)
    await feed.flush()
    assert (feed.stage.tick_secs, feed.phones.tick_secs) == (0.1, 0.4)
