"""Lucky draws through the real pages: the phones' draw card (enter, shake, win, claim) and the big
screen's draw panel (countdown, entrants, reels that land on the server's winners).

The host is driven with the protocol client (the console has its own tests); phones and the screen
are headless Chromium pages. Every wait is on a DOM condition, never a fixed sleep: under
navigator.webdriver the reels roll for a fraction of a second, and the landing is still asserted.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from server.text import mask_name
from tests.browser.conftest import PHONE, wait_until
from tests.helpers import Client, Running, create_room

pytestmark = pytest.mark.browser


async def _live(page: Page) -> None:
    await expect(page.locator("html")).to_have_attribute("data-conn", "live")


async def _phone(browser: Browser, base: str, room_id: str, name: str, locale: str = "en-US") -> Page:
    context = await browser.new_context(**PHONE, locale=locale)  # type: ignore[arg-type]
    page = await context.new_page()
    await page.goto(f"{base}/r/{room_id}")
    await page.locator("input[name=name]").fill(name)
    await page.locator("[data-join]").click()
    await _live(page)
    return page


async def _screen(
    browser: Browser, running: Running, room: dict[str, str], reduced_motion: bool = False
) -> Page:
    motion = "reduce" if reduced_motion else "no-preference"
    context = await browser.new_context(viewport={"width": 1920, "height": 1080}, reduced_motion=motion)
    page = await context.new_page()
    await page.goto(f"{running.base}/screen/{room['id']}?k={room['screen_key']}")
    await _live(page)
    return page


async def _host(running: Running, room: dict[str, str]) -> Client:
    return await Client.connect(running.ws, "host", room["id"], {"token": room["host_token"], "name": "Ann"})


async def _ok(client: Client, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    reply = await client.request(kind, data)
    assert reply["type"] == "ack", reply
    result: dict[str, Any] = reply["data"]["result"]
    return result


async def _comment(page: Page, text: str) -> None:
    await page.locator("[data-compose-text]").fill(text)
    await page.locator("[data-compose-submit]").click()
    await expect(page.locator("[data-compose-text]")).to_have_value("")


async def _landed(screen: Page, winners: list[dict[str, Any]]) -> None:
    """The screen's reels stopped on exactly the server's winners, masked."""
    panel = screen.locator("[data-draw]")
    await expect(panel).to_have_attribute("data-phase", "landed")
    for w in winners:
        card = panel.locator(f'[data-place="{w["place"]}"]')
        await expect(card).to_have_attribute("data-landed", "true")
        await expect(card.locator("[data-winner-name]")).to_have_text(mask_name(w["name"]))
    await expect(panel.locator("[data-winner-name]")).to_have_count(len(winners))


async def test_keyword_draw_from_comments_to_claim_and_verification(
    browser: Browser, running: Running
) -> None:
    """Two phones comment the keyword through the composer, a third comments something else; the
    screen lands on the masked winner (never the full name), the winner claims with a phone number,
    the other keyword phone is told "not this time", and the public page says the draw is valid."""
    room = await create_room(running, "直播抽奖")
    host = await _host(running, room)
    screen = await _screen(browser, running, room)
    names = ["张小三", "李大四", "王五六"]
    a, b, c = [await _phone(browser, running.base, room["id"], n) for n in names]

    draw = await _ok(
        host,
        "draw.create",
        {
            "title": "龙井茶 Longjing tea",
            "count": 1,
            "mode": "keyword",
            "keyword": "我要茶",
            "window_secs": 120,
        },
    )
    panel = screen.locator("[data-draw]")
    await expect(panel).to_have_attribute("data-phase", "open")
    await expect(panel.locator("[data-draw-keyword]")).to_have_text("我要茶")
    await expect(panel.locator("[data-draw-clock]")).to_have_text(re.compile(r"^0[12]:\d\d$"))
    await expect(screen.locator("[data-stage]")).to_have_attribute("data-has-draw", "true")
    for phone in (a, b, c):
        card = phone.locator("[data-lucky]")
        await expect(card).to_have_attribute("data-state", "open")
        await expect(card.locator("[data-lucky-keyword]")).to_have_text("我要茶")
        await expect(card.locator("[data-lucky-clock]")).to_have_text(re.compile(r"^0[12]:\d\d$"))

    # A puts the keyword in the composer with the card's button; B types it with spaces and "!".
    await a.locator("[data-lucky-use-keyword]").click()
    await expect(a.locator("[data-compose-text]")).to_have_value("我要茶")
    await a.locator("[data-compose-submit]").click()
    await expect(a.locator("[data-compose-text]")).to_have_value("")
    await _comment(b, "我 要 茶!")
    await _comment(c, "好看")
    for phone in (a, b):
        await expect(phone.locator("[data-lucky-in]")).to_be_visible()
    await expect(c.locator("[data-lucky-in]")).to_be_hidden()
    await expect(panel.locator("[data-draw-entrants]")).to_have_text("2")
    await expect(c.locator("[data-lucky-entrants]")).to_have_text("2 in")

    drawn = await _ok(host, "draw.run", {"id": draw["id"]})
    (winner,) = drawn["winners"]
    assert winner["name"] in names[:2]
    await _landed(screen, [winner])
    text = await screen.locator("body").inner_text()
    assert all(name not in text for name in names), text  # masked: 张*三, never 张小三
    html = await screen.content()
    assert all(name not in html for name in names)
    verify = panel.locator("[data-draw-verify]")
    await expect(verify).to_contain_text(drawn["seed_sha256"][:8])
    await expect(verify).to_contain_text(f"/d/{drawn['code']}")

    won, lost = (a, b) if winner["name"] == names[0] else (b, a)
    card = won.locator("[data-lucky]")
    await expect(card).to_have_attribute("data-state", "won")
    await expect(card.locator("[data-lucky-result]")).to_have_text("You won 龙井茶 Longjing tea!")
    await expect(card.locator("[data-lucky-deadline]")).to_contain_text("Claim by")
    await expect(lost.locator("[data-lucky]")).to_have_attribute("data-state", "lost")
    await expect(lost.locator("[data-lucky-result]")).to_have_text("Not this time. Thanks for joining!")
    await expect(c.locator("[data-lucky]")).to_have_attribute("data-state", "done")

    link = card.locator("[data-lucky-verify]")
    await expect(link).to_have_attribute("href", f"/d/{drawn['code']}")
    await expect(link).to_contain_text(drawn["seed_sha256"][:8])
    form = card.locator("[data-lucky-claim]")
    await form.locator("input[name=name]").fill(winner["name"])
    await form.locator("input[name=contact]").fill("13812345678")
    await form.locator("input[name=consent]").check()
    await form.locator("[data-lucky-claim-submit]").click()
    await expect(card).to_have_attribute("data-state", "claimed")
    await expect(card.locator("[data-lucky-claimed]")).to_be_visible()
    await expect(form).to_be_hidden()
    claimed = await host.recv_type("draw")
    while claimed["data"]["winners"][0]["status"] != "claimed":
        claimed = await host.recv_type("draw")
    shown = claimed["data"]["winners"][0]
    assert shown["claim_phone"] == "+8613812345678" and shown["consent"] is True
    await expect(panel.locator('[data-place="1"]')).to_have_attribute("data-status", "claimed")

    page = await (await browser.new_context()).new_page()
    await page.goto(f"{running.base}{drawn['verify_path']}")
    await expect(page.locator("[data-verdict]")).to_have_attribute("data-verdict", "valid")

    # The host moves on: another layout takes the stage back.
    await _ok(host, "settings.update", {"layout": "top"})
    await expect(screen.locator("[data-stage]")).to_have_attribute("data-has-draw", "false")
    await expect(panel).to_be_hidden()
    await host.close()


async def test_join_draw_entrants_unfilled_and_reload(browser: Browser, running: Running) -> None:
    """Join buttons enter two phones (the screen counts them); three prizes for two entrants leave one
    unfilled; a winner who reloads still sees the prize and the claim form; a phone that did not join
    is told the draw is done."""
    room = await create_room(running)
    host = await _host(running, room)
    screen = await _screen(browser, running, room)
    a = await _phone(browser, running.base, room["id"], "Alice Wong")
    b = await _phone(browser, running.base, room["id"], "小红", "zh-CN")
    idle = await _phone(browser, running.base, room["id"], "Idle")
    tiers = [{"name": "Lipstick", "count": 1, "image_url": f"{running.base}/r/{room['id']}/qr.svg"},
             {"name": "Sticker", "count": 2}]  # fmt: skip
    draw = await _ok(
        host, "draw.create", {"title": "Gifts", "tiers": tiers, "mode": "join", "window_secs": 60}
    )

    panel = screen.locator("[data-draw]")
    await expect(panel.locator("[data-draw-how]")).to_have_text("Tap “Join the draw” on your phone")
    await expect(panel.locator("[data-draw-image]")).to_be_visible()
    await expect(panel.locator("[data-draw-tiers] li")).to_have_count(2)
    await expect(panel.locator("[data-draw-entrants]")).to_have_text("0")
    await expect(a.locator("[data-lucky-tiers] li")).to_have_count(2)
    await expect(b.locator("[data-lucky-join]")).to_have_text("立即参与")
    for phone, n in ((a, "1"), (b, "2")):
        join = phone.locator("[data-lucky-join]")
        await join.click()
        await expect(join).to_be_hidden()
        await expect(phone.locator("[data-lucky-in]")).to_be_visible()
        await expect(panel.locator("[data-draw-entrants]")).to_have_text(n)
    await expect(a.locator("[data-lucky-in]")).to_have_text("You're in!")
    await expect(b.locator("[data-lucky-in]")).to_have_text("已参与！")
    await expect(idle.locator("[data-lucky-join]")).to_be_visible()

    drawn = await _ok(host, "draw.run", {"id": draw["id"]})
    assert len(drawn["winners"]) == 2 and drawn["unfilled"] == 1
    await _landed(screen, drawn["winners"])
    await expect(panel.locator("[data-draw-note]")).to_have_text(
        "Fewer entrants than prizes: 1 prize(s) not given."
    )
    prizes = {w["name"]: tiers[w["tier"]]["name"] for w in drawn["winners"]}
    await expect(a.locator("[data-lucky-result]")).to_have_text(f"You won {prizes['Alice Wong']}!")
    await expect(b.locator("[data-lucky-result]")).to_have_text(f"恭喜你抽中 {prizes['小红']}！")
    await expect(idle.locator("[data-lucky]")).to_have_attribute("data-state", "done")

    await a.reload()
    await _live(a)
    card = a.locator("[data-lucky]")
    await expect(card).to_have_attribute("data-state", "won")
    await expect(card.locator("[data-lucky-result]")).to_have_text(f"You won {prizes['Alice Wong']}!")
    await expect(card.locator("[data-lucky-claim]")).to_be_visible()
    await host.close()


async def test_shake_race_with_the_tap_fallback(browser: Browser, running: Running) -> None:
    """Two phones race with the tap button; the one that tapped more wins (on a screen that asks for
    reduced motion the winner shows without the reels). A cancelled draw leaves the stage at once."""
    room = await create_room(running)
    host = await _host(running, room)
    screen = await _screen(browser, running, room, reduced_motion=True)
    slow = await _phone(browser, running.base, room["id"], "Slow Sam")
    fast = await _phone(browser, running.base, room["id"], "Fast Fay")
    draw = await _ok(host, "draw.create", {"title": "Shake!", "count": 1, "mode": "shake", "window_secs": 60})
    await expect(screen.locator("[data-draw-how]")).to_have_text("Shake your phone! The most shakes win")

    for phone, taps in ((slow, 3), (fast, 12)):
        tap = phone.locator("[data-lucky-tap]")
        for _ in range(taps):
            await tap.click()
        await expect(phone.locator("[data-lucky-shakes]")).to_have_text(f"{taps} shakes")
        await expect(phone.locator("[data-lucky-in]")).to_be_visible()
        # Every shake sent (at most one message every 500 ms), none left on the phone.
        await wait_until(phone, "window.lwLucky.unsent() === 0")
    await expect(screen.locator("[data-draw-entrants]")).to_have_text("2")

    drawn = await _ok(host, "draw.run", {"id": draw["id"]})
    assert [w["name"] for w in drawn["winners"]] == ["Fast Fay"]
    await _landed(screen, drawn["winners"])
    await expect(fast.locator("[data-lucky]")).to_have_attribute("data-state", "won")
    await expect(slow.locator("[data-lucky]")).to_have_attribute("data-state", "lost")

    again = await _ok(host, "draw.create", {"title": "Next", "count": 1, "mode": "join", "window_secs": 60})
    await expect(screen.locator("[data-draw]")).to_have_attribute("data-draw-id", str(again["id"]))
    await expect(slow.locator("[data-lucky-join]")).to_be_visible()
    await _ok(host, "draw.cancel", {"id": again["id"]})
    await expect(screen.locator("[data-draw]")).to_be_hidden()
    await expect(screen.locator("[data-stage]")).to_have_attribute("data-has-draw", "false")
    await expect(slow.locator("[data-lucky-result]")).to_have_text("This draw was cancelled.")
    await host.close()


async def test_claim_form_checks_and_translated_refusals(browser: Browser, running: Running) -> None:
    """A bad phone number is refused with a translated message (by the phone, or by the server) and
    nothing is claimed; then a valid email claims the prize."""
    room = await create_room(running)
    host = await _host(running, room)
    phone = await _phone(browser, running.base, room["id"], "李大四", "zh-CN")
    draw = await _ok(host, "draw.create", {"title": "Mug", "count": 1, "mode": "everyone", "window_secs": 60})
    await expect(phone.locator("[data-lucky-in]")).to_be_visible()  # the phone entered by itself
    drawn = await _ok(host, "draw.run", {"id": draw["id"]})
    assert [w["name"] for w in drawn["winners"]] == ["李大四"]

    card = phone.locator("[data-lucky]")
    await expect(card).to_have_attribute("data-state", "won")
    form = card.locator("[data-lucky-claim]")
    error = form.locator("[data-lucky-claim-error]")
    submit = form.locator("[data-lucky-claim-submit]")
    await submit.click()
    await expect(error).to_have_text("请填写姓名。")
    await form.locator("input[name=name]").fill("李大四")
    for bad in ("12", "12345"):  # caught by the phone; then by the server (phonenumbers)
        await form.locator("input[name=contact]").fill(bad)
        await submit.click()
        await expect(error).to_have_text("手机号无效。")
        await expect(submit).to_be_enabled()
    await form.locator("input[name=contact]").fill("li@example")
    await submit.click()
    await expect(error).to_have_text("邮箱地址无效。")
    await expect(card).to_have_attribute("data-state", "won")
    refused = await Client.connect(running.ws, "host", room["id"], {"token": room["host_token"]})
    assert refused.welcome["snapshot"]["draw"]["winners"][0]["status"] == "won"  # nothing claimed
    await refused.close()

    await form.locator("input[name=contact]").fill("li@example.com")
    await submit.click()
    await expect(card).to_have_attribute("data-state", "claimed")
    await expect(card.locator("[data-lucky-claimed]")).to_have_text("已领取！商家会联系你发放奖品。")
    await host.close()


async def test_askers_draw_tells_each_phone_whether_it_is_in(browser: Browser, running: Running) -> None:
    """A draw among those who asked: every phone is told who is in; the phone that asked learns it is
    an entrant from the server (no window, no button) and then that it won."""
    room = await create_room(running)
    host = await _host(running, room)
    screen = await _screen(browser, running, room)
    asker = await _phone(browser, running.base, room["id"], "Asker Ann")
    quiet = await _phone(browser, running.base, room["id"], "Quiet Q")
    await asker.locator("[data-compose-kind=question] + span").click()
    await _comment(asker, "Does it come in red?")
    draw = await _ok(host, "draw.create", {"title": "For askers", "count": 1, "mode": "askers"})

    for page in (asker, quiet, screen):
        await expect(page.locator("[data-lucky-result], [data-draw-how]")).to_have_text(
            "Everyone who asked a question is in."
        )
    await expect(asker.locator("[data-lucky-in]")).to_be_visible()
    await expect(quiet.locator("[data-lucky-in]")).to_be_hidden()
    await expect(screen.locator("[data-draw-entrants]")).to_have_text("1")
    drawn = await _ok(host, "draw.run", {"id": draw["id"]})
    await _landed(screen, drawn["winners"])
    await expect(asker.locator("[data-lucky]")).to_have_attribute("data-state", "won")
    await expect(quiet.locator("[data-lucky-result]")).to_have_text("The draw is done: 1 winner(s).")
    await host.close()
