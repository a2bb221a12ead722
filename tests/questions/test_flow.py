"""The audience's voice over real uvicorn: post, moderate, vote, spotlight, answer, sanction, export."""

from __future__ import annotations

from typing import Any

import httpx

from tests.helpers import Client, Running, setup_room


async def _wall_with(client: Client, predicate: Any) -> dict[str, Any]:
    while True:
        msg = await client.recv_type("wall")
        if predicate(msg["data"]):
            return msg["data"]


async def _direct(client: Client, kind: str) -> dict[str, Any]:
    while True:
        msg = await client.recv()
        if msg["type"] == kind and "seq" not in msg:
            return msg["data"]


async def test_comment_reaches_wall_and_queue(running: Running) -> None:
    """A comment is acked as visible, appears on the other phone and the screen, and in the host queue."""
    room, host, screen, (p1, p2), _ = await setup_room(running)
    ack = await p1.request("item.submit", {"kind": "comment", "text": "好看！😍"})
    assert ack["type"] == "ack" and ack["data"]["result"]["status"] == "visible"
    item_id = ack["data"]["result"]["id"]
    for client in (p2, screen):
        data = await _wall_with(client, lambda d: d["items"])
        assert data["items"][0]["text"] == "好看！😍" and data["items"][0]["author"] == "v0"
        assert "viewer_id" not in data["items"][0]  # public shape
    queue = await host.recv_type("queue")
    assert queue["data"]["items"][0]["id"] == item_id and queue["data"]["items"][0]["viewer_id"]


async def test_pre_moderation_holds_until_approved(running: Running) -> None:
    """With pre-moderation a question waits; only the host sees it until approved; the asker is told."""
    room, host, screen, (p1, p2), _ = await setup_room(running)
    assert (await host.request("settings.update", {"moderation": "pre"}))["type"] == "ack"
    ack = await p1.request("item.submit", {"kind": "question", "text": "Size for 170 cm?"})
    item = ack["data"]["result"]
    assert item["status"] == "pending"
    queue = await host.recv_type("queue")
    assert queue["data"]["items"][0]["status"] == "pending"
    approved = await host.request("item.approve", {"id": item["id"]})
    assert approved["data"]["result"]["status"] == "visible"
    data = await _wall_with(p2, lambda d: d["items"])
    assert data["items"][0]["id"] == item["id"]
    assert all(i["status"] != "pending" for i in data["items"])
    mine = await _direct(p1, "mine")
    assert mine["id"] == item["id"] and mine["status"] == "visible"


async def test_blocked_word_is_held(running: Running) -> None:
    """A comment with a blocked word is held for review even in post-moderation."""
    room, host, screen, (p1, p2), _ = await setup_room(running)
    ack = await p1.request("item.submit", {"kind": "comment", "text": "this is a S C A M"})
    assert ack["data"]["result"]["status"] == "pending"
    queue = await host.recv_type("queue")
    assert queue["data"]["items"][0]["blocked_word"] == "scam"
    ok = await p1.request("item.submit", {"kind": "comment", "text": "fine"})
    data = await _wall_with(p2, lambda d: d["items"])
    assert [i["id"] for i in data["items"]] == [ok["data"]["result"]["id"]]


async def test_votes_once_and_withdraw(running: Running) -> None:
    """A viewer votes once (repeats change nothing) and can withdraw; hidden items refuse votes."""
    room, host, screen, (p1, p2), _ = await setup_room(running)
    q = (await p1.request("item.submit", {"kind": "question", "text": "Colours?"}))["data"]["result"]
    first = await p2.request("item.vote", {"id": q["id"], "up": True})
    again = await p2.request("item.vote", {"id": q["id"], "up": True})
    assert first["data"]["result"]["votes"] == 1 and again["data"]["result"]["votes"] == 1
    data = await _wall_with(screen, lambda d: d["votes"])
    assert data["votes"] == {str(q["id"]): 1}
    assert data["top"][0]["id"] == q["id"]
    withdrawn = await p2.request("item.vote", {"id": q["id"], "up": False})
    assert withdrawn["data"]["result"] == {"id": q["id"], "votes": 0, "voted": False}
    await host.request("item.hide", {"id": q["id"]})
    refused = await p2.request("item.vote", {"id": q["id"], "up": True})
    assert refused["type"] == "error" and refused["data"]["code"] == "bad_state"
    unknown = await p2.request("item.vote", {"id": 999999, "up": True})
    assert unknown["data"]["code"] == "not_found"


