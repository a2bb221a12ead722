"""Follow-up on the phone: the opt-in box, web push, the in-app inbox, the recipient pages, /sw.js.

Phones are headless Chromium pages; what the server recorded is read from its database. Every wait is
on a DOM condition or a response, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeoutError
from sqlmodel import col, select

from server.followup import contacts
from server.followup.links import Links
from server.storage import now_ms
from server.storage.followup import Consent, ConsentLog, Contact, ContactViewer, Message, PushSubscription
from server.storage.models import RoomViewer, Viewer
from tests.browser.conftest import PHONE, wait_until
from tests.conftest import make_settings
from tests.followup.channels.conftest import LOOPBACK_ALLOWED
from tests.followup.flow import UNREACHABLE
from tests.helpers import Client, Running, create_room, serve

pytestmark = pytest.mark.browser

EMAIL_WORDING = "Send me reminders and offers from this shop by email. I can unsubscribe any time."
SMS_WORDING_ZH = "我同意本店通过短信向我发送提醒和优惠信息，回复 TD 即可退订。"
PUSH_WORDING = (
    "Show reminders and offers from this shop as notifications on this phone. I can turn them off any time."
)
SCARF = {"name": "Cashmere scarf", "price_minor": 19900, "currency": "CNY", "stock": 50}


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    """The app with email and SMS configured (nothing listens there): the opt-in box offers both."""
    # Loopback addresses are no outbound destination unless allowed, as an operator would here.
    async with serve(make_settings(tmp_path, **UNREACHABLE, outbound_allow=LOOPBACK_ALLOWED)) as r:
        yield r


async def _context(browser: Browser, locale: str = "en-US", **extra: Any) -> BrowserContext:
    return await browser.new_context(**PHONE, locale=locale, **extra)  # type: ignore[arg-type]


async def _join(context: BrowserContext, base: str, room_id: str, name: str) -> Page:
    page = await context.new_page()
    await page.goto(f"{base}/r/{room_id}")
    await page.locator("input[name=name]").fill(name)
    await page.locator("[data-join]").click()
    await expect(page.locator("html")).to_have_attribute("data-conn", "live")
    return page


async def _ok(host: Client, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    reply = await host.request(kind, data)
    assert reply["type"] == "ack", reply
    result: dict[str, Any] = reply["data"]["result"]
    return result


async def _viewer_id(running: Running, room_id: str) -> str:
    async with running.app.state.services.db.session() as session:
        ids = (await session.exec(select(RoomViewer.viewer_id).where(RoomViewer.room_id == room_id))).all()
    assert len(ids) == 1, ids
    return str(ids[0])


async def _contact_of(running: Running, viewer_id: str) -> Contact:
    async with running.app.state.services.db.session() as session:
        contact = await contacts.contact_of_viewer(session, viewer_id)
    assert contact is not None
    return contact


async def _consent(running: Running, contact_id: str, channel: str) -> tuple[Consent, list[ConsentLog]]:
    """The contact's current say on ``channel`` (there must be one) and its history."""
    async with running.app.state.services.db.session() as session:
        current = await session.get(Consent, (contact_id, channel))
        log = (
            await session.exec(
                select(ConsentLog)
                .where(ConsentLog.contact_id == contact_id, ConsentLog.channel == channel)
                .order_by(col(ConsentLog.id))
            )
        ).all()
    assert current is not None, f"no {channel} consent"
    return current, list(log)


