"""Selling through the real pages: the phones' deal card, shelf and details, and the big screen's banner.

The host is driven with the protocol client (the console has its own tests); phones and the screen
are headless Chromium pages. Every wait is on a DOM condition, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect
from sqlmodel import select

from server.domains import default_registry
from server.rooms.snapshot import apply_event
from server.storage.models import IntentEvent
from tests.browser.conftest import PHONE, wait_until
from tests.helpers import Client, Running, create_room

REDUCERS = default_registry().reducers  # the reference reducer's parts, as the app has them

pytestmark = pytest.mark.browser

SCARF = {
    "name": "羊绒围巾 Cashmere scarf",
    "price_minor": 19900,
    "currency": "CNY",
    "stock": 500,
    "shop_url": "https://shop.example/p/scarf?src=live",
    "description": "100% cashmere.\nHand wash cold. 手洗。",
}
# The same instant on every surface, whatever each device's clock says (measured from pong).
AGREE_MS = 150


async def _live(page: Page) -> None:
    await expect(page.locator("html")).to_have_attribute("data-conn", "live")


async def _clock_measured(page: Page) -> None:
    await wait_until(page, "window.lw && window.lw.bestRttMs < Infinity")


async def _phone(
    browser: Browser, base: str, room_id: str, name: str, locale: str = "en-US", skew_ms: int = 0
) -> Page:
    """A joined phone; ``skew_ms`` sets its clock wrong by that much (a phone with a bad clock)."""
    context = await browser.new_context(**PHONE, locale=locale)  # type: ignore[arg-type]
    if skew_ms:
        await context.add_init_script(f"Date.now = ((real) => () => real() + {skew_ms})(Date.now);")
    page = await context.new_page()
    await page.goto(f"{base}/r/{room_id}")
    await page.locator("input[name=name]").fill(name)
    await page.locator("[data-join]").click()
    await _live(page)
    return page


async def _screen(browser: Browser, running: Running, room: dict[str, str]) -> Page:
    page = await (await browser.new_context(viewport={"width": 1920, "height": 1080})).new_page()
    await page.goto(f"{running.base}/screen/{room['id']}?k={room['screen_key']}")
    await _live(page)
    return page


async def _host(running: Running, room: dict[str, str]) -> Client:
    return await Client.connect(running.ws, "host", room["id"], {"token": room["host_token"], "name": "Ann"})


async def _ok(host: Client, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    reply = await host.request(kind, data)
    assert reply["type"] == "ack", reply
    result: dict[str, Any] = reply["data"]["result"]
    return result


async def _launch(host: Client, product_id: int, **extra: Any) -> dict[str, Any]:
    data = {"product_id": product_id, "percent_off": 30, "quantity": 1, "duration_secs": 120, **extra}
    return await _ok(host, "discount.launch", data)


async def _remaining(pages: list[Page]) -> list[float]:
    """Each page's countdown as computed now (all read at once)."""
    values = await asyncio.gather(*(p.evaluate("window.lwDeal.remainingMs()") for p in pages))
    return [float(v) for v in values]


