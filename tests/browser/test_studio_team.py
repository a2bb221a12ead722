"""The studio's sign-in and team pages in headless Chromium: an owner signs in through the form,
adds a member (mail off: the page shows the one-time link to pass on), changes a role, is refused
demoting the last owner (a translated message), removes the member, and the sessions page lists
this browser."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Dialog, expect
from sqlmodel import col, select

from server.accounts import actions
from server.auth import MemberRole, hash_secret
from server.services import Services
from server.storage.accounts import Account, Membership
from tests.helpers import Running

pytestmark = pytest.mark.browser
PASSWORD = "owner password 123"


async def test_an_owner_manages_the_team_from_the_page(browser: Browser, running: Running) -> None:
    """Sign in, add, change, refuse the last owner's demotion, remove: each through the page."""
    services: Services = running.app.state.services
    owner = await actions.create_account(services.db, "owner@example.com", "Olive", hash_secret(PASSWORD))
    await actions.ensure_org(services.db, "shop", "Tea shop")
    await actions.set_membership(services.db, "shop", owner.id, MemberRole.OWNER)
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = await context.new_page()

    await page.goto(f"{running.base}/studio/team")
    await expect(page).to_have_url(f"{running.base}/studio/signin?next=/studio/team")
    await page.locator("#password").fill("wrong password here")
    await page.locator("#email").fill("owner@example.com")
    await page.locator("#signin-form button[type=submit]").click()
    await expect(page.locator("[data-signin-failed]")).to_have_text("Wrong email or password.")
    await page.locator("#email").fill("owner@example.com")
    await page.locator("#password").fill(PASSWORD)
    await page.locator("#signin-form button[type=submit]").click()
    await expect(page).to_have_url(f"{running.base}/studio/team")
    section = page.locator('[data-org="shop"]')
    await expect(section.locator("h2")).to_have_text("Tea shop")

    add = section.locator("[data-add-form]")
    await add.locator('[name="email"]').fill("new@example.com")
    await add.locator('[name="role"]').select_option("seller")
    await add.locator("button[type=submit]").click()
    link = section.locator("[data-invite-link]")
    await expect(link).to_be_visible()
    assert (await link.input_value()).startswith(f"{running.base}/studio/reset/")

    await page.reload()
    row = section.locator("tr", has_text="new@example.com")
    await expect(row.locator("[data-role-select]")).to_have_value("seller")
    async with page.expect_navigation():  # the page reloads once the change is saved
        await row.locator("[data-role-select]").select_option("marketer")
    await expect(
        section.locator("tr", has_text="new@example.com").locator("[data-role-select]")
    ).to_have_value("marketer")
    async with services.db.session() as session:
        newcomer = (await session.exec(select(Account).where(col(Account.email) == "new@example.com"))).one()
        membership = await session.get(Membership, ("shop", newcomer.id))
    assert membership is not None and membership.role == "marketer"

    mine = section.locator("tr", has_text="owner@example.com").locator("[data-role-select]")
    await mine.select_option("host")
    await expect(page.locator("[data-team-error]")).to_have_text("An organisation keeps at least one owner.")
    await expect(mine).to_have_value("owner")

    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    page.on("dialog", accept)
    async with page.expect_navigation():
        await section.locator("tr", has_text="new@example.com").locator("[data-remove]").click()
    await expect(section.locator("tr", has_text="new@example.com")).to_have_count(0)

    await page.goto(f"{running.base}/studio/sessions")
    await expect(page.locator("[data-this-browser]")).to_have_count(1)
    await page.locator("[data-signout]").click()
    await expect(page).to_have_url(f"{running.base}/studio/signin")
    await context.close()
