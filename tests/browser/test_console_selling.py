"""The host console's Selling tab in headless Chromium against the real server: shelf, import, deals."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Browser, Dialog, Locator, Page, expect

from tests.browser.conftest import wait_until
from tests.helpers import Client, Running, create_room, join

pytestmark = pytest.mark.browser

SHELF_CSV = (
    "name,price,currency,stock,sku\n"
    "Silk scarf,199.00,CNY,10,SCARF-1\n"
    "Wool hat,59.90,CNY,5,HAT-1\n"
    "羊皮手套 Gloves,89,CNY,0,GLOVE-1\n"
)


async def _selling(browser: Browser, running: Running, room: dict[str, str]) -> Page:
    """The console, logged in, on the Selling tab; confirm dialogs are accepted."""
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    page.on("dialog", _accept)
    await page.goto(f"{running.base}/host/{room['id']}/login#key={room['host_key']}")
    await expect(page).to_have_url(f"{running.base}/host/{room['id']}")
    await expect(page.locator("html")).to_have_attribute("data-conn", "live")
    await page.locator("[data-tab=selling]").click()
    await expect(page.locator("[data-panel=selling]")).to_be_visible()
    await expect(page.locator("[data-panel=questions]")).to_be_hidden()
    return page


async def _accept(dialog: Dialog) -> None:
    await dialog.accept()


async def _viewer(running: Running, room: dict[str, str], name: str) -> Client:
    token = (await join(running.base, room["id"], name))["token"]
    return await Client.connect(running.ws, "viewer", room["id"], {"token": token})


async def _host(running: Running, room: dict[str, str]) -> Client:
    return await Client.connect(running.ws, "host", room["id"], {"token": room["host_token"], "name": "Bo"})


def _product(page: Page, name: str) -> Locator:
    return page.locator("[data-shelf] .s-product", has_text=name)


async def _clock_secs(countdown: Locator) -> int:
    minutes, seconds = (await countdown.inner_text()).split(":")
    return int(minutes) * 60 + int(seconds)


async def test_add_edit_and_pin_a_product(browser: Browser, running: Running) -> None:
    """A product added through the form is listed; its price is edited; Pin reaches a phone."""
    room = await create_room(running)
    page = await _selling(browser, running, room)
    viewer = await _viewer(running, room, "Ann")
    form = page.locator("[data-product-form]")
    await form.locator("[name=name]").fill("羊绒围巾 Cashmere scarf")
    await form.locator("[name=price]").fill("19.999")
    await form.locator("[data-product-submit]").click()
    await expect(page.locator("[data-product-error]")).to_contain_text("at most 2 decimals")
    await form.locator("[name=price]").fill("199.00")
    await form.locator("[name=stock]").fill("50")
    await form.locator("[name=sku]").fill("SCARF-1")
    await form.locator("[name=shop_url]").fill("https://shop.example/p/scarf")
    await form.locator("[data-product-submit]").click()
    row = _product(page, "Cashmere scarf")
    await expect(row.locator(".s-p-meta")).to_have_text(re.compile(r"199\.00 · 50 in stock · SKU SCARF-1"))
    shelf = (await viewer.recv_type("products"))["data"]["products"]
    assert [(p["name"], p["price_minor"], p["currency"]) for p in shelf] == [
        ("羊绒围巾 Cashmere scarf", 19900, "CNY")
    ]
    product_id = shelf[0]["id"]

    await row.locator("[data-act=edit]").click()
    await expect(form.locator("[name=price]")).to_have_value("199.00")
    await expect(page.locator("[data-product-form-title]")).to_have_text("Edit 羊绒围巾 Cashmere scarf")
    await form.locator("[name=price]").fill("149.5")
    await form.locator("[data-product-submit]").click()
    await expect(row.locator(".s-p-meta")).to_contain_text("149.50")
    edited = (await viewer.recv_type("products"))["data"]["products"]
    assert [(p["id"], p["price_minor"], p["sku"]) for p in edited] == [(product_id, 14950, "SCARF-1")]
    await expect(page.locator("[data-product-form-title]")).to_have_text("Add a product")

    await row.locator("[data-act=pin]").click()
    pinned = await viewer.recv_type("pinned")
    assert pinned["data"]["product_id"] == product_id
    await expect(row).to_have_class(re.compile(r"\bis-pinned\b"))
    await expect(row.locator("[data-act=pin]")).to_have_text("Unpin")
    await expect(page.locator("[data-mini-pinned]")).to_have_text("Pinned: 羊绒围巾 Cashmere scarf")


async def test_import_a_csv_and_refuse_a_bad_one(browser: Browser, running: Running) -> None:
    """A CSV of three products lands on the shelf; a bad CSV shows the server's reason and adds nothing."""
    room = await create_room(running)
    page = await _selling(browser, running, room)
    upload = page.locator("[data-import-file]")
    await upload.set_input_files({"name": "shelf.csv", "mimeType": "text/csv", "buffer": SHELF_CSV.encode()})
    await expect(page.locator("[data-import-result]")).to_have_text("Imported: 3 added, 0 updated")
    names = page.locator("[data-shelf] .s-p-name")
    await expect(names).to_have_text(["Silk scarf", "Wool hat", "羊皮手套 Gloves"])
    await expect(_product(page, "Wool hat").locator(".s-p-meta")).to_contain_text("59.90 · 5 in stock")

    bad = "name,price,sku\nSocks,9.99,SOCK-1\nBelt,abc,BELT-1\n"
    await upload.set_input_files({"name": "bad.csv", "mimeType": "text/csv", "buffer": bad.encode()})
    result = page.locator("[data-import-result]")
    await expect(result).to_have_attribute("data-code", "invalid")
    await expect(result).to_contain_text("Please check what you entered.")
    await expect(result.locator(".s-detail")).to_have_text("product 2: price 'abc' is not a number")
    host = await _host(running, room)
    assert [p["name"] for p in host.welcome["snapshot"]["products"]] == [
        "Silk scarf",
        "Wool hat",
        "羊皮手套 Gloves",
    ]
    await expect(names).to_have_count(3)

    update = b'{"products": [{"name": "Silk scarf", "price_minor": 17900, "sku": "SCARF-1", "stock": 8}]}'
    await upload.set_input_files({"name": "prices.json", "mimeType": "application/json", "buffer": update})
    await expect(result).to_have_text("Imported: 0 added, 1 updated")
    await expect(_product(page, "Silk scarf").locator(".s-p-meta")).to_contain_text("179.00 · 8 in stock")


