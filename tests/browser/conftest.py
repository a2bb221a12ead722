"""Headless Chromium through Playwright (the system's /usr/bin/chromium; no browser download)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Frame,
    Page,
    async_playwright,
    expect,
)
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

CHROMIUM = os.environ.get("LIVEWALL_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Every page of every browser test reports what the Content-Security-Policy blocked (the browser
# logs it, and the page's securitypolicyviolation event says it once more): a test that met any
# fails at its end, so each flow the tests drive also proves the pages pass the policy.
CSP_REPORTER = """
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${where}`);
});
"""
# How long an expectation waits for the page to get there (Playwright's default is 5 s). A loaded CI
# machine (the suite on two workers beside `stress -c 2`) once took longer than 5 s to connect a
# phone; the waits end as soon as the page is there, so an idle run is no slower.
EXPECT_TIMEOUT_MS = 20_000
PHONE = {
    "viewport": {"width": 360, "height": 740},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
}


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed; tests/run.sh installs it")
        pytest.skip("chromium is not installed")
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        violations = _report_csp_violations(b)
        try:
            yield b
        finally:
            await b.close()
        assert not violations, "Content-Security-Policy violations:\n" + "\n".join(violations)


async def wait_until(
    page: Page | Frame, expression: str, arg: Any = None, *, timeout_ms: float = 30_000
) -> Any:
    """Evaluate ``expression`` (as ``page.evaluate`` takes it) until it is truthy; its value.

    ``Page.wait_for_function`` cannot be used on our pages: while it polls, it evals the expression
    inside the page, which their Content-Security-Policy refuses (no 'unsafe-eval')."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_ms / 1000
    while True:
        value = await page.evaluate(expression, arg)
        if value:
            return value
        if loop.time() > deadline:
            raise PlaywrightTimeoutError(f"{expression!r} still false after {timeout_ms:.0f} ms")
        await asyncio.sleep(0.05)


def _report_csp_violations(browser: Browser) -> list[str]:
    """Watch every context and page the tests open on ``browser``; the violations seen so far."""
    violations: list[str] = []
    new_context, new_page = browser.new_context, browser.new_page

    def watch(message: ConsoleMessage) -> None:
        if "frame-ancestors" in message.text:
            return  # another page framing ours was refused: the policy working, not our page broken
        if "Content Security Policy" in message.text or message.text.startswith("CSP violation"):
            violations.append(f"{message.page.url if message.page else '?'}: {message.text}")

    async def watched_context(*args: Any, **kwargs: Any) -> BrowserContext:
        context = await new_context(*args, **kwargs)
        await context.add_init_script(CSP_REPORTER)
        context.on("console", watch)
        return context

    async def watched_page(*args: Any, **kwargs: Any) -> Page:
        page = await new_page(*args, **kwargs)
        await page.context.add_init_script(CSP_REPORTER)
        page.on("console", watch)
        return page

    browser.new_context = watched_context  # type: ignore[method-assign]
    browser.new_page = watched_page  # type: ignore[method-assign]
    return violations
