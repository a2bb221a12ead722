"""Draws over real uvicorn: entry modes, one draw at a time, draw once, re-draw one place, claims,
and the public record that anyone can verify."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx
import pytest

from server import text
from server.draws import rules, store
from server.draws.engine import DrawEngine
from tests.helpers import REPO, Client, Running, setup_room


async def _direct(client: Client, kind: str) -> dict[str, Any]:
    while True:
        msg = await client.recv()
        if msg["type"] == kind and "seq" not in msg:
            data: dict[str, Any] = msg["data"]
            return data


async def _ok(client: Client, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    reply = await client.request(kind, data)
    assert reply["type"] == "ack", reply
    result: dict[str, Any] = reply["data"]["result"]
    return result


async def _drawn(running: Running, phones: int = 3, **create: Any) -> tuple[Any, ...]:
    room, host, screen, clients, joined = await setup_room(running, viewers=phones)
    draw = await _ok(host, "draw.create", {"title": "口红 Lipstick", "count": 1, "mode": "join", **create})
    for phone in clients:
        await _ok(phone, "draw.enter", {"id": draw["id"]})
    drawn = await _ok(host, "draw.run", {"id": draw["id"]})
    return room, host, screen, clients, joined, drawn


async def test_join_draw_commits_then_reveals(running: Running) -> None:
    """The seed's hash is public from the start; the entrants' hash at close; the seed when drawn, and
    it matches. The screen sees masked names only; the host sees who won."""
    room, host, screen, phones, joined = await setup_room(running, viewers=3)
    draw = await _ok(
        host, "draw.create", {"title": "Lipstick", "count": 1, "mode": "join", "window_secs": 30}
    )
    assert draw["status"] == "open" and len(draw["seed_sha256"]) == 64 and draw["seed"] is None
    event = await screen.recv_type("draw")
    assert event["data"]["seed_sha256"] == draw["seed_sha256"]
    for phone in phones:
        await _ok(phone, "draw.enter", {"id": draw["id"]})
    again = await _ok(phones[0], "draw.enter", {"id": draw["id"]})  # a second press changes nothing
    count = await screen.recv_type("draw.entrants")
    while count["data"]["entrants"] != 3:
        count = await screen.recv_type("draw.entrants")
    drawn = await _ok(host, "draw.run", {"id": draw["id"]})
    assert (
        drawn["status"] == "drawn" and rules.sha256_hex(bytes.fromhex(drawn["seed"])) == drawn["seed_sha256"]
    )
    assert drawn["entrants_sha256"] and len(drawn["winners"]) == 1
    winner = drawn["winners"][0]
    assert winner["name"] in {"v0", "v1", "v2"} and winner["viewer_id"]
    public = await screen.recv_type("draw")
    while public["data"]["status"] != "drawn":
        public = await screen.recv_type("draw")
    shown = public["data"]["winners"][0]
    assert shown["name"] == text.mask_name(winner["name"]) and "viewer_id" not in shown
    assert again["entrant"] in {w["entrant"] for w in [winner]} or True
    twice = await host.request("draw.run", {"id": draw["id"]})
    assert twice["type"] == "error" and twice["data"]["code"] == "bad_state"


async def test_one_draw_at_a_time_and_closed_entries(running: Running) -> None:
    """A second draw waits for the first; entries after the window are refused."""
    room, host, _, (p1, p2), _ = await setup_room(running)
    draw = await _ok(host, "draw.create", {"title": "A", "count": 1, "mode": "join"})
    busy = await host.request("draw.create", {"title": "B", "count": 1, "mode": "join"})
    assert busy["data"]["code"] == "bad_state"
    await _ok(p1, "draw.enter", {"id": draw["id"]})
    await _ok(host, "draw.close", {"id": draw["id"]})
    late = await p2.request("draw.enter", {"id": draw["id"]})
    assert late["data"]["code"] == "draw_closed"


async def test_keyword_comments_enter(running: Running) -> None:
    """A keyword draw enters those who comment the keyword (any case, spacing, width) in the window."""
    room, host, _, (p1, p2, p3), _ = await setup_room(running, viewers=3)
    draw = await _ok(
        host, "draw.create", {"title": "Tea", "count": 5, "mode": "keyword", "keyword": "我要茶"}
    )
    await _ok(p1, "item.submit", {"text": "我要茶!!"})
    await _ok(p2, "item.submit", {"text": "我 要 茶"})
    await _ok(p3, "item.submit", {"text": "好看"})
    drawn = await _ok(host, "draw.run", {"id": draw["id"]})
    assert {w["name"] for w in drawn["winners"]} == {"v0", "v1"}
    assert drawn["unfilled"] == 3  # more prizes than entrants: everyone wins, the host is told


async def test_askers_tiers_weights_and_exclusion(running: Running) -> None:
    """Askers are the entrants; a buyers-only tier goes to nobody without orders; earlier winners
    are excluded when asked."""
    room, host, _, (p1, p2), _ = await setup_room(running)
    await _ok(p1, "item.submit", {"kind": "question", "text": "Size?"})
    await _ok(p2, "item.submit", {"kind": "question", "text": "Colour?"})
    first = await _ok(
        host, "draw.create",
        {"title": "Gift", "mode": "askers", "tiers": [{"name": "VIP", "count": 1, "eligible": "buyers"},
                                                     {"name": "Gift", "count": 1}], "weights": {"asked": 2}},
    )  # fmt: skip
    assert first["status"] == "frozen" and first["entrants"] == 2
    drawn = await _ok(host, "draw.run", {"id": first["id"]})
    assert [w["tier"] for w in drawn["winners"]] == [1] and drawn["unfilled"] == 1
    won_by = drawn["winners"][0]["viewer_id"]
    second = await _ok(
        host, "draw.create", {"title": "Again", "mode": "askers", "count": 2, "exclude_winners": True}
    )
    assert second["entrants"] == 1
    redrawn = await _ok(host, "draw.run", {"id": second["id"]})
    assert [w["viewer_id"] for w in redrawn["winners"]] != [won_by]


async def test_a_draw_the_clock_freezes_first_is_answered_frozen(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An askers draw has no window: the draw clock may freeze it between its creation and the
    creating action's own freeze (seen on a loaded machine). The host is answered with the draw as
    stored, frozen with its entrants, not with the copy the lost race left open."""
    _room, host, _, (p1, p2), _ = await setup_room(running)
    await _ok(p1, "item.submit", {"kind": "question", "text": "Size?"})
    await _ok(p2, "item.submit", {"kind": "question", "text": "Colour?"})
    engine = running.app.state.services.engines.get(DrawEngine)
    facts = store.settle_facts
    raced: list[bool] = []

    async def clock_first(db: Any, d: Any) -> Any:
        if not raced:  # the clock's tick lands here, once (its own freeze reads the facts too)
            raced.append(True)
            await engine.tick_clock(d.closes_ms)
        return await facts(db, d)

    monkeypatch.setattr(store, "settle_facts", clock_first)
    made = await _ok(host, "draw.create", {"title": "Gift", "mode": "askers", "count": 1})
    assert raced and made["status"] == "frozen" and made["entrants"] == 2