async def test_claim_offers_the_box_and_email_awaits_confirming(browser: Browser, running: Running) -> None:
    """After a claim the box offers itself; a bad address is refused next to the field; a good one
    is saved as pending with the sentence shown, and the phone says to check the inbox."""
    room = await create_room(running, "Reminders")
    host = await Client.connect(running.ws, "host", room["id"], {"token": room["host_token"], "name": "Ann"})
    product = await _ok(host, "product.save", SCARF)
    page = await _join(await _context(browser, timezone_id="Europe/Berlin"), running.base, room["id"], "Tom")
    box = page.locator("[data-optin]")
    await expect(page.locator("[data-optin-open]")).to_have_text("Get reminders")
    await expect(box).to_be_hidden()  # never on load

    deal = {"percent_off": 30, "quantity": 5, "per_viewer_limit": 2, "duration_secs": 120}
    await _ok(host, "discount.launch", {"product_id": product["id"], **deal})
    await page.locator("[data-deal-claim]").click()
    await expect(page.locator("[data-deal-claims] [data-claim-code]")).to_be_visible()
    await expect(box).to_be_visible()
    await expect(box.locator("[data-optin-wording=email]")).to_have_text(EMAIL_WORDING)
    await expect(box.locator("[data-optin-consent=email]")).not_to_be_checked()  # never pre-ticked

    email = box.locator("input[name=email]")
    await email.fill("tom..lee@example.com")  # looks like an address; email-validator says no
    await box.locator("[data-optin-consent=email]").check()
    await box.locator("[data-optin-save]").click()
    error = box.locator("[data-optin-error=email]")
    await expect(error).to_have_text("That email address does not look right.")
    await expect(email).to_have_attribute("aria-invalid", "true")
    await expect(email).to_be_focused()

    await email.fill("Tom.Lee@Example.com")
    await expect(error).to_be_hidden()
    await box.locator("[data-optin-save]").click()
    done = box.locator("[data-optin-done]")
    await expect(done).to_have_text("Check your inbox to confirm your email address.")
    await expect(box.locator("[data-optin-form]")).to_be_hidden()
    state = box.locator("[data-optin-state] [data-channel=email]")
    await expect(state).to_have_attribute("data-status", "pending")

    contact = await _contact_of(running, await _viewer_id(running, room["id"]))
    assert (contact.email, contact.tz, contact.locale) == ("tom.lee@example.com", "Europe/Berlin", "en")
    current, log = await _consent(running, contact.id, "email")
    assert current.status == "pending"
    assert [(e.status, e.wording, e.lang, e.room_id, e.source) for e in log] == [
        ("pending", EMAIL_WORDING, "en", room["id"], "opt-in box")
    ]
    async with running.app.state.services.db.session() as session:
        queued = (await session.exec(select(Message).where(Message.contact_id == contact.id))).all()
    assert [m.channel for m in queued] == ["email"]  # the confirmation email

    # Decided: a reload and another claim do not offer the box again; the link still opens it.
    await box.locator("[data-optin-close]").click()
    await expect(box).to_be_hidden()
    await page.reload()
    await expect(page.locator("html")).to_have_attribute("data-conn", "live")
    link = page.locator("[data-optin-open]")
    await expect(link).to_have_text("Reminder settings")
    await page.locator("[data-deal-claim]").click()
    await expect(page.locator("[data-deal-claims] [data-claim-code]")).to_have_count(2)
    await expect(box).to_be_hidden()
    await link.click()
    await expect(box).to_be_visible()
    await expect(box.locator("[data-optin-title]")).to_be_focused()
    await expect(state).to_have_text(re.compile(r"^email t\S*@example\.com: waiting for your confirmation$"))
    await host.close()


async def test_link_opens_the_box_for_sms_in_chinese(browser: Browser, running: Running) -> None:
    """From the "Get reminders" link, in Chinese: a bad number is refused next to it, a good one with
    SMS consent is saved as granted with the Chinese sentence; a box ticked without its field says so."""
    room = await create_room(running, "提醒")
    page = await _join(await _context(browser, "zh-CN"), running.base, room["id"], "小红")
    await page.locator("[data-optin-open]").click()
    box = page.locator("[data-optin]")
    await expect(box.locator("[data-optin-title]")).to_have_text("订阅本店提醒")
    await expect(box.locator("[data-optin-title]")).to_be_focused()

    await box.locator("[data-optin-consent=sms]").check()
    await box.locator("[data-optin-save]").click()
    await expect(box.locator("[data-optin-error=phone]")).to_have_text("请填写手机号，才能收到短信。")

    phone = box.locator("input[name=phone]")
    await phone.fill("12345")
    await box.locator("[data-optin-save]").click()
    await expect(box.locator("[data-optin-error=phone]")).to_have_text("手机号好像不对。")
    await expect(phone).to_have_attribute("aria-invalid", "true")

    await phone.fill("138 0013 8000")
    await box.locator("[data-optin-save]").click()
    await expect(box.locator("[data-optin-done]")).to_have_text("已保存，我们会通过短信提醒你。")
    contact = await _contact_of(running, await _viewer_id(running, room["id"]))
    assert (contact.phone, contact.locale) == ("+8613800138000", "zh-CN")
    current, log = await _consent(running, contact.id, "sms")
    assert current.status == "granted"
    assert [(e.wording, e.lang) for e in log] == [(SMS_WORDING_ZH, "zh-CN")]
    await expect(box.locator("[data-optin-state] [data-channel=sms]")).to_have_text(
        re.compile(r"^短信 \S+：已开启$")
    )


