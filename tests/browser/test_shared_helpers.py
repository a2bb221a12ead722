"""The front-end helpers every surface shares (static/js/): clock, money, API calls and busy buttons,
imported into a real page the way the surfaces import them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.async_api import Browser, Page, Route

from tests.helpers import Running

pytestmark = pytest.mark.browser


async def _page(browser: Browser, running: Running) -> Page:
    """The home page: it carries the catalogs (i18n.js) and the Content-Security-Policy."""
    page = await browser.new_page()
    await page.goto(f"{running.base}/")
    return page


async def test_clock_pads_minutes_unless_asked_not_to(browser: Browser, running: Running) -> None:
    """Whole seconds rounded up; phone and screen pad the minutes, the console (pad: false) does not."""
    page = await _page(browser, running)
    results = await page.evaluate(
        """async () => {
            const { formatClock } = await import("/static/js/time.js");
            const ms = [75_000, 3_725_000, 0, 1, -5_000, 59_001, 600_000];
            return [ms.map((v) => formatClock(v)), ms.map((v) => formatClock(v, { pad: false }))];
        }"""
    )
    assert results == [
        ["01:15", "1:02:05", "00:00", "00:01", "00:00", "01:00", "10:00"],
        ["1:15", "1:02:05", "0:00", "0:01", "0:00", "1:00", "10:00"],
    ]


async def test_money_in_minor_units_per_currency_and_language(browser: Browser, running: Running) -> None:
    """Minor units scaled by the currency's digits (the server's when given), in the page's language
    or the one asked for; a code Intl refuses still shows the amount."""
    page = await _page(browser, running)
    results = await page.evaluate(
        """async () => {
            const m = await import("/static/js/money.js");
            const i18n = await import("/static/js/i18n.js");
            const out = [
                m.formatMoney(19900, "CNY"),
                m.formatMoney(19900, "CNY", { lang: "zh-CN" }),
                m.formatMoney(1500, "JPY", { lang: "en" }),
                m.formatMoney(1500, "JPY", { lang: "zh-CN" }),
                m.formatMoney(1234, "KWD", { lang: "en" }),
                m.formatMoney(19900, "CNY", { lang: "en", digits: 0 }),
                m.formatMoney(7, "USD", { lang: "en" }),
                m.formatMoney(19900, "XX", { lang: "en" }),
                m.fractionDigits("JPY"), m.fractionDigits("KWD"), m.fractionDigits("CN"),
            ];
            i18n.setLang("zh-CN");
            out.push(m.formatMoney(19900, "CNY"));
            return out;
        }"""
    )
    nbsp = "\u00a0"
    assert results == [
        "CN¥199.00",
        "¥199.00",
        "¥1,500",
        "JP¥1,500",
        f"KWD{nbsp}1.234",
        "CN¥19,900",
        "$0.07",
        "199.00 XX",
        0,
        3,
        None,
        "¥199.00",
    ]


async def test_api_call_answers_and_errors(browser: Browser, running: Running) -> None:
    """JSON goes out as JSON on the page's cookie; refusals become ApiErrors with the server's code,
    message and status, a body without one is "generic", no answer at all is "offline"."""
    page = await _page(browser, running)
    seen: list[dict[str, Any]] = []

    async def fake(route: Route) -> None:
        request = route.request
        content_type = request.headers.get("content-type")
        seen.append({"method": request.method, "type": content_type, "body": request.post_data})
        name = request.url.rsplit("/", 1)[-1]
        if name == "ok":
            await route.fulfill(status=200, content_type="application/json", body='{"n": 3}')
        elif name == "refused":
            error = {"error": {"code": "rate_limited", "message": "slow down"}}
            await route.fulfill(status=429, content_type="application/json", body=json.dumps(error))
        elif name == "html":
            await route.fulfill(status=502, content_type="text/html", body="<h1>Bad gateway</h1>")
        else:
            await route.abort()

    await page.route("**/api/helpers-test/*", fake)
    results = await page.evaluate(
        """async () => {
            const { api, ApiError } = await import("/static/js/http.js");
            const out = [await api("POST", "/api/helpers-test/ok", { a: 1 })];
            for (const name of ["refused", "html", "gone"]) {
                try {
                    await api("GET", `/api/helpers-test/${name}`);
                    out.push("resolved");
                } catch (err) {
                    out.push([err instanceof ApiError, err.code, err.message, err.status]);
                }
            }
            return out;
        }"""
    )
    assert results == [
        {"n": 3},
        [True, "rate_limited", "slow down", 429],
        [True, "generic", "HTTP 502", 502],
        [True, "offline", "offline", 0],
    ]
    assert seen[0] == {"method": "POST", "type": "application/json", "body": '{"a":1}'}
    assert seen[1]["type"] is None  # a GET sends no body


async def test_busy_button_holds_one_action_at_a_time(browser: Browser, running: Running) -> None:
    """While its action is in flight the button is off and aria-busy, with the busy label; a second
    action is ignored; afterwards the button is back with its idle label, whether the action
    succeeded or failed (its error passes through)."""
    page = await _page(browser, running)
    results = await page.evaluate(
        """async () => {
            const { isBusy, withBusy } = await import("/static/js/busy.js");
            const button = document.createElement("button");
            document.body.append(button);
            const labels = { busyKey: "followup.box.saving", idleKey: "followup.box.save" };
            let finish;
            const first = withBusy(button, () => new Promise((resolve) => (finish = resolve)), labels);
            const busy = () => button.getAttribute("aria-busy");
            const state = () => [button.disabled, busy(), isBusy(button), button.dataset.i18n];
            const during = state();
            let ranAgain = false;
            const second = await withBusy(button, async () => (ranAgain = true));
            finish(42);
            const result = await first;
            const after = state();
            let error = null;
            try {
                await withBusy(button, async () => { throw new Error("boom"); });
            } catch (err) {
                error = err.message;
            }
            const end = button.disabled;
            return { during, second: second === undefined, ranAgain, result, after, error, end };
        }"""
    )
    assert results == {
        "during": [True, "true", True, "followup.box.saving"],
        "second": True,
        "ranAgain": False,
        "result": 42,
        "after": [False, None, False, "followup.box.save"],
        "error": "boom",
        "end": False,
    }