async def _launch_from_form(page: Page) -> None:
    form = page.locator("[data-launch-form]")
    await form.locator("[data-price-mode] [data-value=percent]").click()
    await form.locator("[data-launch-price]").fill("30")
    await expect(page.locator("[data-launch-preview]")).to_contain_text("139.30")
    await form.locator("[name=quantity]").fill("2")
    await form.locator("[data-duration] [data-value='60']").click()
    await form.locator("[data-launch-submit]").click()


async def test_launch_claim_extend_restock_and_stop(browser: Browser, running: Running) -> None:
    """A deal launched from the form: a phone claims; the board, the claims and the funnel follow;
    +30 s moves the end, +10 adds stock, Stop ends it for everyone."""
    room = await create_room(running)
    host = await _host(running, room)
    ack = await host.request("product.save", {"name": "Silk scarf", "price_minor": 19900, "stock": 100})
    product: dict[str, Any] = ack["data"]["result"]
    page = await _selling(browser, running, room)
    viewer = await _viewer(running, room, "Ann")
    await expect(page.locator("[data-launch-product]")).to_have_value(str(product["id"]))

    form = page.locator("[data-launch-form]")
    await form.locator("[data-launch-price]").fill("120")
    await form.locator("[data-launch-submit]").click()
    await expect(page.locator("[data-launch-error]")).to_have_text("Enter a discount from 1 to 99 %.")
    await _launch_from_form(page)
    deal = (await viewer.recv_type("discount"))["data"]
    assert (deal["percent_off"], deal["quantity"], deal["price_minor"]) == (30, 2, 13930)
    assert deal["ends_ms"] - deal["starts_ms"] == 60_000

    card = page.locator(f"[data-deal-list] [data-discount-id='{deal['id']}']")
    await expect(card.locator(".s-status")).to_have_text("Live")
    await expect(card.locator("[data-remaining]")).to_have_text("2")
    await expect(page.locator("[data-sell-badge]")).to_have_text("1 active")
    countdown = card.locator("[data-countdown]")
    assert 40 <= await _clock_secs(countdown) <= 60

    claim = (await viewer.request("discount.claim", {"id": deal["id"]}))["data"]["result"]
    await expect(card.locator("[data-remaining]")).to_have_text("1")
    await expect(card.locator("[data-claimed]")).to_have_text("1 claimed")
    row = page.locator(f"[data-claims] tr[data-claim-id='{claim['id']}']")
    await expect(row.locator(".s-name")).to_have_text("Ann")
    await expect(row.locator(".s-what")).to_have_text("Silk scarf")
    await expect(row.locator(".s-code")).to_have_text(claim["code"])
    await expect(row.locator(".s-claim-status")).to_have_text("Reserved")
    funnel = page.locator(f"[data-funnel] tr[data-product-id='{product['id']}']")
    await expect(funnel.locator("[data-step=claims] .s-n")).to_have_text("1")

    before = await _clock_secs(countdown)
    await card.locator("[data-extend='30']").click()
    await expect(countdown).to_have_attribute("data-ends-ms", str(deal["ends_ms"] + 30_000))
    await wait_until(
        page,
        "([el, before]) => { const [m, s] = el.textContent.split(':'); return m * 60 + +s >= before + 25; }",
        arg=[await countdown.element_handle(), before],
    )

    await card.locator("[data-add='10']").click()
    await expect(card.locator("[data-remaining]")).to_have_text("11")
    await expect(card.locator(".s-of")).to_have_text("of 12 left")

    await card.locator("[data-stop]").click()
    await expect(card.locator(".s-status")).to_have_text("Ended")
    await expect(card).to_have_attribute("data-status", "ended")
    await expect(card.locator(".s-deal-controls")).to_be_hidden()
    await expect(page.locator("[data-sell-badge]")).to_be_hidden()
    while True:
        event = (await viewer.recv_type("discount"))["data"]
        if event["status"] == "ended":
            break
    assert event["id"] == deal["id"] and event["end_reason"] == "stopped"