async def test_launch_to_sold_out_on_two_phones_and_the_screen(browser: Browser, running: Running) -> None:
    """A one-unit deal: phone A claims (code, checkout link), phone B is told sold out, the screen
    stamps SOLD OUT at 0 left; more stock lets B claim; A gives its unit back."""
    room = await create_room(running, "Flash sale 秒杀")
    host = await _host(running, room)
    product = await _ok(host, "product.save", {**SCARF, "image_url": f"{running.base}/r/{room['id']}/qr.svg"})
    await _ok(host, "product.pin", {"id": product["id"]})
    screen = await _screen(browser, running, room)
    a = await _phone(browser, running.base, room["id"], "Tom")
    b = await _phone(browser, running.base, room["id"], "小红", "zh-CN")
    await expect(screen.locator("[data-deal-name]")).to_have_text(SCARF["name"])
    await expect(screen.locator("[data-deal-image]")).to_be_visible()

    deal = await _launch(host, product["id"])
    for phone in (a, b):
        card = phone.locator("[data-deal]")
        await expect(card).to_have_attribute("data-state", "live")
        await expect(card.locator("[data-deal-clock]")).to_have_text(re.compile(r"^0[12]:\d\d$"))
        await expect(card.locator("[data-deal-claim]")).to_be_enabled()
    await expect(a.locator("[data-deal-price]")).to_have_text("CN¥139.30")
    await expect(a.locator("[data-deal-list]")).to_have_text("CN¥199.00")
    await expect(a.locator("[data-deal-off]")).to_have_text("30% off")
    await expect(b.locator("[data-deal-left]")).to_have_text("剩 1 件")
    await expect(screen.locator("[data-deal]")).to_have_attribute("data-phase", "live")
    await expect(screen.locator("[data-deal-left]")).to_have_text("1")
    await expect(screen.locator("[data-deal-price]")).to_have_text("CN¥139.30")

    await a.locator("[data-deal-claim]").click()
    code = a.locator("[data-deal-claims] [data-claim-code]")
    await expect(code).to_have_text(re.compile(r"^LW-[2-9A-Z]{4}-[2-9A-Z]{4}$"))
    the_code = await code.text_content()
    checkout = a.locator("[data-deal-claims] [data-claim-checkout]")
    await expect(checkout).to_have_attribute(
        "href", re.compile(rf"^https://shop\.example/p/scarf\?src=live&coupon={the_code}")
    )
    await expect(a.locator("[data-deal]")).to_have_attribute("data-state", "claimed")

    card_b = b.locator("[data-deal]")
    await expect(card_b).to_have_attribute("data-state", "sold_out")
    await expect(card_b.locator("[data-deal-claim]")).to_be_disabled()
    await expect(card_b.locator("[data-deal-claim]")).to_have_text("已抢光")
    await expect(card_b.locator("[data-deal-left]")).to_have_text("剩 0 件")
    await expect(screen.locator("[data-deal-left]")).to_have_text("0")
    await expect(screen.locator("[data-deal-claimed]")).to_have_text("1")
    await expect(screen.locator("[data-deal-stamp]")).to_be_visible()
    await expect(screen.locator("[data-deal-stamp]")).to_have_text("SOLD OUT")
    assert the_code and the_code not in await screen.content()  # no codes (and no names) on the wall
    assert "Tom" not in await screen.locator("[data-deal]").inner_text()

    await _ok(host, "discount.update", {"id": deal["id"], "add_stock": 1})
    await expect(screen.locator("[data-deal-stamp]")).to_be_hidden()
    await expect(screen.locator("[data-deal-left]")).to_have_text("1")
    await expect(card_b).to_have_attribute("data-state", "live")
    await card_b.locator("[data-deal-claim]").click()
    await expect(card_b.locator("[data-claim-code]")).to_have_text(re.compile(r"^LW-"))
    await expect(screen.locator("[data-deal-claimed]")).to_have_text("2")
    await expect(screen.locator("[data-deal-stamp]")).to_be_visible()

    # A gives the unit back: its code goes, the deal is live again for everyone else.
    release = a.locator("[data-deal-claims] [data-claim-release]")
    await release.click()
    await expect(release).to_have_text("Tap again to give it back")  # one stray tap is not enough
    await release.click()
    await expect(a.locator("[data-deal-claims] [data-claim-code]")).to_have_count(0)
    await expect(a.locator("[data-deal]")).to_have_attribute("data-state", "live")
    await expect(screen.locator("[data-deal-left]")).to_have_text("1")
    await expect(screen.locator("[data-deal-stamp]")).to_be_hidden()

    # The browser's reducer and the server's agree on everything the host saw happen.
    snapshot = host.welcome["snapshot"]
    events = [{"type": e["type"], "data": e["data"]} for e in host.events]
    assert {"products", "pinned", "discount", "stock", "claims"} <= {e["type"] for e in events}
    assert await _js_reduce(screen, snapshot, events) == _py_reduce(snapshot, events)
    await host.close()


