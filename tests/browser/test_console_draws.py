"""The host console's Draws tab in headless Chromium against the real server: set up a draw from the
form, watch entries arrive, draw once, re-draw an absent place, verify, history and the CSV export.

Viewers are protocol clients; every wait is on a DOM condition, never a fixed sleep.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Dialog, Locator, Page, WebSocket, expect

from server.domains import default_registry
from server.rooms.snapshot import apply_event
from server.storage.models import Draw
from tests.helpers import Client, Running, create_room, join

REDUCERS = default_registry().reducers  # the reference reducer's parts, as the app has them

pytestmark = pytest.mark.browser


@dataclass
class Console:
    """The console page on its Draws tab, with what it sent over the WebSocket and any script error."""

    page: Page
    sent: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def sent_types(self, kind: str) -> int:
        return sum(1 for frame in self.sent if frame.get("type") == kind)

    @property
    def form(self) -> Locator:
        return self.page.locator("[data-draw-form]")

    @property
    def winners(self) -> Locator:
        return self.page.locator("[data-draw-winners] > li")

    async def draw_id(self) -> int:
        return int(await self.page.locator("[data-draw-body]").get_attribute("data-draw-id") or "0")


async def _accept(dialog: Dialog) -> None:
    await dialog.accept()


async def _console(browser: Browser, running: Running, room: dict[str, str]) -> Console:
    """The console, logged in, on the Draws tab; confirm dialogs are accepted."""
    context = await browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    page = await context.new_page()
    console = Console(page)

    def on_socket(ws: WebSocket) -> None:
        def on_frame(payload: str | bytes) -> None:
            if isinstance(payload, str):
                console.sent.append(json.loads(payload))

        ws.on("framesent", on_frame)

    page.on("websocket", on_socket)
    page.on("dialog", _accept)
    page.on("pageerror", lambda exc: console.errors.append(str(exc)))
    await page.goto(f"{running.base}/host/{room['id']}/login#key={room['host_key']}")
    await expect(page).to_have_url(f"{running.base}/host/{room['id']}")
    await expect(page.locator("html")).to_have_attribute("data-conn", "live")
    await page.locator("[data-tab=draws]").click()
    await expect(page.locator("[data-panel=draws]")).to_be_visible()
    await expect(page.locator("[data-panel=questions]")).to_be_hidden()
    await expect(page.locator("[data-draw-none]")).to_be_visible()
    return console


async def _viewer(running: Running, room: dict[str, str], name: str) -> Client:
    token = (await join(running.base, room["id"], name))["token"]
    return await Client.connect(running.ws, "viewer", room["id"], {"token": token})


async def _ok(client: Client, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    reply = await client.request(kind, data)
    assert reply["type"] == "ack", reply
    result: dict[str, Any] = reply["data"]["result"]
    return result


async def _create_join_draw(console: Console, title: str) -> int:
    """A one-prize draw that viewers join, with a 60 s window, set up through the form."""
    form = console.form
    await form.locator("[name=title]").fill(title)
    await form.locator("[name=count]").fill("1")
    await form.locator("[name=mode]").select_option("join")
    await form.locator("[name=window_secs]").fill("60")
    await form.locator("[data-draw-submit]").click()
    await expect(console.page.locator("[data-draw-status]")).to_have_text("Entries open")
    await expect(console.page.locator("[data-draw-title]")).to_have_text(title)
    return await console.draw_id()


async def _drawn_between_two(browser: Browser, running: Running) -> tuple[Console, dict[str, Client], int]:
    """A join draw that Ann and Bo entered, drawn from the console: one winner."""
    room = await create_room(running)
    console = await _console(browser, running, room)
    draw_id = await _create_join_draw(console, "口红 Lipstick")
    page = console.page
    await expect(page.locator("[data-draw-countdown]")).to_have_text(re.compile(r"^(1:00|0:[1-5]\d)$"))
    await expect(page.locator("[data-draw-badge]")).to_have_text("0 in")
    viewers = {name: await _viewer(running, room, name) for name in ("Ann", "Bo")}
    for viewer in viewers.values():
        await _ok(viewer, "draw.enter", {"id": draw_id})
    await expect(page.locator("[data-draw-entrants]")).to_have_text("2")
    await expect(page.locator("[data-draw-badge]")).to_have_text("2 in")
    await page.locator("[data-draw-act=run]").dblclick()
    await expect(page.locator("[data-draw-status]")).to_have_text("Drawn")
    await expect(console.winners).to_have_count(1)
    return console, viewers, draw_id


async def test_join_draw_from_the_form_to_a_verified_winner(browser: Browser, running: Running) -> None:
    """Set up from the form, two entrants counted live, one press of Draw (a double click sends one
    draw.run), the winner's full name, the revealed seed, and a verify page that says valid."""
    console, _, draw_id = await _drawn_between_two(browser, running)
    page = console.page
    winner = console.winners.first
    await expect(winner.locator("[data-winner-name]")).to_have_text(re.compile(r"^(Ann|Bo)$"))
    await expect(winner).to_have_attribute("data-status", "won")
    await expect(winner.locator(".d-tier-name")).to_have_text("口红 Lipstick")
    assert console.sent_types("draw.run") == 1
    await expect(page.locator("[data-draw-error]")).to_be_empty()
    await expect(page.locator("[data-draw-act=run]")).to_be_hidden()
    await expect(page.locator("[data-draw-badge]")).to_be_hidden()

    seed = await page.locator("[data-draw-seed]").inner_text()
    assert re.fullmatch(r"[0-9a-f]{64}", seed)
    seed_hash = await page.locator("[data-draw-seed-hash]").inner_text()
    assert hashlib.sha256(bytes.fromhex(seed)).hexdigest() == seed_hash
    await expect(page.locator("[data-draw-entrants-hash]")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))

    async with page.context.expect_page() as opened:
        await page.locator("[data-draw-verify]").click()
    verify = await opened.value
    await expect(verify).to_have_url(re.compile(r"/d/[0-9a-f]+$"))
    await expect(verify.locator("[data-verdict]")).to_have_attribute("data-verdict", "valid")
    await expect(verify.locator("[data-seed]")).to_have_text(seed)
    assert draw_id and not console.errors


