"""The host console's question queue and moderation tools in headless Chromium against the real server."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from tests.helpers import Client, Running, create_room, join

pytestmark = pytest.mark.browser


async def _console(browser: Browser, running: Running, room: dict[str, str], name: str | None = None) -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    if name is not None:
        await page.add_init_script(f"localStorage.setItem('lw.console.name', {name!r})")
    await page.goto(f"{running.base}/host/{room['id']}/login#key={room['host_key']}")
    await expect(page).to_have_url(f"{running.base}/host/{room['id']}")
    await expect(page.locator("html")).to_have_attribute("data-conn", "live")
    return page


async def _viewer(running: Running, room: dict[str, str], name: str) -> Client:
    token = (await join(running.base, room["id"], name))["token"]
    return await Client.connect(running.ws, "viewer", room["id"], {"token": token})


async def _ask(viewer: Client, text: str, kind: str = "question") -> dict[str, Any]:
    ack = await viewer.request("item.submit", {"kind": kind, "text": text})
    assert ack["type"] == "ack", ack
    result: dict[str, Any] = ack["data"]["result"]
    return result


def _row(page: Page, text: str) -> Locator:
    return page.locator(".q-row", has_text=text)


def _texts(page: Page) -> Locator:
    return page.locator("[data-queue-list] .q-row .q-text")


async def _away(page: Page) -> None:
    await page.mouse.move(1270, 790)


async def test_queue_is_live_sorts_filters_and_searches(browser: Browser, running: Running) -> None:
    """New questions appear without reload; sort by votes or time; filter by kind and status; search."""
    room = await create_room(running)
    page = await _console(browser, running, room)
    await _away(page)
    a, b = await _viewer(running, room, "Ann"), await _viewer(running, room, "Bo")
    first = await _ask(a, "Size for 170 cm?")
    await expect(_row(page, "Size for 170 cm?")).to_be_visible()
    await _ask(b, "Ships to Shenzhen?")
    await _ask(b, "Add a navy colour please", kind="suggestion")
    await _ask(a, "love it", kind="comment")
    await expect(_texts(page)).to_have_count(3)  # comments are not feedback
    await b.request("item.vote", {"id": first["id"], "up": True})
    await page.locator("[data-sort] [data-value=votes]").click()
    await expect(_texts(page).first).to_have_text("Size for 170 cm?")
    await page.locator("[data-sort] [data-value=time]").click()
    await expect(_texts(page)).to_have_text(
        ["Add a navy colour please", "Ships to Shenzhen?", "Size for 170 cm?"]
    )

    await page.locator("[data-filter-kind]").select_option("suggestion")
    await expect(_texts(page)).to_have_text(["Add a navy colour please"])
    await page.locator("[data-filter-kind]").select_option("comment")
    await expect(_texts(page)).to_have_text(["love it"])
    await page.locator("[data-filter-kind]").select_option("feedback")
    await page.locator("[data-search]").fill("shenzhen")
    await expect(_texts(page)).to_have_text(["Ships to Shenzhen?"])
    await page.locator("[data-search]").fill("")
    await _row(page, "Ships to Shenzhen?").locator("[data-act=hide]").click()
    await expect(_texts(page)).to_have_count(2)
    await page.locator("[data-filter-status]").select_option("hidden")
    await expect(_texts(page)).to_have_text(["Ships to Shenzhen?"])
    await _row(page, "Ships to Shenzhen?").locator("[data-act=restore]").click()
    await expect(_texts(page)).to_have_count(0)
    await page.locator("[data-filter-status]").select_option("open")
    await expect(_texts(page)).to_have_count(3)


async def test_pre_moderation_holds_then_approve_shows(browser: Browser, running: Running) -> None:
    """Pre-moderation holds a new question as pending (blocked words flagged); Approve shows it."""
    room = await create_room(running)
    page = await _console(browser, running, room)
    await page.locator("[data-moderation] [data-value=pre]").click()
    await expect(page.locator("[data-moderation] [data-value=pre]")).to_have_attribute("aria-pressed", "true")
    viewer = await _viewer(running, room, "Ann")
    item = await _ask(viewer, "Is this a scam?")
    assert item["status"] == "pending"
    row = _row(page, "Is this a scam?")
    await expect(row).to_have_attribute("data-status", "pending")
    await expect(row.locator(".q-blocked")).to_have_text("Blocked word: scam")
    await expect(page.locator("[data-pending-chip]")).to_have_text("1 awaiting approval")
    await row.locator("[data-act=approve]").click()
    await expect(row).to_have_attribute("data-status", "visible")
    await expect(page.locator("[data-pending-chip]")).to_be_hidden()


async def test_claim_shows_as_taken_to_another_console(browser: Browser, running: Running) -> None:
    """An item taken in one console shows who has it in another, which cannot take it."""
    room = await create_room(running)
    ann = await _console(browser, running, room, "Ann")
    bo = await _console(browser, running, room, "Bo")
    await _ask(await _viewer(running, room, "v"), "Does it come in XL?")
    await _row(ann, "Does it come in XL?").locator("[data-act=claim]").click()
    await expect(_row(ann, "Does it come in XL?").locator(".q-claim")).to_have_text("You have it")
    row = _row(bo, "Does it come in XL?")
    await expect(row.locator(".q-claim")).to_have_text("Taken by Ann")
    await expect(row.locator("[data-act=claim]")).to_be_disabled()
    await row.locator(".q-text").click()
    await bo.keyboard.press("c")  # the shortcut still asks the server, which refuses
    await expect(bo.locator(".toast")).to_have_text("Another moderator has this item.")
    await expect(row.locator(".q-claim")).to_have_text("Taken by Ann")


async def test_answer_now_next_and_clear_drive_the_spotlight(browser: Browser, running: Running) -> None:
    """A puts the selected question on screen; Next answers it and moves on; Clear empties the spotlight."""
    room = await create_room(running)
    page = await _console(browser, running, room)
    await _away(page)
    viewer = await _viewer(running, room, "Ann")
    await _ask(viewer, "First question")
    await _ask(viewer, "Second question")
    await expect(_texts(page)).to_have_count(2)
    await page.keyboard.press("j")
    await page.keyboard.press("a")
    await expect(page.locator("[data-spotlight] .sp-text")).to_have_text("First question")
    await expect(_row(page, "First question")).to_have_class(re.compile(r"\bis-onair\b"))
    await page.locator("[data-spotlight-next]").click()
    await expect(page.locator("[data-spotlight] .sp-text")).to_have_text("Second question")
    await expect(_texts(page)).to_have_text(["Second question"])  # the first is answered now
    await page.locator("[data-spotlight-clear]").click()
    await expect(page.locator("[data-spotlight] .sp-text")).to_have_count(0)


async def test_slow_mode_layout_and_blocklist_are_sent(browser: Browser, running: Running) -> None:
    """Slow mode and layout reach the screen as room.settings; an edited blocklist survives a reload."""
    room = await create_room(running)
    page = await _console(browser, running, room)
    screen = await Client.connect(running.ws, "screen", room["id"], {"key": room["screen_key"]})
    await page.locator("[data-slow-mode]").select_option("30")
    msg = await screen.recv_type("room.settings")
    assert msg["data"]["slow_mode_secs"] == 30
    await page.locator("[data-layout] [data-value=top]").click()
    msg = await screen.recv_type("room.settings")
    assert msg["data"]["layout"] == "top"
    await expect(page.locator("[data-layout] [data-value=top]")).to_have_attribute("aria-pressed", "true")

    area = page.locator("[data-blocklist]")
    await expect(area).to_have_value(re.compile(r"\bscam\n(.|\n)*傻逼"))  # the en and zh-CN defaults
    await area.fill("scam\nspoiler\n剧透")
    await page.locator("[data-blocklist-form] button[type=submit]").click()
    await expect(page.locator("[data-blocklist-count]")).to_have_text("3")
    await page.reload()
    await expect(page.locator("html")).to_have_attribute("data-conn", "live")
    await expect(area).to_have_value("scam\nspoiler\n剧透")
    await expect(page.locator("[data-slow-mode]")).to_have_value("30")


async def test_export_links_download_the_items(browser: Browser, running: Running) -> None:
    """The console's export links give JSON and CSV with the room's questions and answers."""
    room = await create_room(running)
    page = await _console(browser, running, room)
    await _ask(await _viewer(running, room, "Ann"), "Machine washable? 可以机洗吗")
    row = _row(page, "Machine washable?")
    await row.locator("[data-act=more]").click()
    await row.locator("[data-form=answer] textarea").fill("Yes, 30 °C")
    await row.locator("[data-form=answer] button[type=submit]").click()
    await expect(row.locator(".q-answer")).to_contain_text("Yes, 30 °C")
    for fmt in ("json", "csv"):
        href = await page.locator(f"[data-export={fmt}]").get_attribute("href")
        assert href is not None
        response = await page.request.get(f"{running.base}{href}")
        assert response.ok, await response.text()
        body = await response.text()
        assert "Machine washable? 可以机洗吗" in body and "Yes, 30 °C" in body
    data = await (await page.request.get(f"{running.base}/api/rooms/{room['id']}/export.json")).json()
    assert data["items"][0]["answer"] == "Yes, 30 °C"


async def test_list_does_not_jump_under_the_pointer(browser: Browser, running: Running) -> None:
    """Pointer over the queue: votes and new items reorder nothing until it leaves or the bar is clicked."""
    room = await create_room(running)
    page = await _console(browser, running, room)
    await _away(page)
    voters = [await _viewer(running, room, f"v{i}") for i in range(4)]
    a = await _ask(voters[0], "Alpha")
    b = await _ask(voters[0], "Bravo")
    await expect(_texts(page)).to_have_text(["Alpha", "Bravo"])

    await page.locator("[data-queue-list]").hover()
    await voters[1].request("item.vote", {"id": b["id"], "up": True})
    await expect(_row(page, "Bravo").locator(".q-vote-n")).to_have_text("1")
    c = await _ask(voters[2], "Charlie")
    for v in (voters[0], voters[1], voters[3]):
        await v.request("item.vote", {"id": c["id"], "up": True})
    # A vote cast after Charlie's shows on a visible row: the console then holds Charlie's three votes
    # too (each queue event carries the whole list), so the click below shows the settled order. On a
    # loaded machine the click could otherwise come between two ticks of Charlie's votes.
    await voters[2].request("item.vote", {"id": b["id"], "up": True})
    await expect(_row(page, "Bravo").locator(".q-vote-n")).to_have_text("2")
    await expect(page.locator("[data-new-bar]")).to_have_text("↑ 1 new: show")
    await expect(_texts(page)).to_have_text(["Alpha", "Bravo"])  # held: no reorder, no insert

    await page.locator("[data-new-bar]").click()
    await expect(_texts(page)).to_have_text(["Charlie", "Bravo", "Alpha"])
    await expect(page.locator("[data-new-bar]")).to_be_hidden()

    await page.locator("[data-queue-list]").hover()
    await voters[2].request("item.vote", {"id": a["id"], "up": True})
    await voters[1].request("item.vote", {"id": a["id"], "up": True})
    await voters[0].request("item.vote", {"id": a["id"], "up": True})
    await voters[3].request("item.vote", {"id": a["id"], "up": True})  # over Charlie's three
    await expect(_row(page, "Alpha").locator(".q-vote-n")).to_have_text("4")
    await expect(_texts(page)).to_have_text(["Charlie", "Bravo", "Alpha"])
    await _away(page)
    await expect(_texts(page)).to_have_text(["Alpha", "Charlie", "Bravo"])