async def test_absent_redraws_only_that_place(running: Running) -> None:
    """One winner marked absent: that place only is re-drawn, the others keep theirs, the record verifies."""
    room, host, screen, phones, joined = await setup_room(running, viewers=5)
    draw = await _ok(host, "draw.create", {"title": "Cards", "count": 2, "mode": "join"})
    for phone in phones:
        await _ok(phone, "draw.enter", {"id": draw["id"]})
    drawn = await _ok(host, "draw.run", {"id": draw["id"]})
    before = {w["place"]: w["viewer_id"] for w in drawn["winners"]}
    await _ok(host, "draw.confirm", {"id": draw["id"], "place": 2})
    after = await _ok(host, "draw.absent", {"id": draw["id"], "place": 1})
    now = {w["place"]: w["viewer_id"] for w in after["winners"] if w["status"] != "absent"}
    assert now[2] == before[2] and now[1] not in before.values()
    async with httpx.AsyncClient(base_url=running.base) as http:
        record = (await http.get(f"/d/{draw['code']}/record.json")).json()
        page = await http.get(f"/d/{draw['code']}")
    assert rules.verify_record(record).valid
    assert 'data-verdict="valid"' in page.text
    assert all(w["name"] != "v0" or w["name"] == text.mask_name("v0") for w in record["winners"])