async def test_absent_redraws_the_place_then_confirm_claim_history_and_export(
    browser: Browser, running: Running
) -> None:
    """Absent re-draws the place (the other viewer wins it, the first shows absent); Confirm; the
    winner's claim appears; the history lists the draw; the CSV export has a row per winner."""
    console, viewers, draw_id = await _drawn_between_two(browser, running)
    page = console.page
    first = await console.winners.first.locator("[data-winner-name]").inner_text()
    other = next(name for name in viewers if name != first)
    await console.winners.first.locator("[data-place-act=absent]").click()
    await expect(console.winners).to_have_count(2)
    absent = page.locator("[data-draw-winners] > li[data-status=absent]")
    await expect(absent.locator("[data-winner-name]")).to_have_text(first)
    await expect(absent.locator("button")).to_have_count(0)
    won = page.locator("[data-draw-winners] > li[data-status=won]")
    await expect(won.locator("[data-winner-name]")).to_have_text(other)
    await expect(won).to_have_attribute("data-place", "1")
    await expect(page.locator(".toast")).to_have_text("The place was drawn again.")

    await won.locator("[data-place-act=confirm]").click()
    confirmed = page.locator("[data-draw-winners] > li[data-status=confirmed]")
    await expect(confirmed.locator("[data-winner-name]")).to_have_text(other)
    await expect(confirmed.locator("[data-place-act=confirm]")).to_have_count(0)
    await expect(page.locator("[data-draw-unfilled]")).to_be_hidden()

    await _ok(
        viewers[other],
        "draw.claim",
        {"id": draw_id, "name": "张小三", "phone": "138 1234 5678", "consent": True},
    )
    claimed = page.locator("[data-draw-winners] > li[data-status=claimed]")
    await expect(claimed.locator("[data-claim]")).to_contain_text("张小三")
    await expect(claimed.locator("[data-claim]")).to_contain_text("+8613812345678")
    await expect(claimed.locator("[data-claim]")).to_contain_text("agrees to follow-up messages")

    row = page.locator(f"[data-draw-history] tr[data-draw-id='{draw_id}']")
    await expect(row).to_contain_text("口红 Lipstick")
    await expect(row.locator("[data-history-entrants]")).to_have_text("2")
    await expect(row.locator(".d-h-winner")).to_have_text(f"{other} Claimed")
    await expect(row.locator("[data-history-claimed]")).to_have_text("1/1")

    async with page.expect_download() as downloading:
        await page.locator("[data-draw-export]").click()
    download = await downloading.value
    path = await download.path()
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8-sig"))))
    assert sorted((r["name"], r["status"], r["place"]) for r in rows) == sorted(
        [(first, "absent", "1"), (other, "claimed", "1")]
    )
    assert {r["title"] for r in rows} == {"口红 Lipstick"}
    # E.164 numbers start with "+": the export quotes such cells against spreadsheet formulas.
    assert next(r for r in rows if r["status"] == "claimed")["claim_phone"] == "'+8613812345678"
    assert console.sent_types("draw.absent") == 1 and not console.errors


