"""The whole question flow through the real pages: two phones, the host console and the big screen.

A phone asks under pre-moderation; the host approves it in the console; it shows on the other phone;
"Answer now" puts it in the screen's spotlight; the host types an answer; "Next" moves on and the
question is answered on the asker's phone.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import PHONE
from tests.helpers import Running, create_room

pytestmark = pytest.mark.browser

QUESTION = "Does the navy one run large? 藏青色偏大吗？"


async def _live(page: Page) -> None:
    await expect(page.locator("html")).to_have_attribute("data-conn", "live")


async def _phone(browser: Browser, base: str, room_id: str, name: str, locale: str) -> Page:
    page = await (await browser.new_context(**PHONE, locale=locale)).new_page()  # type: ignore[arg-type]
    await page.goto(f"{base}/r/{room_id}")
    await page.locator("input[name=name]").fill(name)
    await page.locator("[data-join]").click()
    await _live(page)
    return page


async def test_ask_approve_spotlight_answer(browser: Browser, running: Running) -> None:
    """ask -> approve -> spotlight -> answered, each step visible on every surface it concerns."""
    room = await create_room(running, "Q&A flow")
    console = await (await browser.new_context(viewport={"width": 1280, "height": 800})).new_page()
    await console.goto(f"{running.base}/host/{room['id']}/login#key={room['host_key']}")
    await _live(console)
    await console.locator("[data-moderation] [data-value=pre]").click()
    await expect(console.locator("[data-moderation-hint]")).to_contain_text("Pre-moderation")

    screen = await (await browser.new_context(viewport={"width": 1920, "height": 1080})).new_page()
    await screen.goto(f"{running.base}/screen/{room['id']}?k={room['screen_key']}")
    await _live(screen)
    asker = await _phone(browser, running.base, room["id"], "小红", "zh-CN")
    other = await _phone(browser, running.base, room["id"], "Tom", "en-US")

    # Ask (held for review: only the asker and the host see it).
    await asker.locator("[data-compose-kind=question] + span").click()
    await asker.locator("[data-compose-text]").fill(QUESTION)
    await asker.locator("[data-compose-submit]").click()
    mine = asker.locator("[data-mine] [data-item-id]", has_text=QUESTION)
    await expect(mine.locator("[data-item-status]")).to_have_text("待审核")
    row = console.locator(".q-row", has_text=QUESTION)
    await expect(row).to_have_attribute("data-status", "pending")
    await expect(other.locator("[data-questions] [data-item-id]", has_text=QUESTION)).to_have_count(0)

    # Approve in the console: the question shows everywhere, and the asker sees it shown.
    await row.locator("[data-act=approve]").click()
    await expect(other.locator("[data-questions] [data-item-id]", has_text=QUESTION)).to_have_count(1)
    await expect(mine.locator("[data-item-status]")).to_have_text("已展示")
    await expect(screen.locator("[data-top] .s-top-text", has_text=QUESTION)).to_have_count(1)

    # Answer now: the big screen's spotlight and the phones' spotlight card.
    await row.locator("[data-act=spotlight]").click()
    await expect(screen.locator("[data-spotlight-text]")).to_have_text(QUESTION)
    await expect(other.locator("[data-spotlight-text]")).to_have_text(QUESTION)
    await expect(console.locator("[data-spotlight] .sp-text")).to_have_text(QUESTION)

    # A typed answer everyone sees.
    await row.locator("[data-act=more]").click()
    await row.locator("[data-form=answer] textarea").fill("True to size; size down if between sizes.")
    await row.locator("[data-form=answer] button[type=submit]").click()
    await expect(screen.locator("[data-spotlight-answer-text]")).to_have_text(
        "True to size; size down if between sizes."
    )

    # Moving on marks it answered, on the asker's phone too.
    await console.locator("[data-spotlight-clear]").click()
    await expect(mine.locator("[data-item-status]")).to_have_text("已回答")
    await expect(row).to_have_count(0)  # the console's default view lists open items only
    await console.locator("[data-filter-status]").select_option("answered")
    await expect(row).to_have_attribute("data-status", "answered")
    await expect(screen.locator("[data-spotlight-text]")).not_to_have_text(QUESTION)
