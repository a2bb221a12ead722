"""The console's Keys and links card in headless Chromium: a new host key (shown once; this console
stays, a co-host's goes to the login) and a new big-screen link (the old screen stops)."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Dialog, Page, expect

from tests.helpers import Running, create_room

pytestmark = pytest.mark.browser


async def _live(page: Page) -> None:
    await expect(page.locator("html")).to_have_attribute("data-conn", "live")


async def _console(browser: Browser, base: str, room_id: str, key: str, locale: str = "en-US") -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale=locale)
    page = await context.new_page()
    await page.goto(f"{base}/host/{room_id}/login#key={key}")
    await expect(page).to_have_url(f"{base}/host/{room_id}")
    await _live(page)
    return page


def _accept(page: Page) -> list[str]:
    """Accept the next confirm dialog; its text is appended to the returned list."""
    seen: list[str] = []

    async def on_dialog(dialog: Dialog) -> None:
        seen.append(dialog.message)
        await dialog.accept()

    page.once("dialog", on_dialog)
    return seen


async def test_new_host_key_keeps_this_console_and_logs_out_the_others(
    browser: Browser, running: Running
) -> None:
    """After confirming, the new key is shown once; this console goes on working, a co-host's console
    lands on the login page, where the new key logs in and the old one does not."""
    room = await create_room(running, "Keys room")
    mine = await _console(browser, running.base, room["id"], room["host_key"])
    theirs = await _console(browser, running.base, room["id"], room["host_key"])

    await expect(mine.locator("[data-new-key]")).to_be_hidden()
    seen = _accept(mine)
    await mine.locator("[data-rotate-key]").click()
    await expect(mine.locator("[data-new-key]")).to_be_visible()
    key = (await mine.locator("[data-link-key]").text_content() or "").strip()
    assert seen and "host key" in seen[0] and key and key != room["host_key"]

    await expect(theirs).to_have_url(f"{running.base}/host/{room['id']}/login")
    await _live(mine)
    await mine.locator("[data-start]").click()
    await expect(mine.locator("[data-room-status]")).to_have_attribute("data-status", "live")
    await mine.reload()  # the new session cookie opens the console
    await _live(mine)

    await theirs.locator("#key").fill(room["host_key"])
    await theirs.locator("#login-form button[type=submit]").click()
    await expect(theirs.locator("[data-login-failed]")).to_be_visible()
    await theirs.locator("#key").fill(key)
    await theirs.locator("#login-form button[type=submit]").click()
    await expect(theirs).to_have_url(f"{running.base}/host/{room['id']}")
    await _live(theirs)


async def test_new_screen_link_stops_the_old_screen(browser: Browser, running: Running) -> None:
    """The console shows the new link; the screen on the old one is disconnected and, reloaded, shows
    the revoked page; the new link opens the screen."""
    room = await create_room(running, "Screen room")
    host = await _console(browser, running.base, room["id"], room["host_key"])
    screen_ctx = await browser.new_context(viewport={"width": 1280, "height": 720})
    screen = await screen_ctx.new_page()
    old = f"{running.base}/screen/{room['id']}?k={room['screen_key']}"
    await screen.goto(old)
    await _live(screen)

    _accept(host)
    await host.locator("[data-rotate-screen]").click()
    await expect(host.locator("[data-link-screen]")).not_to_contain_text(room["screen_key"])
    await expect(screen.locator("html")).to_have_attribute("data-conn", "failed")
    link = (await host.locator("[data-link-screen]").text_content() or "").strip()
    assert link.startswith(f"{running.base}/screen/{room['id']}?k=")

    await screen.reload()
    await expect(screen.locator("[data-error-code]")).to_have_text("revoked")
    await screen.goto(link)
    await _live(screen)


async def test_keys_card_in_chinese(browser: Browser, running: Running) -> None:
    """The card's words come from the zh-CN catalog."""
    room = await create_room(running)
    host = await _console(browser, running.base, room["id"], room["host_key"], locale="zh-CN")
    await expect(host.locator("[data-rotate-key]")).to_have_text("更换主播密钥")
    await expect(host.locator("[data-rotate-screen]")).to_have_text("更换大屏链接")