async def test_countdowns_agree_across_phones_with_wrong_clocks_and_the_screen(
    browser: Browser, running: Running
) -> None:
    """Two phones whose clocks are 45 s fast and 20 s slow and the screen count down to the same
    instant, both before the start ("starts in") and to the end."""
    room = await create_room(running)
    host = await _host(running, room)
    product = await _ok(host, "product.save", SCARF)
    screen = await _screen(browser, running, room)
    fast = await _phone(browser, running.base, room["id"], "fast", skew_ms=45_000)
    slow = await _phone(browser, running.base, room["id"], "slow", "zh-CN", skew_ms=-20_000)
    pages = [fast, slow, screen]
    for page in pages:
        await _clock_measured(page)

    scheduled = await _launch(host, product["id"], starts_in_secs=90, duration_secs=60)
    for page in pages:
        await expect(page.locator("[data-deal]")).to_have_attribute("data-phase", "scheduled")
    await expect(fast.locator("[data-deal-timer-label]")).to_have_text("Starts in")
    await expect(slow.locator("[data-deal-timer-label]")).to_have_text("距开抢")
    await expect(fast.locator("[data-deal-claim]")).to_be_disabled()
    await expect(fast.locator("[data-deal-claim]")).to_have_text("Not started yet")
    await _assert_agree(pages, around_ms=90_000)

    await _ok(host, "discount.stop", {"id": scheduled["id"]})
    await _launch(host, product["id"], quantity=5, duration_secs=45)
    for page in pages:
        await expect(page.locator("[data-deal]")).to_have_attribute("data-phase", "live")
    await expect(fast.locator("[data-deal-timer-label]")).to_have_text("Ends in")
    await _assert_agree(pages, around_ms=45_000)
    await host.close()


async def _assert_agree(pages: list[Page], around_ms: int) -> None:
    values = await _remaining(pages)
    assert max(values) - min(values) < AGREE_MS, values
    # Each page's clock offset is estimated from round trips: a few ms either way of the truth.
    assert around_ms - 5_000 < values[0] <= around_ms + AGREE_MS, values
    # The big numbers people read: the same second, or neighbours when read across a boundary.
    texts = await asyncio.gather(*(p.locator("[data-deal-clock]").text_content() for p in pages))
    seconds = [int(m) * 60 + int(s) for m, s in (str(t).split(":") for t in texts)]
    assert max(seconds) - min(seconds) <= 1, texts
    shown = await asyncio.gather(
        *(p.locator("[data-deal-clock]").get_attribute("data-remaining-ms") for p in pages)
    )
    assert max(int(str(v)) for v in shown) - min(int(str(v)) for v in shown) < AGREE_MS + 100, shown


async def test_eligibility_reasons_follow_then_claim_and_ended(browser: Browser, running: Running) -> None:
    """Followers only: the phone says why and offers Follow; after following the claim works. A watchers
    deal counts down to unlock and shows ended when stopped; an askers deal unlocks with a question."""
    room = await create_room(running)
    host = await _host(running, room)
    product = await _ok(host, "product.save", SCARF)
    phone = await _phone(browser, running.base, room["id"], "Ann")
    card = phone.locator("[data-deal]")
    await expect(phone.locator(".v-top [data-follow]")).to_have_attribute("aria-pressed", "false")

    followers = await _launch(host, product["id"], audience="followers", quantity=5)
    await expect(card).to_have_attribute("data-state", "not_eligible")
    await expect(card.locator("[data-deal-reason]")).to_contain_text("follow the room")
    await expect(card.locator("[data-deal-claim]")).to_be_disabled()
    await card.locator("[data-deal-follow]").click()
    await expect(phone.locator(".v-top [data-follow]")).to_have_attribute("aria-pressed", "true")
    await expect(phone.locator(".v-top [data-follow]")).to_have_text("Following")
    await expect(card).to_have_attribute("data-state", "live")
    await expect(card.locator("[data-deal-reason]")).to_be_hidden()
    await card.locator("[data-deal-claim]").click()
    await expect(card.locator("[data-claim-code]")).to_have_text(re.compile(r"^LW-"))
    await _ok(host, "discount.stop", {"id": followers["id"]})
    await expect(card).to_have_attribute("data-phase", "ended")
    await expect(card.locator("[data-claim-code]")).to_have_text(re.compile(r"^LW-"))  # still theirs

    # A newer deal takes the card; the code of the first moves to "Your coupons".
    watchers = await _launch(host, product["id"], audience="watchers", watch_minutes=1, quantity=5)
    await expect(card).to_have_attribute("data-discount-id", str(watchers["id"]))
    await expect(phone.locator("[data-coupons] [data-claim-code]")).to_have_text(re.compile(r"^LW-"))
    await expect(card).to_have_attribute("data-state", "not_eligible")
    await expect(card.locator("[data-deal-reason]")).to_contain_text(
        re.compile(r"watching 1 min: unlocks in 00:[0-5]\d")
    )
    await _ok(host, "discount.stop", {"id": watchers["id"]})
    await expect(card).to_have_attribute("data-phase", "ended")
    await expect(card.locator("[data-deal-timer-label]")).to_have_text("Deal ended")
    await expect(card.locator("[data-deal-claim]")).to_have_text("Ended")
    await expect(card.locator("[data-deal-claim]")).to_be_disabled()
    await expect(card.locator("[data-deal-clock]")).to_have_text("00:00")

    await _launch(host, product["id"], audience="askers", quantity=5)
    await expect(card).to_have_attribute("data-state", "not_eligible")
    await expect(card.locator("[data-deal-reason]")).to_contain_text("ask a question")
    await card.locator("[data-deal-ask]").click()
    await expect(phone.locator("[data-compose-kind=question]")).to_be_checked()
    await expect(phone.locator("[data-compose-product]")).to_have_value(str(product["id"]))
    await phone.locator("[data-compose-text]").fill("Is it itchy? 扎不扎？")
    await phone.locator("[data-compose-submit]").click()
    await expect(card).to_have_attribute("data-state", "live")
    await card.locator("[data-deal-claim]").click()
    await expect(card.locator("[data-deal-claims] [data-claim-code]")).to_have_text(re.compile(r"^LW-"))
    await host.close()