async def test_spotlight_answer_and_private_reply(running: Running) -> None:
    """Answer now spotlights a question; moving on marks it answered; a reply reaches only the asker."""
    room, host, screen, (p1, p2), _ = await setup_room(running)
    q1 = (await p1.request("item.submit", {"kind": "question", "text": "Q1"}))["data"]["result"]
    q2 = (await p2.request("item.submit", {"kind": "need", "text": "Dry skin, which serum?"}))["data"][
        "result"
    ]
    await host.request("item.spotlight", {"id": q1["id"]})
    spot = await screen.recv_type("spotlight")
    assert spot["data"]["item"]["id"] == q1["id"]
    await host.request("item.answer", {"id": q1["id"], "text": "Yes, all sizes."})
    await host.request("item.spotlight", {"id": q2["id"]})
    data = await _wall_with(
        screen, lambda d: any(i["id"] == q1["id"] and i["status"] == "answered" for i in d["items"])
    )
    answered = next(i for i in data["items"] if i["id"] == q1["id"])
    assert answered["answer"] == "Yes, all sizes."
    await host.request("item.reply", {"id": q2["id"], "text": "Try the hydrating one, DM for sample"})
    while True:
        mine = await _direct(p2, "mine")
        if mine.get("reply"):
            break
    assert mine["reply"].startswith("Try the hydrating")
    # p1 never receives p2's private reply
    ping = await p1.request("viewer.rename", {"name": "v0"})
    assert ping["type"] == "ack"
    assert not any(e["type"] == "mine" and e["data"].get("id") == q2["id"] for e in p1.events)


async def test_claim_prevents_double_handling(running: Running) -> None:
    """An item taken by one moderator shows as taken; another moderator cannot take it."""
    room, host, screen, (p1, _p2), _ = await setup_room(running)
    other = await Client.connect(running.ws, "host", room["id"], {"token": room["host_token"], "name": "Bo"})
    q = (await p1.request("item.submit", {"kind": "question", "text": "Shipping?"}))["data"]["result"]
    assert (await host.request("item.claim", {"id": q["id"]}))["data"]["result"]["claimed_by"] == "Ann"
    refused = await other.request("item.claim", {"id": q["id"]})
    assert (
        refused["type"] == "error"
        and refused["data"]["code"] == "taken"
        and "Ann" in refused["data"]["message"]
    )
    while True:
        queue = await other.recv_type("queue")
        if any(i["id"] == q["id"] and i["claimed_by"] == "Ann" for i in queue["data"]["items"]):
            break
    await host.request("item.release", {"id": q["id"]})
    assert (await other.request("item.claim", {"id": q["id"]}))["data"]["result"]["claimed_by"] == "Bo"


async def test_mute_ban_pardon(running: Running) -> None:
    """Muted viewers wait, banned viewers cannot post or vote, pardoned viewers can again."""
    room, host, screen, (p1, p2), joined = await setup_room(running)
    vid = joined[0]["viewer_id"]
    await host.request("viewer.sanction", {"viewer_id": vid, "mode": "mute", "minutes": 5})
    muted = await p1.request("item.submit", {"kind": "comment", "text": "hi"})
    assert muted["data"]["code"] == "muted"
    await host.request("viewer.sanction", {"viewer_id": vid, "mode": "ban"})
    banned = await p1.request("item.submit", {"kind": "comment", "text": "hi"})
    assert banned["data"]["code"] == "banned"
    await host.request("viewer.sanction", {"viewer_id": vid, "mode": "pardon"})
    assert (await p1.request("item.submit", {"kind": "comment", "text": "hi"}))["type"] == "ack"
    bad = await host.request("viewer.sanction", {"viewer_id": vid, "mode": "mute", "minutes": 0})
    assert bad["data"]["code"] == "invalid"


async def test_slow_mode(running: Running) -> None:
    """Slow mode lets a viewer post once per interval; others are unaffected; it changes live."""
    room, host, screen, (p1, p2), _ = await setup_room(running)
    await host.request("settings.update", {"slow_mode_secs": 30})
    assert (await p1.request("item.submit", {"text": "one"}))["type"] == "ack"
    second = await p1.request("item.submit", {"text": "two"})
    assert second["data"]["code"] == "slow_mode"
    assert (await p2.request("item.submit", {"text": "other viewer"}))["type"] == "ack"
    await host.request("settings.update", {"slow_mode_secs": 0})
    assert (await p1.request("item.submit", {"text": "three"}))["type"] == "ack"