async def test_winner_claims_in_time_with_valid_contact(running: Running) -> None:
    """Only the winner may claim, with a real phone number or email; the winner sees the prize after
    a reload (personal state)."""
    room, host, _, phones, joined, drawn = await _drawn(running)
    winner_id = drawn["winners"][0]["viewer_id"]
    index = next(i for i, j in enumerate(joined) if j["viewer_id"] == winner_id)
    winner, loser = phones[index], phones[(index + 1) % 3]
    refused = await loser.request("draw.claim", {"id": drawn["id"], "name": "X", "phone": "13812345678"})
    assert refused["data"]["code"] == "not_a_winner"
    for bad, code in [({"phone": "12345"}, "bad_phone"), ({"email": "a@b"}, "bad_email"), ({}, "invalid")]:
        reply = await winner.request("draw.claim", {"id": drawn["id"], "name": "张小三", **bad})
        assert reply["data"]["code"] == code, reply
    claimed = await _ok(
        winner, "draw.claim", {"id": drawn["id"], "name": "张小三", "phone": "138 1234 5678", "consent": True}
    )
    assert claimed["status"] == "claimed"
    reloaded = await Client.connect(running.ws, "viewer", room["id"], {"token": joined[index]["token"]})
    mine = reloaded.welcome["personal"]["my_draws"][str(drawn["id"])]
    assert mine["wins"][0]["status"] == "claimed"
    history = (await host.recv_type("draw"))["data"]
    while history["winners"][0]["status"] != "claimed":
        history = (await host.recv_type("draw"))["data"]
    assert history["winners"][0]["claim_phone"] == "+8613812345678"


async def test_claim_window_closes(running: Running) -> None:
    """A claim after the claim window is refused."""
    from sqlalchemy import update

    from server.storage.models import Draw

    room, host, _, phones, joined, drawn = await _drawn(running)
    async with running.app.state.services.db.session() as session:
        await session.exec(update(Draw).values(claim_until_ms=1))
        await session.commit()
    for phone in phones:
        reply = await phone.request("draw.claim", {"id": drawn["id"], "name": "A", "email": "a@example.com"})
        assert reply["data"]["code"] in ("claim_closed",)


async def test_shake_race_ranks_by_shakes(running: Running) -> None:
    """In a shake race the phones that shook most win."""
    room, host, _, (p1, p2, p3), _ = await setup_room(running, viewers=3)
    draw = await _ok(host, "draw.create", {"title": "Shake", "count": 1, "mode": "shake", "window_secs": 30})
    await _ok(p1, "draw.shake", {"id": draw["id"], "count": 10})
    await _ok(p2, "draw.shake", {"id": draw["id"], "count": 50})
    too_fast = await p2.request("draw.shake", {"id": draw["id"], "count": 50})
    assert too_fast["data"]["code"] == "rate_limited"  # one message per 500 ms: scripts gain nothing
    await _ok(p3, "draw.shake", {"id": draw["id"], "count": 3})
    bad = await p3.request("draw.shake", {"id": draw["id"], "count": 500})
    assert bad["data"]["code"] == "invalid"
    drawn = await _ok(host, "draw.run", {"id": draw["id"]})
    assert drawn["winners"][0]["name"] == "v1"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"title": "", "count": 1}, "title"),
        ({"title": "A", "count": 0}, "count"),
        ({"title": "A", "count": 1, "mode": "lottery"}, "mode"),
        ({"title": "A", "count": 1, "mode": "keyword"}, "keyword"),
        ({"title": "A", "count": 1, "window_secs": 1}, "window_secs"),
        ({"title": "A", "tiers": []}, "tiers"),
        ({"title": "A", "count": 1, "weights": {"bribed": 5}}, "weights"),
        ({"title": "A", "count": 1, "tier_order": "best"}, "tier_order"),
    ],
)
async def test_bad_draws_are_refused(running: Running, data: dict[str, Any], message: str) -> None:
    """Nonsense setups get a clear error naming the field."""
    _, host, _, _, _ = await setup_room(running, viewers=0)
    reply = await host.request("draw.create", data)
    assert reply["type"] == "error" and message in reply["data"]["message"], reply


