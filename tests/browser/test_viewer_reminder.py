"""Go-live reminders on the phone (headless Chromium): a scheduled room shows its start, countdown and
description with "Remind me"; tapping it without a consent opens the opt-in box and says the app will
hold the message; tapping again cancels; the card goes once the room is live."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import update
from sqlmodel import col, select

from server.storage import now_ms
from server.storage.accounts import Reminder
from server.storage.models import Room
from tests.browser.conftest import PHONE
from tests.conftest import make_settings
from tests.followup.channels.conftest import LOOPBACK_ALLOWED
from tests.followup.flow import UNREACHABLE
from tests.helpers import Client, Running, create_room, serve

pytestmark = pytest.mark.browser


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    """Email and SMS configured (nothing listens there): the opt-in box offers both."""
    async with serve(make_settings(tmp_path, **UNREACHABLE, outbound_allow=LOOPBACK_ALLOWED)) as r:
        yield r


async def _reminders(running: Running) -> list[Reminder]:
    async with running.app.state.services.db.session() as session:
        return list((await session.exec(select(Reminder))).all())


async def test_remind_me_on_a_scheduled_room(browser: Browser, running: Running) -> None:
    """Start, countdown and description shown; remind -> opt-in box and in-app note; cancel; live -> gone."""
    room = await create_room(running, "Spring tea")
    async with running.app.state.services.db.session() as session:
        await session.exec(
            update(Room)
            .where(col(Room.id) == room["id"])
            .values(scheduled_ms=now_ms() + 2 * 3600_000, description="Five teas, one hour.")
        )
        await session.commit()
    context = await browser.new_context(**PHONE, locale="en-US")  # type: ignore[arg-type]
    page = await context.new_page()
    await page.goto(f"{running.base}/r/{room['id']}")
    # Before joining: the start and description, no button (a reminder needs the viewer cookie).
    await expect(page.locator("[data-remind-desc]")).to_have_text("Five teas, one hour.")
    await expect(page.locator("[data-remind-when]")).to_contain_text("Starts")
    assert await page.locator("[data-remind-toggle]").count() == 0
    await page.locator("input[name=name]").fill("Li")
    await page.locator("[data-join]").click()
    await expect(page.locator("html")).to_have_attribute("data-conn", "live")

    card = page.locator("[data-remind]")
    await expect(card).to_be_visible()
    await expect(page.locator("[data-remind-when]")).to_contain_text("Starts")
    await expect(page.locator("[data-remind-countdown]")).to_contain_text("Starts in 1:5")
    await expect(page.locator("[data-remind-desc]")).to_have_text("Five teas, one hour.")
    button = page.locator("[data-remind-toggle]")
    await expect(button).to_have_text("Remind me")

    await button.click()
    await expect(button).to_have_text("Reminder set · Cancel")
    await expect(button).to_have_attribute("aria-pressed", "true")
    await expect(page.locator("[data-optin]")).to_be_visible()
    await expect(page.locator("[data-remind-inapp]")).to_be_visible()
    assert len(await _reminders(running)) == 1

    await page.reload()  # the state comes from the server
    await expect(page.locator("html")).to_have_attribute("data-conn", "live")
    await expect(button).to_have_text("Reminder set · Cancel")
    await button.click()
    await expect(button).to_have_text("Remind me")
    assert await _reminders(running) == []

    await button.click()
    await expect(button).to_have_text("Reminder set · Cancel")
    host = await Client.connect(running.ws, "host", room["id"], {"token": room["host_token"], "name": "Ann"})
    assert (await host.request("room.start"))["type"] == "ack"
    await expect(card).to_be_hidden()
    await host.close()
    await context.close()
