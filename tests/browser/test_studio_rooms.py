"""The studio's room page and the console's Prepared lists (headless Chromium): a host prepares a
discount and a draw on the room page, schedules the room and turns the host key off; the console,
opened from the studio, launches the prepared discount with one click."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, expect
from sqlmodel import select

from server.accounts.identity import STUDIO_COOKIE
from server.auth import MemberRole
from server.rooms.wire import ProductSeed
from server.storage.accounts import Preset
from server.storage.models import Room
from tests.helpers import Running
from tests.studio.rooms_support import person, room_in, services_of

pytestmark = pytest.mark.browser


async def test_prepare_on_the_room_page_and_launch_from_the_console(
    browser: Browser, running: Running
) -> None:
    """Presets saved through the room page's forms show in its list; the console (opened with the
    studio session) lists the discount as Prepared and its Launch button starts the deal."""
    services = services_of(running)
    room = await room_in(running, "Browser tea", products=[ProductSeed("Green tea", 1990, stock=5)])
    host = await person(running, MemberRole.HOST)
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    cookie = {"name": STUDIO_COOKIE, "value": services.tokens.studio(host.session_id), "url": running.base}
    await context.add_cookies([cookie])
    page = await context.new_page()
    await page.goto(f"{running.base}/studio/rooms/{room.id}")
    await expect(page.locator("[data-presets-empty]")).to_be_visible()

    deal = page.locator('[data-preset-form="discount"]')
    await deal.locator('[name="label"]').fill("Half price tea")
    await deal.locator('[name="price"]').fill("9.90")
    await deal.locator('[name="quantity"]').fill("5")
    await deal.locator('[name="minutes"]').fill("5")
    await deal.locator("button[type=submit]").click()
    await expect(page.locator("[data-preset-rows] tbody tr")).to_have_count(1)
    await expect(page.locator("[data-preset-rows]")).to_contain_text("Half price tea")

    draw = page.locator('[data-preset-form="draw"]')
    await draw.locator('[name="label"]').fill("Cup draw")
    await draw.locator('[name="title"]').fill("A tea cup")
    await draw.locator('[name="tiers"]').fill("Tea cup * 2")
    await draw.locator("button[type=submit]").click()
    await expect(page.locator("[data-preset-rows] tbody tr")).to_have_count(2)

    schedule = page.locator("[data-schedule-form]")
    await schedule.locator('[name="title"]').fill("Browser tea night")
    await schedule.locator("button[type=submit]").click()
    await expect(page.locator("[data-schedule-saved]")).to_be_visible()
    await expect(page.locator("[data-room-title]")).to_have_text("Browser tea night")

    await page.locator("[data-host-key]").uncheck()
    await expect(page.locator("[data-host-key-saved]")).to_be_visible()

    async with services.db.session() as session:
        stored = await session.get(Room, room.id)
        assert stored is not None and stored.title == "Browser tea night" and not stored.host_key_enabled
        presets = (await session.exec(select(Preset).where(Preset.room_id == room.id))).all()
        draw_payload = next(p for p in presets if p.kind == "draw").payload
        assert '"count":2' in draw_payload and '"name":"Tea cup"' in draw_payload

    console = await context.new_page()
    await console.goto(f"{running.base}/host/{room.id}")
    await expect(console.locator("html")).to_have_attribute("data-conn", "live")
    await console.locator('[data-tab="selling"]').click()
    prepared = console.locator('[data-presets="discount"]')
    await expect(prepared).to_contain_text("Half price tea")
    await prepared.locator("[data-preset-launch]").click()
    await expect(console.locator("[data-deal-list] > li")).to_have_count(1)
    await console.locator('[data-tab="draws"]').click()
    await expect(console.locator('[data-presets="draw"]')).to_contain_text("Cup draw")
    await context.close()


async def test_new_room_form_schedules_in_local_time(browser: Browser, running: Running) -> None:
    """The new-room form sends the local start time as epoch ms; the room shows in the Scheduled tab."""
    services = services_of(running)
    owner = await person(running, MemberRole.OWNER)
    context = await browser.new_context(locale="en-US", timezone_id="Asia/Shanghai")
    cookie = {"name": STUDIO_COOKIE, "value": services.tokens.studio(owner.session_id), "url": running.base}
    await context.add_cookies([cookie])
    page = await context.new_page()
    await page.goto(f"{running.base}/studio/rooms/new")
    await page.locator('[name="title"]').fill("Form room")
    year = datetime.now(UTC).year + 1  # within the two years ahead a start time may be
    await page.locator("[data-starts-local]").fill(f"{year}-05-01T20:00")
    await page.locator("[data-room-form] button[type=submit]").click()
    await expect(page.locator("[data-room-title]")).to_have_text("Form room")
    async with services.db.session() as session:
        made = (await session.exec(select(Room).where(Room.title == "Form room"))).one()
    expected = datetime(year, 5, 1, 20, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert made.scheduled_ms == int(expected.timestamp() * 1000)
    await page.goto(f"{running.base}/studio?status=scheduled")
    row = page.locator(f'[data-room-id="{made.id}"]')
    await expect(row).to_contain_text("Form room")
    await expect(row.locator("time")).to_contain_text(str(year))
    await context.close()