async def test_reactions_are_aggregated(running: Running) -> None:
    """Reactions from several phones arrive on the screen as counts, not one frame per tap."""
    room, host, screen, (p1, p2), _ = await setup_room(running)
    await p1.request("reaction", {"counts": {"heart": 3}})
    await p2.request("reaction", {"counts": {"heart": 2, "fire": 1}})
    total: dict[str, int] = {}
    while total.get("heart", 0) < 5 or total.get("fire", 0) < 1:
        data = await _wall_with(screen, lambda d: d["reactions"])
        for k, v in data["reactions"].items():
            total[k] = total.get(k, 0) + v
    assert total == {"heart": 5, "fire": 1}
    bad = await p1.request("reaction", {"counts": {"poop": 1}})
    assert bad["data"]["code"] == "invalid"
    bad = await p1.request("reaction", {"counts": {"heart": 1000}})
    assert bad["data"]["code"] == "invalid"


async def test_roles_are_enforced(running: Running) -> None:
    """Viewers cannot moderate; the screen cannot post."""
    room, host, screen, (p1, p2), _ = await setup_room(running)
    q = (await p1.request("item.submit", {"kind": "question", "text": "Q"}))["data"]["result"]
    for kind, data in (("item.hide", {"id": q["id"]}), ("settings.update", {"moderation": "pre"})):
        assert (await p2.request(kind, data))["data"]["code"] == "forbidden"
    assert (await screen.request("item.submit", {"text": "x"}))["data"]["code"] == "forbidden"


async def test_bad_input_leaves_others_alone(running: Running) -> None:
    """Empty, too long, wrong types and foreign products are refused; nothing is stored."""
    room, host, screen, (p1, p2), _ = await setup_room(running)
    cases = [
        {"text": ""},
        {"text": "x" * 101},
        {"text": 5},
        {"kind": "rant", "text": "x"},
        {"text": "x", "product_id": 424242},
        {"text": "x", "product_id": "1"},
    ]
    for data in cases:
        reply = await p1.request("item.submit", data)
        assert reply["type"] == "error" and reply["data"]["code"] in ("invalid", "empty", "too_long"), data
    export = await _export(running, room)
    assert export["items"] == []
    assert (await p2.request("item.submit", {"text": "still fine"}))["type"] == "ack"


async def _export(running: Running, room: dict[str, str], fmt: str = "json") -> Any:
    async with httpx.AsyncClient(base_url=running.base) as http:
        response = await http.get(
            f"/api/rooms/{room['id']}/export.{fmt}", headers={"authorization": f"Bearer {room['host_token']}"}
        )
        response.raise_for_status()
        return response.json() if fmt == "json" else response.text


async def test_export_has_everything(running: Running) -> None:
    """JSON and CSV exports hold every item, vote, answer and moderation action; CSV is injection-safe."""
    room, host, screen, (p1, p2), _ = await setup_room(running)
    q = (await p1.request("item.submit", {"kind": "question", "text": '=HYPERLINK("http://x")'}))["data"][
        "result"
    ]
    await p1.request("item.submit", {"kind": "comment", "text": "中文评论"})
    await p2.request("item.vote", {"id": q["id"], "up": True})
    await host.request("item.answer", {"id": q["id"], "text": "answered"})
    await host.request("item.hide", {"id": q["id"]})
    data = await _export(running, room)
    assert len(data["items"]) == 2 and data["items"][0]["answer"] == "answered"
    assert data["votes"][0]["item_id"] == q["id"]
    assert [m["action"] for m in data["moderation"]] == ["answer", "hide"]
    text = await _export(running, room, "csv")
    assert text.startswith("\ufeffid,kind,status")
    assert "'=HYPERLINK" in text and "中文评论" in text
    async with httpx.AsyncClient(base_url=running.base) as http:
        assert (await http.get(f"/api/rooms/{room['id']}/export.json")).status_code == 401
        assert (
            await http.get(
                f"/api/rooms/{room['id']}/export.xml",
                headers={"authorization": f"Bearer {room['host_token']}"},
            )
        ).status_code == 404
