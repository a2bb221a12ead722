"""A first show run from the studio, end to end in headless Chromium (issue 21): the host signs in,
creates and schedules a room with the studio's form, a phone sees the scheduled room and asks to be
reminded, a moderator signs in and opens the console, which shows the questions but no discount
launch (and the server refuses the launch all the same), the host goes live from their console and
every screen sees it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlmodel import col, select

from server.accounts import actions
from server.auth import MemberRole, hash_secret
from server.services import Services
from server.storage.accounts import Reminder
from server.storage.models import Room
from tests.helpers import Running

pytestmark = pytest.mark.browser
PASSWORD = "a long enough password"


async def sign_in(browser: Browser, running: Running, email: str, path: str) -> tuple[BrowserContext, Page]:
    """A fresh browser that opens ``path``, is sent to the sign-in form (from a console, through the
    key login's "Sign in to the studio" link), signs in and lands on it."""
    context = await browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US")
    page = await context.new_page()
    await page.goto(f"{running.base}{path}")
    if path.startswith("/host/"):  # the console's key login offers the studio
        await expect(page).to_have_url(f"{running.base}{path}/login")
        await page.get_by_role("link", name="Sign in to the studio").click()
    await expect(page).to_have_url(f"{running.base}/studio/signin?next={path}")
    await page.locator("#email").fill(email)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("#signin-form button[type=submit]").click()
    await expect(page).to_have_url(f"{running.base}{path}")
    return context, page


async def test_sign_in_schedule_remind_moderate_and_go_live(browser: Browser, running: Running) -> None:
    services: Services = running.app.state.services
    await actions.ensure_org(services.db, "shop", "Tea shop")
    for email, name, role in (
        ("host@example.com", "Hana", MemberRole.HOST),
        ("mod@example.com", "Mo", MemberRole.MODERATOR),
    ):
        account = await actions.create_account(services.db, email, name, hash_secret(PASSWORD))
        await actions.set_membership(services.db, "shop", account.id, role)

    # The host: sign in, create a scheduled room with the form.
    host_ctx, studio = await sign_in(browser, running, "host@example.com", "/studio")
    await studio.locator("[data-new-room]").click()
    await studio.locator('[name="title"]').fill("Spring tea launch")
    year = datetime.now(UTC).year + 1
    await studio.locator("[data-starts-local]").fill(f"{year}-03-01T20:00")
    await studio.locator('[name="description"]').fill("New harvest, live from the garden")
    await studio.locator("[data-room-form] button[type=submit]").click()
    await expect(studio.locator("[data-room-title]")).to_have_text("Spring tea launch")
    async with services.db.session() as session:
        room = (await session.exec(select(Room).where(col(Room.title) == "Spring tea launch"))).one()
    assert room.org_id == "shop" and room.status == "scheduled" and room.scheduled_ms is not None

    # A phone: the scheduled room's card, joined, "Remind me".
    phone_ctx = await browser.new_context(viewport={"width": 360, "height": 740}, locale="en-US")
    phone = await phone_ctx.new_page()
    await phone.goto(f"{running.base}/r/{room.id}")
    await expect(phone.locator("[data-remind-desc]").first).to_have_text("New harvest, live from the garden")
    await phone.locator("[data-join-anonymous]").click()
    toggle = phone.locator("[data-remind-toggle]")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-pressed", "true")
    async with services.db.session() as session:
        assert len((await session.exec(select(Reminder).where(Reminder.room_id == room.id))).all()) == 1

    # The moderator: signs in straight into the console; questions yes, deals no.
    mod_ctx, mod = await sign_in(browser, running, "mod@example.com", f"/host/{room.id}")
    await expect(mod.locator("html")).to_have_attribute("data-conn", "live")
    await expect(mod.locator("[data-member-role]")).to_be_visible()
    await expect(mod.locator("[data-queue]")).to_be_visible()
    await expect(mod.locator('[data-tab="selling"]')).to_be_hidden()
    await expect(mod.locator("[data-start]")).to_be_hidden()
    # The server is the judge: the same launch, sent by hand over the moderator's own session, is refused.
    refused = await mod.evaluate(
        """async (room) => {
            const ws = new WebSocket(`${location.origin.replace('http', 'ws')}/ws/host/${room}`);
            const answer = new Promise((ok) => {
                ws.onmessage = (e) => {
                    const f = JSON.parse(e.data);
                    if (f.type === "welcome") {
                        ws.send(JSON.stringify({type: "discount.launch", id: 7,
                            data: {product_id: 1, price: "1.00", quantity: 1, duration_secs: 60}}));
                    } else if (f.data && f.data.id === 7) {
                        ok(f);
                    }
                };
            });
            await new Promise((ok) => { ws.onopen = ok; });
            ws.send(JSON.stringify({type: "hello", data: {}}));
            const timeout = new Promise((ok) => setTimeout(() => ok({type: "timeout"}), 15000));
            const f = await Promise.race([answer, timeout]);
            ws.close();
            return f;
        }""",
        room.id,
    )
    assert refused["type"] == "error" and refused["data"]["code"] == "forbidden", json.dumps(refused)

    # The host goes live from the console; the moderator's console and the phone see it.
    console = await host_ctx.new_page()
    await console.goto(f"{running.base}/host/{room.id}")
    await expect(console.locator("html")).to_have_attribute("data-conn", "live")
    await console.locator("[data-start]").click()
    for page in (console, mod, phone):
        await expect(page.locator("[data-room-status]")).to_have_attribute("data-status", "live")
    for context in (host_ctx, phone_ctx, mod_ctx):
        await context.close()