async def test_shelf_details_pinned_and_intents(browser: Browser, running: Running) -> None:
    """The shelf lists products with prices in their own currency; details show the description and
    count a details view; the pinned card counts a view; back from the shop counts a checkout leave."""
    room = await create_room(running)
    host = await _host(running, room)
    scarf = await _ok(host, "product.save", SCARF)
    mug = await _ok(
        host, "product.save", {"name": "Mug マグ", "price_minor": 1200, "currency": "JPY", "stock": 3}
    )
    phone = await _phone(browser, running.base, room["id"], "Ann")
    await phone.context.route("https://shop.example/**", lambda route: route.fulfill(body="the shop"))
    rows = phone.locator("[data-products] li")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0).locator(".name")).to_have_text(SCARF["name"])
    await expect(rows.nth(0).locator(".price")).to_have_text("CN¥199.00")
    await expect(rows.nth(1).locator(".price")).to_have_text("¥1,200")  # JPY has no minor digits

    await rows.nth(0).locator("button").click()
    sheet = phone.locator("[data-sheet]")
    await expect(sheet).to_be_visible()
    await expect(sheet.locator("[data-sheet-desc]")).to_have_text(SCARF["description"])
    buy = sheet.locator("[data-sheet-buy]")
    await expect(buy).to_have_attribute("href", f"/r/{room['id']}/buy/{scarf['id']}")
    await expect(buy).to_have_attribute("target", "_blank")
    await _funnel(host, scarf["id"], "details")

    await sheet.locator("[data-sheet-close]").click()
    await rows.nth(1).locator("button").click()
    await expect(sheet.locator("[data-sheet-name]")).to_have_text("Mug マグ")
    await expect(sheet.locator("[data-sheet-desc]")).to_have_text("No description yet.")
    await expect(sheet.locator("[data-sheet-buy]")).to_be_hidden()  # no shop link yet
    await sheet.locator("[data-sheet-close]").click()
    assert mug["id"] != scarf["id"]

    await _ok(host, "product.pin", {"id": scarf["id"]})
    pinned = phone.locator("[data-pinned]")
    await expect(pinned.locator("[data-pinned-name]")).to_have_text(SCARF["name"])
    await _funnel(host, scarf["id"], "views")

    async with phone.context.expect_page() as shop_page:
        await pinned.locator("[data-pinned-buy]").click()
    shop = await shop_page.value
    await expect(shop.locator("body")).to_have_text("the shop")
    assert shop.url.startswith("https://shop.example/p/scarf?src=live&lw_ref=")
    await _funnel(host, scarf["id"], "clicks")
    await shop.close()
    # Headless pages never go hidden: play the phone switching back from the shop's tab.
    await phone.evaluate(
        """() => {
          for (const state of ["hidden", "visible"]) {
            Object.defineProperty(document, "visibilityState", { configurable: true, get: () => state });
            document.dispatchEvent(new Event("visibilitychange"));
          }
        }"""
    )
    await _intent_stored(running, room["id"], "checkout.leave", scarf["id"])
    await host.close()