async def test_keyword_draw_enters_those_who_comment_it(browser: Browser, running: Running) -> None:
    """A keyword draw from the form: only comments with the keyword enter, the winner is one of them;
    a second draw while this one runs shows the server's refusal."""
    room = await create_room(running)
    console = await _console(browser, running, room)
    page, form = console.page, console.form
    await form.locator("[name=title]").fill("茶 Tea")
    await form.locator("[name=mode]").select_option("keyword")
    await expect(page.locator("[data-window-field]")).to_be_visible()
    await form.locator("[data-draw-submit]").click()  # no keyword yet: the form says so, nothing is sent
    await expect(page.locator("[data-draw-form-error]")).to_have_text(
        "Enter the keyword viewers comment to enter."
    )
    assert console.sent_types("draw.create") == 0
    await form.locator("[name=keyword]").fill("我要茶")
    await form.locator("[name=window_secs]").fill("60")
    await form.locator("[data-draw-submit]").click()
    await expect(page.locator("[data-draw-status]")).to_have_text("Entries open")
    await expect(page.locator("[data-draw-meta]")).to_have_text("Keyword: 我要茶")
    draw_id = await console.draw_id()

    ann, bo, cy = [await _viewer(running, room, name) for name in ("Ann", "Bo", "Cy")]
    await _ok(ann, "item.submit", {"text": "我要茶!!"})
    await _ok(cy, "item.submit", {"text": "好看"})
    await _ok(bo, "item.submit", {"text": "我 要 茶"})
    await expect(page.locator("[data-draw-entrants]")).to_have_text("2")

    await form.locator("[name=title]").fill("Second")
    await form.locator("[data-draw-submit]").click()
    refused = page.locator("[data-draw-form-error]")
    await expect(refused).to_have_attribute("data-code", "bad_state")
    await expect(refused).to_contain_text("Another draw is still running: draw it or cancel it first.")
    await expect(refused.locator(".s-detail")).to_contain_text("a draw is already running")

    await page.locator("[data-draw-act=run]").click()
    await expect(page.locator("[data-draw-status]")).to_have_text("Drawn")
    await expect(console.winners).to_have_count(1)
    await expect(console.winners.locator("[data-winner-name]")).to_have_text(re.compile(r"^(Ann|Bo)$"))
    row = page.locator(f"[data-draw-history] tr[data-draw-id='{draw_id}']")
    await expect(row.locator("[data-history-entrants]")).to_have_text("2")
    assert not console.errors


async def test_tiers_weights_and_options_reach_the_server(browser: Browser, running: Running) -> None:
    """Prize tiers with eligibility and a random order, extra chances, exclusions, wins per viewer and
    claim time are sent as set; an askers draw is ready at once; empty places are told; a draw can be
    cancelled."""
    room = await create_room(running)
    console = await _console(browser, running, room)
    page, form = console.page, console.form
    asker = await _viewer(running, room, "Ann")
    await _ok(asker, "item.submit", {"kind": "question", "text": "What size?"})
    await form.locator("[name=title]").fill("Big night")
    await form.locator("[data-prize-kind] [data-value=tiers]").click()
    tiers = page.locator("[data-tier-list] > li")
    await expect(tiers).to_have_count(2)
    await tiers.nth(0).locator("[name=tier_name]").fill("VIP box")
    await tiers.nth(0).locator("[name=tier_eligible]").select_option("buyers")
    await tiers.nth(0).locator("[name=tier_image]").fill("ftp://nope")
    await tiers.nth(1).locator("[name=tier_name]").fill("Sticker")
    await tiers.nth(1).locator("[name=tier_count]").fill("3")
    await form.locator("[name=tier_order]").select_option("random")
    await form.locator("[name=mode]").select_option("askers")
    await expect(page.locator("[data-window-field]")).to_be_hidden()
    await form.locator("[name=weight_asked]").fill("2")
    await form.locator("[name=weight_delivered]").fill("11")
    await form.locator("[name=exclude_winners]").check()
    await form.locator("[name=max_wins]").fill("1")
    await form.locator("[name=claim_hours]").fill("2")
    await form.locator("[data-draw-submit]").click()
    error = page.locator("[data-draw-form-error]")
    await expect(error).to_have_text("Links must start with http:// or https://.")
    await tiers.nth(0).locator("[name=tier_image]").fill("https://img.example/vip.png")
    await form.locator("[data-draw-submit]").click()
    await expect(error).to_have_text("Enter a whole number from 0 to 10.")
    await form.locator("[name=weight_delivered]").fill("3")
    await form.locator("[data-draw-submit]").click()

    await expect(page.locator("[data-draw-status]")).to_have_text("Entries closed")
    await expect(page.locator("[data-draw-entrants]")).to_have_text("1")
    await expect(page.locator("[data-draw-prizes] > li")).to_have_text(["VIP box× 1", "Sticker× 3"])
    await expect(page.locator("[data-draw-act=close]")).to_be_hidden()
    await expect(page.locator("[data-draw-clock]")).to_be_hidden()
    await expect(page.locator("[data-draw-badge]")).to_have_text("Ready")
    sent = next(f for f in console.sent if f.get("type") == "draw.create")["data"]
    assert "window_secs" not in sent and sent["tier_order"] == "random"
    async with running.app.state.services.db.session() as session:
        d = await session.get(Draw, await console.draw_id())
    assert d is not None and d.mode == "askers" and d.tier_order_random and d.exclude_winners
    assert json.loads(d.tiers) == [
        {"name": "VIP box", "count": 1, "image_url": "https://img.example/vip.png", "eligible": "buyers"},
        {"name": "Sticker", "count": 3, "image_url": None, "eligible": "all"},
    ]
    assert json.loads(d.weights or "{}") == {"asked": 2, "delivered": 3}
    assert (d.max_wins, d.claim_secs) == (1, 7200)

    await page.locator("[data-draw-act=run]").click()  # one asker, no buyer: three places stay empty
    await expect(console.winners.locator("[data-winner-name]")).to_have_text(["Ann"])
    await expect(console.winners.locator(".d-tier-name")).to_have_text(["Sticker"])
    unfilled = page.locator("[data-draw-unfilled]")
    await expect(unfilled).to_have_text("Fewer entrants than prizes: 3 place(s) stay empty.")

    await form.locator("[data-draw-submit]").click()  # the same settings again: Ann is excluded now
    await expect(page.locator("[data-draw-status]")).to_have_text("Entries closed")
    await expect(page.locator("[data-draw-entrants]")).to_have_text("0")
    await expect(unfilled).to_be_hidden()
    second = await console.draw_id()
    await page.locator("[data-draw-act=cancel]").click()
    await expect(page.locator("[data-draw-status]")).to_have_text("Cancelled")
    await expect(page.locator("[data-draw-act=run]")).to_be_hidden()
    history = page.locator("[data-draw-history] tr")
    await expect(history).to_have_count(2)
    await expect(history.first).to_have_attribute("data-draw-id", str(second))
    await expect(history.first).to_contain_text("Cancelled")
    await expect(history.nth(1).locator(".d-h-winner")).to_have_text("Ann Won")
    assert not console.errors