async def test_the_box_offers_only_what_this_server_sends(browser: Browser, tmp_path: Path) -> None:
    """On a server with neither SMTP nor an SMS gateway the box has no email or phone field and says
    it reminds by notification; the link to it is there (push is offered)."""
    async with serve(make_settings(tmp_path)) as bare:
        room = await create_room(bare, "Push only")
        page = await _join(await _context(browser), bare.base, room["id"], "Tom")
        await page.locator("[data-optin-open]").click()
        box = page.locator("[data-optin]")
        await expect(box).to_be_visible()
        await expect(box.locator(".v-optin-lead")).to_have_text(
            "New deals, restocks, and your coupons before they run out, as notifications on this phone."
        )
        await expect(box.locator("[data-optin-form]")).to_be_hidden()
        assert await box.locator("input[name=email], input[name=phone], [data-optin-consent]").count() == 0
        await expect(box.locator("[data-push-enable]")).to_be_visible()
        await page.locator("[data-lang-switch]").click()
        await expect(box.locator(".v-optin-lead")).to_have_text(
            "新优惠、补货、优惠券快过期时，第一时间在这台手机上通知你。"
        )


async def test_switching_language_is_kept_for_messages(browser: Browser, running: Running) -> None:
    """The phone tells the server its language when it joins and when the viewer switches it, so
    in-app messages are written in it."""
    room = await create_room(running, "Language")
    page = await _join(await _context(browser, "en-US"), running.base, room["id"], "Tom")
    viewer_id = await _viewer_id(running, room["id"])
    assert await _viewer_locale(running, viewer_id) == "en"
    async with page.expect_response(re.compile(r"/join$")) as reply:
        await page.locator("[data-lang-switch]").click()
    assert (await reply.value).ok
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    assert await _viewer_locale(running, viewer_id) == "zh-CN"
    await page.reload()  # the page shown in Chinese keeps Chinese
    await expect(page.locator("html")).to_have_attribute("data-conn", "live")
    assert await _viewer_locale(running, viewer_id) == "zh-CN"


async def _viewer_locale(running: Running, viewer_id: str) -> str | None:
    async with running.app.state.services.db.session() as session:
        viewer = await session.get(Viewer, viewer_id)
    assert viewer is not None
    return viewer.locale


async def _inapp(running: Running, room_id: str, viewer_id: str, subject: str, body: str) -> int:
    """An in-app message delivered to the viewer, as the in-app channel leaves it."""
    t = now_ms()
    message = Message(
        idem_key=f"test:{viewer_id}:{subject}",
        room_id=room_id,
        viewer_id=viewer_id,
        channel="inapp",
        template="test",
        status="sent",
        subject=subject,
        body=body,
        next_ms=t,
        created_ms=t,
        sent_ms=t,
    )
    async with running.app.state.services.db.session() as session:
        session.add(message)
        await session.commit()
        await session.refresh(message)
    assert message.id is not None
    return message.id


async def _opened_ms(running: Running, message_id: int) -> tuple[str, int | None]:
    async with running.app.state.services.db.session() as session:
        message = await session.get(Message, message_id)
    assert message is not None
    return message.status, message.opened_ms