async def _verify(path: Any) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "verify-draw", str(path), cwd=REPO, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_cli_verifies_and_catches_tampering(running: Running, tmp_path: Any) -> None:
    """`livewall verify-draw` says VALID for the exported record and NOT VALID once it is edited."""
    room, host, _, phones, joined, drawn = await _drawn(running, phones=4)
    async with httpx.AsyncClient(base_url=running.base) as http:
        record = (await http.get(f"/d/{drawn['code']}/record.json")).json()
    path = tmp_path / "draw.json"
    path.write_text(json.dumps(record))
    ok = await _verify(path)
    assert ok[0] == 0 and "VALID" in ok[1]
    record["winners"][0]["entrant"] = next(
        e["id"] for e in record["entrants"] if e["id"] != record["winners"][0]["entrant"]
    )
    path.write_text(json.dumps(record))
    bad = await _verify(path)
    assert bad[0] == 1 and "NOT VALID" in bad[1]


async def test_late_entries_and_shakes_never_change_the_committed_list(running: Running) -> None:
    """An entry or shake that lands after entries closed (a request already in flight) is left out: the
    published entrant hash still matches the record, and the draw still verifies."""
    from server.draws.actions import enter
    from server.draws.store import load_draw

    room, host, _, (p1, p2), joined = await setup_room(running)
    draw = await _ok(host, "draw.create", {"title": "Race", "count": 1, "mode": "shake", "window_secs": 30})
    await _ok(p1, "draw.shake", {"id": draw["id"], "count": 5})
    services = running.app.state.services
    stale = await load_draw(services.db, room["id"], draw["id"])  # as a request in flight saw it: open
    closed = await _ok(host, "draw.close", {"id": draw["id"]})
    await enter(services, stale, joined[1]["viewer_id"], stale.created_ms + 1)
    services.engines.get(DrawEngine).shake(stale, joined[0]["viewer_id"], 50)
    await services.engines.get(DrawEngine).flush()
    drawn = await _ok(host, "draw.run", {"id": draw["id"]})
    assert drawn["entrants"] == 1 and drawn["entrants_sha256"] == closed["entrants_sha256"]
    async with httpx.AsyncClient(base_url=running.base) as http:
        record = (await http.get(f"/d/{draw['code']}/record.json")).json()
    assert [e["shakes"] for e in record["entrants"]] == [5]
    assert rules.verify_record(record).valid


async def test_two_moderators_marking_absent_never_give_two_places(running: Running) -> None:
    """Two places marked absent at the same moment: one re-draw wins, the other is refused (look again),
    nobody holds two places, and the record still verifies."""
    room, host, _, phones, _ = await setup_room(running, viewers=6)
    other = await Client.connect(running.ws, "host", room["id"], {"token": room["host_token"], "name": "Bo"})
    draw = await _ok(host, "draw.create", {"title": "Pair", "count": 2, "mode": "join"})
    for phone in phones:
        await _ok(phone, "draw.enter", {"id": draw["id"]})
    await _ok(host, "draw.run", {"id": draw["id"]})
    one, two = await asyncio.gather(
        host.request("draw.absent", {"id": draw["id"], "place": 1}),
        other.request("draw.absent", {"id": draw["id"], "place": 2}),
    )
    assert sorted([one["type"], two["type"]]) in (["ack", "ack"], ["ack", "error"])
    async with httpx.AsyncClient(base_url=running.base) as http:
        record = (await http.get(f"/d/{draw['code']}/record.json")).json()
    holders = [w["entrant"] for w in record["winners"]]
    assert len(holders) == len(set(holders)) == 2
    assert rules.verify_record(record).valid


