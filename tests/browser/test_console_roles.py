"""The console shows what a member's role may do (headless Chromium): a moderator gets the question
queue and no deal launch form, a seller the opposite; the header names the member and their role;
and what is hidden is still refused by the server."""

from __future__ import annotations

import secrets

import pytest
from playwright.async_api import Browser, Page, expect

from server.auth import MemberRole
from server.rooms.identity import host_cookie
from server.services import Services
from server.storage import now_ms
from server.storage.accounts import DEFAULT_ORG, Account, Membership, StudioSession
from tests.browser.conftest import wait_until
from tests.helpers import Running, create_room

pytestmark = pytest.mark.browser


async def _member(services: Services, role: MemberRole, name: str) -> str:
    """An account with ``role`` in the default organisation and a live studio session (its id)."""
    now = now_ms()
    account_id, session_id = secrets.token_hex(8), secrets.token_hex(8)
    async with services.db.session() as session:
        session.add(Account(id=account_id, email=f"{account_id}@example.com", name=name, created_ms=now))
        await session.flush()
        session.add(Membership(org_id=DEFAULT_ORG, account_id=account_id, role=role.value, created_ms=now))
        session.add(
            StudioSession(
                id=session_id,
                account_id=account_id,
                created_ms=now,
                last_seen_ms=now,
                expires_ms=now + 3600_000,
            )
        )
        await session.commit()
    return session_id


async def _console(browser: Browser, running: Running, room_id: str, role: MemberRole, name: str) -> Page:
    services: Services = running.app.state.services
    session_id = await _member(services, role, name)
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    token = services.tokens.member_host(room_id, session_id)
    await context.add_cookies([{"name": host_cookie(room_id), "value": token, "url": running.base}])
    page = await context.new_page()
    await page.goto(f"{running.base}/host/{room_id}")
    await expect(page.locator("html")).to_have_attribute("data-conn", "live")
    return page


async def test_moderator_sees_the_queue_and_no_deals(browser: Browser, running: Running) -> None:
    """A moderator: the queue and moderation cards, no selling/draws/follow-up tabs, no launch form,
    no start button; the header says who they are; a launch they send anyway is refused."""
    room = await create_room(running, "Roles room")
    page = await _console(browser, running, room["id"], MemberRole.MODERATOR, "Mei Moderator")
    await expect(page.locator("[data-member]")).to_be_visible()
    await expect(page.locator("[data-member-name]")).to_have_text("Mei Moderator")
    await expect(page.locator("[data-member-role]")).to_have_text("Moderator")
    await expect(page.locator("[data-me-form]")).to_be_hidden()
    await expect(page.locator("[data-queue]")).to_be_visible()
    await expect(page.locator("[data-blocklist-form]")).to_be_visible()
    await expect(page.locator("[data-spotlight-next]")).to_be_visible()
    await expect(page.locator('[data-tab="selling"]')).to_be_hidden()
    await expect(page.locator('[data-tab="draws"]')).to_be_hidden()
    await expect(page.locator('[data-tab="followup"]')).to_be_hidden()
    await expect(page.locator("[data-launch-form]")).to_be_hidden()
    await expect(page.locator("[data-start]")).to_be_hidden()
    await expect(page.locator("[data-access]")).to_be_hidden()
    # The selling tab's address does not open it either.
    await page.goto(f"{running.base}/host/{room['id']}#selling")
    await expect(page.locator("html")).to_have_attribute("data-conn", "live")
    await expect(page.locator('[data-panel="selling"]')).to_be_hidden()
    await expect(page.locator('[data-panel="questions"]')).to_be_visible()
    # The server is the judge: a hidden action sent anyway is refused.
    code = await page.evaluate(
        """() => window.lw.request("discount.launch", {product_id: 1, percent_off: 10, quantity: 1,
               duration_secs: 60}).then(() => "ok", (e) => e.code)"""
    )
    assert code == "forbidden"


async def test_seller_sees_the_launch_form_and_no_queue(browser: Browser, running: Running) -> None:
    """A seller: the selling tab with the launch form and the shelf's editing, no question queue or
    moderation, no draws or follow-up tabs."""
    room = await create_room(running, "Roles room")
    page = await _console(browser, running, room["id"], MemberRole.SELLER, "Sam Seller")
    await expect(page.locator("[data-member-role]")).to_have_text("Seller")
    await expect(page.locator("[data-queue]")).to_be_hidden()
    await expect(page.locator("[data-blocklist-form]")).to_be_hidden()
    await expect(page.locator("[data-spotlight-next]")).to_be_hidden()
    await expect(page.locator('[data-tab="draws"]')).to_be_hidden()
    await expect(page.locator('[data-tab="followup"]')).to_be_hidden()
    await page.locator('[data-tab="selling"]').click()
    await expect(page.locator("[data-launch-form]")).to_be_visible()
    await expect(page.locator("[data-product-form]")).to_be_visible()
    code = await page.evaluate(
        """() => window.lw.request("item.hide", {id: 1}).then(() => "ok", (e) => e.code)"""
    )
    assert code == "forbidden"


async def test_host_key_console_shows_everything(browser: Browser, running: Running) -> None:
    """The room's host key holds every room scope: nothing is hidden, no member badge."""
    room = await create_room(running, "Roles room")
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = await context.new_page()
    await page.goto(f"{running.base}/host/{room['id']}/login#key={room['host_key']}")
    await expect(page.locator("html")).to_have_attribute("data-conn", "live")
    await wait_until(page, "() => document.body.dataset.can")
    await expect(page.locator("[data-member]")).to_be_hidden()
    for tab in ("selling", "draws", "followup"):
        await expect(page.locator(f'[data-tab="{tab}"]')).to_be_visible()
    await expect(page.locator("[data-queue]")).to_be_visible()
    await expect(page.locator("[data-start]")).to_be_visible()
    assert await page.locator("[data-scope-off]").count() == 0