async def test_inbox_cards_page_and_dismiss(browser: Browser, running: Running) -> None:
    """In-app messages show as one card, newest first, text as text with safe links; paging goes
    through them; dismissing marks each opened and the card goes once all are read."""
    room = await create_room(running, "Inbox")
    page = await _join(await _context(browser), running.base, room["id"], "Ana")
    await expect(page.locator("[data-inbox]")).to_be_hidden()
    viewer_id = await _viewer_id(running, room["id"])
    coupon = "Before Friday: https://shop.example/c?x=1."
    first = await _inapp(running, room["id"], viewer_id, "Your coupon", coupon)
    hostile = "<img src=x onerror=alert(1)> javascript:alert(1) See https://shop.example/p/scarf"
    second = await _inapp(running, room["id"], viewer_id, "Back in stock <b>now</b>", hostile)
    await page.reload()
    await expect(page.locator("html")).to_have_attribute("data-conn", "live")
    card = page.locator("[data-inbox]")
    await expect(card).to_be_visible()
    await expect(card).to_have_attribute("data-message-id", str(second))
    await expect(card.locator("[data-inbox-count]")).to_have_text("1 of 2")
    await expect(card.locator("[data-inbox-subject]")).to_have_text("Back in stock <b>now</b>")
    text = card.locator("[data-inbox-text]")
    await expect(text).to_have_text(hostile)
    assert await text.locator("img, b").count() == 0
    links = text.locator("a")
    await expect(links).to_have_count(1)
    await expect(links).to_have_attribute("href", "https://shop.example/p/scarf")
    await expect(links).to_have_attribute("rel", "noopener noreferrer")
    await expect(card.locator("[data-inbox-newer]")).to_be_disabled()

    await card.locator("[data-inbox-older]").click()
    await expect(card).to_have_attribute("data-message-id", str(first))
    await expect(card.locator("[data-inbox-count]")).to_have_text("2 of 2")
    # The full stop ends the sentence, not the address.
    await expect(text.locator("a")).to_have_attribute("href", "https://shop.example/c?x=1")
    await expect(text.locator("a")).to_have_text("https://shop.example/c?x=1")
    assert await _opened_ms(running, first) == ("sent", None)  # paging past a message is not reading it

    async with page.expect_response(re.compile(rf"/api/inbox/{first}/opened$")) as reply:
        await card.locator("[data-inbox-dismiss]").click()
    assert (await reply.value).ok
    status, opened = await _opened_ms(running, first)
    assert status == "opened" and opened is not None
    await expect(card).to_have_attribute("data-message-id", str(second))
    await expect(card.locator("[data-inbox-count]")).to_be_hidden()
    await expect(card.locator("[data-inbox-dismiss]")).to_be_focused()

    async with page.expect_response(re.compile(rf"/api/inbox/{second}/opened$")) as reply:
        await card.locator("[data-inbox-dismiss]").click()
    assert (await reply.value).ok
    await expect(card).to_be_hidden()
    assert (await _opened_ms(running, second))[0] == "opened"
    await page.reload()
    await expect(page.locator("html")).to_have_attribute("data-conn", "live")
    await expect(card).to_be_hidden()


async def test_unsubscribe_page_in_the_contacts_language(browser: Browser, running: Running) -> None:
    """/u/<token> shows a button (a link scanner's GET changes nothing); pressing it withdraws the
    consent; both pages speak the contact's language, whatever the browser's."""
    services = running.app.state.services
    contact, _ = await contacts.identify(
        services.db,
        viewer_id="v-unsub",
        email="mei@example.com",
        locale="zh-CN",
        says=[contacts.Say("email", "granted", source="test")],
    )
    url = Links(services.settings.secret_key, running.base).unsubscribe(contact.id, "email")
    page = await (await _context(browser, "en-US")).new_page()
    await page.goto(url)
    await expect(page.locator("h1")).to_have_text("退订")
    question = "确定不再通过电子邮件接收本店的提醒和优惠吗？"
    await expect(page.locator("[data-recipient-text]")).to_have_text(question)
    assert (await _consent(running, contact.id, "email"))[0].status == "granted"

    await page.locator("[data-unsubscribe]").click()
    await expect(page.locator("h1")).to_have_text("已退订")
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    current, log = await _consent(running, contact.id, "email")
    assert (current.status, current.reason) == ("withdrawn", "unsubscribed")
    assert log[-1].source == "unsubscribe link"