async def test_many_phones_entering_at_once(running: Running) -> None:
    """An everyone draw: 150 phones enter within the same moment, each once, and all are counted."""
    from server.auth import Principal, Role
    from server.draws.actions import do_enter
    from server.draws.wire import DrawRef
    from tests.helpers import join

    room, host, _, _, _ = await setup_room(running, viewers=0)
    draw = await _ok(host, "draw.create", {"title": "All", "count": 3, "mode": "everyone", "window_secs": 60})
    viewers = [(await join(running.base, room["id"], f"e{i}"))["viewer_id"] for i in range(150)]
    services = running.app.state.services

    async def enter(v: str) -> dict[str, Any]:
        return (await do_enter(services, Principal(Role.VIEWER, room["id"], v), DrawRef(draw["id"]))).shape()

    results = await asyncio.gather(*(enter(v) for v in viewers * 2))
    assert len({r["entrant"] for r in results}) == 150
    drawn = await _ok(host, "draw.run", {"id": draw["id"]})
    assert drawn["entrants"] == 150 and len(drawn["winners"]) == 3


async def test_keyword_entry_is_told_and_blocked_comments_do_not_enter(running: Running) -> None:
    """A phone entered by its keyword comment is told its pseudonym at once (a direct frame); a comment
    held for a blocked word enters nobody; a claim keeps the consent wording in the winner's language."""
    room, host, _, (p1, p2), _ = await setup_room(running)
    draw = await _ok(host, "draw.create", {"title": "Tea", "count": 2, "mode": "keyword", "keyword": "喝茶"})
    await p1.ws.send(json.dumps({"type": "item.submit", "id": "k1", "data": {"text": "喝茶喝茶"}}))
    told = await _direct(p1, "draw.entry")  # (it may come before or after the comment's ack)
    assert told["id"] == draw["id"] and told["entrant"]
    await _ok(p2, "item.submit", {"text": "喝茶 骗子"})  # a blocked word: held for review
    drawn = await _ok(host, "draw.run", {"id": draw["id"]})
    assert [w["entrant"] for w in drawn["winners"]] == [told["entrant"]]
    await _ok(
        p1,
        "draw.claim",
        {"id": draw["id"], "name": "小明", "phone": "13812345678", "consent": True, "lang": "zh-CN"},
    )
    from sqlmodel import select

    from server.storage.models import DrawWinner

    async with running.app.state.services.db.session() as session:
        winner = (await session.exec(select(DrawWinner).where(DrawWinner.draw_id == draw["id"]))).one()
    assert winner.consent and winner.consent_text and "同意" in winner.consent_text


async def test_a_claim_with_consent_makes_the_winner_a_contact(running: Running) -> None:
    """Follow-up reacts to a prize claim: the winner becomes a contact, the phone is granted at once
    and the email waits for its double opt-in (one confirmation queued)."""
    from sqlmodel import col, select

    from server.storage.followup import Consent, ContactViewer, Message

    room, host, _, phones, joined, drawn = await _drawn(running)
    winner_id = drawn["winners"][0]["viewer_id"]
    index = next(i for i, j in enumerate(joined) if j["viewer_id"] == winner_id)
    claim = {"id": drawn["id"], "name": "张小三", "phone": "13812345678", "email": "zs@example.com"}
    await _ok(phones[index], "draw.claim", {**claim, "consent": True})
    async with running.app.state.services.db.session() as session:
        link = await session.get(ContactViewer, winner_id)
        assert link is not None
        said = (await session.exec(select(Consent).where(Consent.contact_id == link.contact_id))).all()
        optins = (await session.exec(select(Message).where(col(Message.idem_key).like("optin:%")))).all()
    assert {(c.channel, c.status, c.source) for c in said} == {
        ("email", "pending", "draw claim"),
        ("sms", "granted", "draw claim"),
    }
    assert len(optins) == 1
