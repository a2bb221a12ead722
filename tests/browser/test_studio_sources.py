"""The studio room page's Sources card (headless Chromium): a marketer adds a source and sees its
link and QR code, then archives it; a moderator does not see the card."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from server.accounts.identity import STUDIO_COOKIE
from server.auth import MemberRole
from tests.helpers import Running
from tests.studio.rooms_support import person, room_in, services_of

pytestmark = pytest.mark.browser


async def test_a_marketer_adds_a_source_with_its_qr_and_archives_it(
    browser: Browser, running: Running
) -> None:
    """Add (label, channel) -> a row with the ?src= link and a QR image that loads; archive removes it."""
    services = services_of(running)
    room = await room_in(running, "Poster night")
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    for role, sees in ((MemberRole.MODERATOR, False), (MemberRole.MARKETER, True)):
        who = await person(running, role)
        cookie = {"name": STUDIO_COOKIE, "value": services.tokens.studio(who.session_id), "url": running.base}
        await context.add_cookies([cookie])
        page = await context.new_page()
        await page.goto(f"{running.base}/studio/rooms/{room.id}")
        if not sees:
            await expect(page.locator("[data-presets-empty]")).to_be_attached()
            await page.wait_for_load_state("networkidle")
            await expect(page.locator("[data-sources]")).to_be_hidden()
            await page.close()
            continue
        await expect(page.locator("[data-sources-empty]")).to_be_visible()
        form = page.locator("[data-source-form]")
        await form.locator('[name="label"]').fill("WeChat group A")
        await form.locator('[name="channel"]').select_option("wechat_group")
        await form.locator("button[type=submit]").click()
        row = page.locator("[data-source-rows] tbody tr")
        await expect(row).to_have_count(1)
        await expect(row).to_contain_text("WeChat group A")
        await expect(row).to_contain_text("WeChat group")
        await expect(row.locator("a").first).to_have_attribute("href", f"{running.base}/r/{room.id}?src=" + (
            await row.get_attribute("data-source-code") or ""))  # fmt: skip
        loaded = await row.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
        assert loaded
        page.on("dialog", lambda dialog: dialog.accept())
        await row.locator("button").click()
        await expect(row).to_have_count(0)
        await expect(page.locator("[data-sources-empty]")).to_be_visible()
    await context.close()