async def test_service_worker_is_served_for_the_whole_site(running: Running) -> None:
    """/sw.js is JavaScript with Service-Worker-Allowed: / (its scope must cover /r/{room})."""
    async with httpx.AsyncClient(base_url=running.base) as http:
        r = await http.get("/sw.js")
    assert r.status_code == 200
    assert r.headers["service-worker-allowed"] == "/"
    assert r.headers["content-type"].startswith("text/javascript")
    assert "notificationclick" in r.text


async def test_service_worker_shows_the_push_payload(browser: Browser, running: Running) -> None:
    """A push message (delivered through DevTools) becomes a notification with the payload's title,
    body and tag; its url is kept for the tap, resolved on the site, and a javascript: url is not."""
    room = await create_room(running, "Worker")
    context = await _context(browser)
    await context.grant_permissions(["notifications"], origin=running.base)
    page = await _join(context, running.base, room["id"], "Mo")
    cdp = await context.new_cdp_session(page)
    registered: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_registration(event: dict[str, Any]) -> None:
        for reg in event["registrations"]:
            if reg["scopeURL"] == f"{running.base}/" and not reg["isDeleted"] and not registered.done():
                registered.set_result(reg["registrationId"])

    cdp.on("ServiceWorker.workerRegistrationUpdated", on_registration)
    await cdp.send("ServiceWorker.enable")
    await page.evaluate("navigator.serviceWorker.register('/sw.js')")
    registration_id = await asyncio.wait_for(registered, 10)
    # The registration is reported while its worker installs; a push delivered before the worker is
    # active is dropped (seen failing CI). ``ready`` resolves once it is active.
    await page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    # Polled each frame: the predicate starts a read and answers from the last one that finished.
    shown = """(tag) => {
      navigator.serviceWorker.ready.then((r) => r.getNotifications({ tag })).then((ns) => {
        if (ns.length) window.lwShown = { tag, list: ns.map((x) => [x.title, x.body, x.data]) };
      });
      return window.lwShown && window.lwShown.tag === tag && window.lwShown.list;
    }"""
    here = f"/r/{room['id']}?from=push"
    for n, (url, expected) in enumerate([(here, f"{running.base}{here}"), ("javascript:alert(1)", None)]):
        payload = {"title": f"Back in stock {n}", "body": "The scarf 围巾", "url": url, "tag": f"m{n}"}
        # DevTools can still drop a push while the worker finishes activating (seen failing CI once
        # more after the wait above): deliver again until it shows. The tag makes a repeat replace
        # the notification, not add one.
        push = {"origin": f"{running.base}/", "registrationId": registration_id, "data": json.dumps(payload)}
        found = None
        for _attempt in range(10):
            await cdp.send("ServiceWorker.deliverPushMessage", push)
            try:
                found = await wait_until(page, shown, f"m{n}", timeout_ms=3000)
                break
            except PlaywrightTimeoutError:
                continue
        assert found == [[payload["title"], payload["body"], {"url": expected}]]


async def test_push_without_a_push_service_registers_then_fails(browser: Browser, running: Running) -> None:
    """With permission granted, the tap registers /sw.js at the root; headless Chromium has no push
    service (its contexts are incognito), so subscribing fails and the phone says so."""
    room = await create_room(running, "Push")
    context = await _context(browser)
    await context.grant_permissions(["notifications"], origin=running.base)
    page = await _join(context, running.base, room["id"], "Lu")
    registered = "navigator.serviceWorker.getRegistration('/').then(r => r ? r.scope : null)"
    assert await page.evaluate(registered) is None  # nothing registered on load
    await page.locator("[data-optin-open]").click()
    await page.locator("[data-push-enable]").click()
    status = page.locator("[data-push-status]")
    await expect(status).to_have_attribute("data-state", "failed")
    await expect(status).to_have_text("Could not turn on notifications on this phone. Try again later.")
    assert await page.evaluate(registered) == f"{running.base}/"
    await expect(page.locator("[data-push-enable]")).to_be_enabled()