async def test_state_js_draw_reducers_match_the_server(browser: Browser, running: Running) -> None:
    """The newest draw is the current one, history keeps 50, entrant counts only move open draws: the
    same in state.js as in the server's reducer."""
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{running.base}/")

    def draw(i: int, status: str = "drawn", entrants: int = 3) -> dict[str, Any]:
        return {"id": i, "code": f"c{i}", "title": f"D{i}", "status": status, "entrants": entrants,
                "winners": [{"place": 1, "tier": 0, "name": "Ann", "status": "won"}]}  # fmt: skip

    snapshot: dict[str, Any] = {
        "room": {"id": "r"},
        "draw": draw(50),
        "draws": [draw(i) for i in range(1, 51)],
    }
    events = [
        {"type": "draw", "data": draw(51, "open", 0)},  # the oldest leaves the history
        {"type": "draw.entrants", "data": {"id": 51, "entrants": 4}},
        {"type": "draw", "data": draw(49, "drawn", 9)},  # an older draw changes: not the current one
        {"type": "draw.entrants", "data": {"id": 49, "entrants": 1}},  # not open: ignored
        {"type": "draw", "data": draw(51, "frozen", 5)},
        {"type": "draw.entrants", "data": {"id": 51, "entrants": 6}},  # a late tick after closing
    ]
    expected = snapshot
    for event in events:
        expected = apply_event(expected, event["type"], event["data"], REDUCERS)
    got = await page.evaluate(
        """async ([snap, events]) => {
          const { applyEvent } = await import("/static/js/state.js");
          return events.reduce((s, e) => applyEvent(s, e.type, e.data), snap);
        }""",
        [snapshot, events],
    )
    assert got == expected
    assert expected["draw"]["id"] == 51 and expected["draw"]["entrants"] == 5
    assert [d["id"] for d in expected["draws"]][:1] == [2] and len(expected["draws"]) == 50
    viewer = {"room": {"id": "r"}, "draw": None}  # phones have no history
    phone_events = [events[0], events[1]]
    expected_phone = viewer
    for event in phone_events:
        expected_phone = apply_event(expected_phone, event["type"], event["data"], REDUCERS)
    got_phone = await page.evaluate(
        """async ([snap, events]) => {
          const { applyEvent } = await import("/static/js/state.js");
          return events.reduce((s, e) => applyEvent(s, e.type, e.data), snap);
        }""",
        [viewer, phone_events],
    )
    assert got_phone == expected_phone and "draws" not in got_phone and got_phone["draw"]["entrants"] == 4
