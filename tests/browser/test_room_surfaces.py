"""The three surfaces in headless Chromium: host console, big screen and two phones share a room."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import PHONE
from tests.helpers import Running, create_room

pytestmark = pytest.mark.browser


async def _live(page: Page) -> None:
    await expect(page.locator("html")).to_have_attribute("data-conn", "live")


async def _phone(browser: Browser, base: str, room_id: str, name: str | None, locale: str = "en-US") -> Page:
    context = await browser.new_context(**PHONE, locale=locale)  # type: ignore[arg-type]
    page = await context.new_page()
    await page.goto(f"{base}/r/{room_id}")
    if name is None:
        await page.locator("[data-join-anonymous]").click()
    else:
        await page.locator("input[name=name]").fill(name)
        await page.locator("[data-join]").click()
    await _live(page)
    return page


async def test_announce_reaches_all_surfaces_and_dropped_phone_resumes(
    browser: Browser, running: Running
) -> None:
    """Host announces; screen and phones show it; a dropped phone resumes with exactly what it missed."""
    room = await create_room(running, "春季新品直播 Spring launch")
    host_ctx = await browser.new_context(viewport={"width": 1280, "height": 800})
    host = await host_ctx.new_page()
    await host.goto(f"{running.base}/host/{room['id']}/login#key={room['host_key']}")
    await expect(host).to_have_url(f"{running.base}/host/{room['id']}")
    await _live(host)

    screen_ctx = await browser.new_context(viewport={"width": 1920, "height": 1080})
    screen = await screen_ctx.new_page()
    await screen.goto(f"{running.base}/screen/{room['id']}?k={room['screen_key']}")
    await _live(screen)
    await expect(screen.locator("[data-qr]")).to_be_visible()

    phone1 = await _phone(browser, running.base, room["id"], "小红")
    phone2 = await _phone(browser, running.base, room["id"], None)
    await expect(phone1.locator("[data-me-name]")).to_have_text("小红")
    await expect(host.locator("[data-viewers]")).to_have_text("2")
    await expect(screen.locator("[data-presence]")).to_have_text("2 watching")

    await host.locator("[data-start]").click()
    await host.locator("[data-announce-form] textarea").fill("First drop at 8pm! 八点开抢")
    await host.locator("[data-announce-form] button[type=submit]").click()
    for page in (screen, phone1, phone2):
        await expect(page.locator("[data-announcement]")).to_have_text("First drop at 8pm! 八点开抢")
        await expect(page.locator("[data-room-status]")).to_have_attribute("data-status", "live")

    # Phone 1 loses its connection and misses two announcements.
    seq_before = await phone1.evaluate("window.lw.seq")
    await phone1.evaluate("window.lw.pause()")
    await expect(phone1.locator("html")).not_to_have_attribute("data-conn", "live")
    for text in ("Second", "Third 第三条"):
        await host.locator("[data-announce-form] textarea").fill(text)
        await host.locator("[data-announce-form] button[type=submit]").click()
        await expect(phone2.locator("[data-announcement]")).to_have_text(text)
    await expect(phone1.locator("[data-announcement]")).to_have_text("First drop at 8pm! 八点开抢")

    await phone1.evaluate("window.lw.resume()")
    await _live(phone1)
    await expect(phone1.locator("[data-announcement]")).to_have_text("Third 第三条")
    welcome = await phone1.evaluate("window.lw.lastWelcome")
    assert welcome["resumed"] is True
    seqs = await phone1.evaluate("window.lw.seqLog")
    missed = [s for s in seqs if s > seq_before]
    assert missed[: welcome["missed"]] == list(range(seq_before + 1, seq_before + 1 + welcome["missed"]))
    assert welcome["missed"] >= 2  # the two announcements (presence updates may add more)
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))

    await host.screenshot(path=str(running.app.state.services.settings.data_dir / "host.png"))
    await screen.screenshot(path=str(running.app.state.services.settings.data_dir / "screen.png"))
    await phone1.screenshot(path=str(running.app.state.services.settings.data_dir / "phone.png"))


async def test_language_switch_and_chinese_browser(browser: Browser, running: Running) -> None:
    """A zh-CN phone gets Chinese; the switch changes every translated string without reloading."""
    room = await create_room(running, "Demo")
    phone = await _phone(browser, running.base, room["id"], "Li", locale="zh-CN")
    await expect(phone.locator("html")).to_have_attribute("lang", "zh-CN")
    await expect(phone.locator("[data-room-status]")).to_have_text("即将开始")
    await expect(phone.locator("[data-presence]")).to_have_text("1 人在看")
    await phone.locator("[data-lang-switch]").click()
    await expect(phone.locator("html")).to_have_attribute("lang", "en")
    await expect(phone.locator("[data-room-status]")).to_have_text("Starting soon")
    await expect(phone.locator("[data-presence]")).to_have_text("1 watching")
    await phone.reload()
    await expect(phone.locator("[data-room-status]")).to_have_text("Starting soon")  # remembered (cookie)


async def test_viewer_identity_survives_leaving(browser: Browser, running: Running) -> None:
    """A phone that leaves and comes back is the same viewer (signed cookie), with the same name."""
    room = await create_room(running, "Demo")
    phone = await _phone(browser, running.base, room["id"], "Wang")
    first = await phone.evaluate("window.lw.lastWelcome.viewer_id")
    await phone.goto("about:blank")
    await phone.goto(f"{running.base}/r/{room['id']}")
    await _live(phone)
    assert await phone.evaluate("window.lw.lastWelcome.viewer_id") == first
    await expect(phone.locator("[data-me-name]")).to_have_text("Wang")


async def test_bad_screen_link_and_wrong_host_key(browser: Browser, running: Running) -> None:
    """A forged screen key shows an error page; a wrong host key is refused at the login."""
    room = await create_room(running, "Demo")
    page = await browser.new_page()
    response = await page.goto(f"{running.base}/screen/{room['id']}?k=forged")
    assert response is not None and response.status == 401
    await expect(page.locator("[data-error-code]")).to_have_text("unauthorized")
    await page.goto(f"{running.base}/host/{room['id']}")
    await expect(page).to_have_url(f"{running.base}/host/{room['id']}/login")
    await page.locator("#key").fill("wrong")
    await page.locator("#login-form button[type=submit]").click()
    await expect(page.locator("[data-login-failed]")).to_be_visible()