async def test_push_permission_denied_is_said(browser: Browser, running: Running) -> None:
    """A refused permission prompt: the phone explains that notifications are blocked."""
    room = await create_room(running, "Push denied")
    page = await _join(await _context(browser), running.base, room["id"], "Jo")
    await page.locator("[data-optin-open]").click()
    await page.locator("[data-push-enable]").click()
    status = page.locator("[data-push-status]")
    await expect(status).to_have_attribute("data-state", "denied")
    await expect(page.locator("[data-push-enable]")).to_be_hidden()


# The browser side of a push service: PushManager answers with a fixed subscription, as a real push
# service would after subscribing (headless Chromium has none). Kept across reloads in localStorage.
FAKE_PUSH = """
(() => {
  if (!window.PushManager) return;
  const P256DH = "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM";
  const fake = {
    endpoint: "https://fcm.googleapis.com/fcm/send/abc123",
    options: null,
    toJSON() {
      const keys = { p256dh: P256DH, auth: "tBHItJI5svbpez7KI4CCXg" };
      return { endpoint: this.endpoint, expirationTime: null, keys };
    },
    unsubscribe: async () => true,
  };
  PushManager.prototype.subscribe = async function (options) {
    const key = new Uint8Array(options.applicationServerKey);
    fake.options = { applicationServerKey: key.buffer, userVisibleOnly: options.userVisibleOnly };
    const saved = { key: btoa(String.fromCharCode(...key)), visible: options.userVisibleOnly };
    localStorage.setItem("fake-push", JSON.stringify(saved));
    return fake;
  };
  PushManager.prototype.getSubscription = async function () {
    const saved = localStorage.getItem("fake-push");
    if (!saved) return null;
    const raw = atob(JSON.parse(saved).key);
    fake.options = { applicationServerKey: Uint8Array.from(raw, (c) => c.charCodeAt(0)).buffer };
    return fake;
  };
})();
"""


async def test_push_subscription_is_saved_with_the_wording(browser: Browser, running: Running) -> None:
    """A subscription (from a stand-in push service) goes to the server with the VAPID key and the
    sentence shown; the phone then says it will get reminders, also after a reload."""
    room = await create_room(running, "Push ok")
    context = await _context(browser)
    await context.grant_permissions(["notifications"], origin=running.base)
    await context.add_init_script(FAKE_PUSH)
    page = await _join(context, running.base, room["id"], "Kim")
    await page.locator("[data-optin-open]").click()
    await expect(page.locator("[data-push-wording]")).to_have_text(PUSH_WORDING)
    async with page.expect_response(re.compile(r"/api/rooms/[^/]+/push$")) as reply:
        await page.locator("[data-push-enable]").click()
    assert (await reply.value).ok
    status = page.locator("[data-push-status]")
    await expect(status).to_have_attribute("data-state", "on")
    await expect(status).to_have_text("This phone will get reminders.")
    await expect(page.locator("[data-push-enable]")).to_be_hidden()

    saved = json.loads(await page.evaluate("localStorage.getItem('fake-push')"))
    async with httpx.AsyncClient(base_url=running.base) as http:
        key = (await http.get("/api/push/key")).json()["key"]
    assert saved["visible"] is True
    assert saved["key"].replace("+", "-").replace("/", "_").rstrip("=") == key

    viewer_id = await _viewer_id(running, room["id"])
    contact = await _contact_of(running, viewer_id)
    async with running.app.state.services.db.session() as session:
        subs = (
            await session.exec(select(PushSubscription).where(PushSubscription.contact_id == contact.id))
        ).all()
        link = await session.get(ContactViewer, viewer_id)
    assert [s.endpoint for s in subs] == ["https://fcm.googleapis.com/fcm/send/abc123"]
    assert link is not None
    current, log = await _consent(running, contact.id, "push")
    assert current.status == "granted"
    assert [(e.wording, e.lang, e.room_id) for e in log] == [(PUSH_WORDING, "en", room["id"])]

    await page.reload()
    await expect(page.locator("html")).to_have_attribute("data-conn", "live")
    await page.locator("[data-optin-open]").click()
    await expect(status).to_have_attribute("data-state", "on")
    await expect(page.locator("[data-push-enable]")).to_be_hidden()
