"""The Content-Security-Policy in Chromium: every surface works under it with nothing blocked, the
console and login refuse to be framed, the big screen can be (OBS, dashboards)."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, expect
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from tests.browser.conftest import PHONE
from tests.helpers import Running, create_room

pytestmark = pytest.mark.browser


def _watch(page: Page, seen: list[str]) -> None:
    """Collect what the policy blocked on ``page`` (its console says so, as does the event the
    browser fixture's reporter logs)."""

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or message.text.startswith("CSP violation"):
            seen.append(message.text)

    page.on("console", on_console)


async def test_every_surface_works_with_nothing_blocked(browser: Browser, running: Running) -> None:
    """Home, login, console, screen, phone and an error page load and run their scripts and styles
    under the policy, and the policy reports no violation on any of them."""
    room = await create_room(running, "Policy room")
    rid = room["id"]
    seen: list[str] = []

    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    _watch(page, seen)
    await page.goto(f"{running.base}/")
    await page.locator("input[name=code]").fill(rid)
    await page.locator("#go button[type=submit]").click()  # home.js, not an inline script
    await expect(page).to_have_url(f"{running.base}/r/{rid}")
    await page.goto(f"{running.base}/r/no-such-room")
    await expect(page.locator("[data-error-code]")).to_have_text("not_found")
    await page.locator("[data-lang-switch]").click()  # page.js
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")

    host = await context.new_page()
    _watch(host, seen)
    await host.goto(f"{running.base}/host/{rid}/login#key={room['host_key']}")  # login.js logs in
    await expect(host).to_have_url(f"{running.base}/host/{rid}")
    await expect(host.locator("html")).to_have_attribute("data-conn", "live")

    screen = await context.new_page()
    _watch(screen, seen)
    await screen.goto(f"{running.base}/screen/{rid}?k={room['screen_key']}")
    await expect(screen.locator("html")).to_have_attribute("data-conn", "live")
    await expect(screen.locator("[data-qr]")).to_be_visible()

    phone_context = await browser.new_context(**PHONE)  # type: ignore[arg-type]
    phone = await phone_context.new_page()
    _watch(phone, seen)
    await phone.goto(f"{running.base}/r/{rid}")
    await phone.locator("input[name=name]").fill("小红")
    await phone.locator("[data-join]").click()
    await expect(phone.locator("html")).to_have_attribute("data-conn", "live")
    # Styles from the stylesheet apply (a blocked stylesheet would leave the default display).
    assert await phone.evaluate("getComputedStyle(document.body).margin") == "0px"

    await host.locator("[data-announce-form] textarea").fill("Policy check")
    await host.locator("[data-announce-form] button[type=submit]").click()
    await expect(phone.locator("[data-announcement]")).to_have_text("Policy check")
    await expect(screen.locator("[data-announcement]")).to_have_text("Policy check")
    assert seen == []
    await context.close()
    await phone_context.close()


async def test_console_cannot_be_framed_and_the_screen_can(browser: Browser, running: Running) -> None:
    """Another site framing the console or its login gets nothing; framing the screen works."""
    room = await create_room(running, "Framing room")
    rid = room["id"]
    urls = {
        "console": f"{running.base}/host/{rid}",
        "login": f"{running.base}/host/{rid}/login",
        "screen": f"{running.base}/screen/{rid}?k={room['screen_key']}",
    }
    frames = "".join(f'<iframe name="{name}" src="{url}"></iframe>' for name, url in urls.items())

    async def framing_page(_request: Request) -> Response:
        # Its own policy, which lets it frame anything (the server adds its headers only where a
        # response has none).
        return HTMLResponse(f"<body>{frames}</body>", headers={"content-security-policy": "frame-src *"})

    running.app.router.routes.insert(0, Route("/framer", framing_page))
    # Served by the test server under another name: another origin, on this machine (Chromium lets
    # no public page frame a loopback one at all).
    framer = running.base.replace("127.0.0.1", "localhost") + "/framer"
    context = await browser.new_context()
    page = await context.new_page()
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "frame-ancestors" in m.text else None)
    await page.goto(framer)

    screen = page.frame(name="screen")
    assert screen is not None
    await expect(screen.locator("html")).to_have_attribute("data-conn", "live")
    for name in ("console", "login"):
        frame = page.frame(name=name)
        assert frame is not None
        await expect(frame.locator("[data-lang-switch], [data-conn]")).to_have_count(0)
    assert len(blocked) == 2, blocked  # the console (after its redirect to the login) and the login
    await context.close()