async def _funnel(host: Client, product_id: int, step: str) -> None:
    """Wait for the host's funnel to count one viewer at ``step`` for the product."""
    while True:
        sales = await host.recv_type("sales", timeout=5)
        if sales["data"]["products"].get(str(product_id), {}).get(step) == 1:
            return


async def _intent_stored(running: Running, room_id: str, kind: str, product_id: int) -> None:
    db = running.app.state.services.db
    for _ in range(100):
        async with db.session() as session:
            found = (
                await session.exec(
                    select(IntentEvent).where(
                        IntentEvent.room_id == room_id,
                        IntentEvent.kind == kind,
                        IntentEvent.product_id == product_id,
                    )
                )
            ).all()
        if found:
            assert len(found) == 1
            return
        await asyncio.sleep(0.05)  # the intent log writes in small batches
    raise AssertionError(f"no {kind} intent stored")


# --- the browser's reducer against the server's --------------------------------------------------


def _py_reduce(snapshot: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    for event in events:
        snapshot = apply_event(snapshot, event["type"], event["data"], REDUCERS)
    return snapshot


async def _js_reduce(page: Page, snapshot: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate(
        """async ([snap, events]) => {
          const { applyEvent } = await import("/static/js/state.js");
          return events.reduce((s, e) => applyEvent(s, e.type, e.data), snap);
        }""",
        [snapshot, events],
    )
    return result


async def test_state_js_selling_reducers_match_the_server(browser: Browser, running: Running) -> None:
    """Stale counters never win, ended stays ended, claims and discounts keep their windows: the same
    in state.js as in the server's reducer."""
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{running.base}/")
    d = {
        "id": 7, "product_id": 1, "price_minor": 700, "list_price_minor": 1000, "percent_off": 30,
        "currency": "CNY", "quantity": 5, "claimed": 2, "remaining": 3, "per_viewer_limit": 1,
        "audience": "everyone", "watch_minutes": None, "hold_secs": 900, "starts_ms": 1, "ends_ms": 10**13,
        "status": "live", "end_reason": None, "created_ms": 1, "v": 4,
    }  # fmt: skip
    snapshot: dict[str, Any] = {
        "room": {"id": "r"},
        "products": [],
        "pinned": {"product_id": None, "pinned_ms": None},
        "discounts": [{**d, "id": i, "v": 1} for i in range(1, 21)],
        "claims": [{"id": i, "discount_id": 1, "status": "reserved"} for i in range(1, 201)],
        "sales": {"products": {}, "followers": 0},
    }
    counts = {"claimed": 5, "remaining": 0, "quantity": 5, "status": "sold_out"}
    events = [
        {"type": "products", "data": {"products": [{"id": 1, "name": "Scarf", "price_minor": 1000}]}},
        {"type": "pinned", "data": {"product_id": 1, "pinned_ms": 123}},
        {"type": "discount", "data": {**d, "id": 25}},  # a new one pushes the oldest out
        {"type": "stock", "data": {"counts": {"25": {**counts, "v": 6}, "3": {**counts, "v": 0}}}},
        {"type": "discount", "data": {**d, "id": 25, "price_minor": 600, "v": 5}},  # older counters
        {"type": "discount", "data": {**d, "id": 2, "status": "ended", "end_reason": "stopped", "v": 2}},
        {"type": "stock", "data": {"counts": {"2": {**counts, "status": "live", "v": 3}}}},
        {"type": "claims", "data": {"claims": [{"id": 5, "discount_id": 1, "status": "expired"}]}},
        {"type": "claims", "data": {"claims": [{"id": 300, "discount_id": 25, "status": "reserved"}]}},
        {"type": "sales", "data": {"products": {"1": {"views": 3, "details": 1}}, "followers": 2}},
    ]
    expected = _py_reduce(snapshot, events)
    assert await _js_reduce(page, snapshot, events) == expected
    by_id = {x["id"]: x for x in expected["discounts"]}
    assert 1 not in by_id and by_id[25]["price_minor"] == 600 and by_id[25]["status"] == "sold_out"
    assert by_id[3]["claimed"] == 2 and by_id[2]["status"] == "ended" and by_id[2]["remaining"] == 0
    assert len(expected["claims"]) == 200 and expected["claims"][-1]["id"] == 300