async def test_shop_box_and_chinese(browser: Browser, running: Running) -> None:
    """The shop box gives the webhook URL and hides the secret until asked; the tab speaks Chinese."""
    room = await create_room(running)
    page = await _selling(browser, running, room)
    await expect(page.locator("[data-webhook-url]")).to_have_text(
        f"{running.base}/api/rooms/{room['id']}/shop/events"
    )
    secret = page.locator("[data-webhook-secret]")
    await expect(secret).to_have_attribute("data-hidden", "true")
    await expect(secret).to_contain_text("•")
    await page.locator("[data-secret-toggle]").click()
    await expect(secret).to_have_text(re.compile(r"^whsec_[A-Za-z0-9+/=]{40,}$"))
    await page.locator(".c-top [data-lang-switch]").click()
    await expect(page.locator("[data-tab=selling]")).to_contain_text("带货")
    await expect(page.locator("#s-launch-title")).to_have_text("发起优惠")
    await expect(page.locator("[data-secret-toggle]")).to_have_text("隐藏")
    await page.reload()
    await expect(page.locator("[data-panel=selling]")).to_be_visible()  # the tab survives a reload


async def test_money_follows_the_currency(browser: Browser, running: Running) -> None:
    """Typed prices become minor units in the currency's own decimals, exactly; extra decimals are refused."""
    room = await create_room(running)
    page = await _selling(browser, running, room)
    results = await page.evaluate(
        """async () => {
            const m = await import("/static/js/money.js");
            return [
                m.parseMajor("199.00", "CNY"), m.parseMajor("199.5", "CNY"), m.parseMajor("0.07", "CNY"),
                m.parseMajor("１９９．００", "CNY"), m.parseMajor("1500", "JPY"), m.parseMajor("1.5", "JPY"),
                m.parseMajor("1.234", "KWD"), m.parseMajor("19.999", "CNY"), m.parseMajor("-1", "CNY"),
                m.parseMajor("1e3", "CNY"), m.parseMajor("12", "CN"),
                m.toMajor(19900, "CNY"), m.toMajor(7, "CNY"), m.toMajor(1500, "JPY"), m.toMajor(1234, "KWD"),
            ];
        }"""
    )
    assert results == [
        19900,
        19950,
        7,
        19900,
        1500,
        None,
        1234,
        None,
        None,
        None,
        None,
        "199.00",
        "0.07",
        "1500",
        "1.234",
    ]
