"""The host console's Follow-up tab in headless Chromium against the real server: the ready-made
journeys with pause and resume, a journey built in the editor, a template edited and previewed, a
campaign followed live to the end, the sending rules, and a dead letter retried.

Every wait is on a DOM condition, never a fixed sleep; what the tab saved is read back from the API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Dialog, Locator, Page, expect
from sqlmodel import col, select

import server.followup.snapshot  # noqa: F401  (registers the "followup" reducer)
from server.domains import default_registry
from server.followup.defaults import JOURNEYS
from server.rooms.snapshot import apply_event
from server.storage import now_ms
from server.storage.followup import Alert, Journey, Message, PausedEntry
from server.storage.models import IntentEvent, Viewer
from tests.helpers import Running, create_room, join

REDUCERS = default_registry().reducers  # the reference reducer's parts, as the app has them

pytestmark = pytest.mark.browser


@dataclass
class Console:
    """The console page on its Follow-up tab, with any script error, and the room's API."""

    page: Page
    room: dict[str, str]
    base: str
    errors: list[str] = field(default_factory=list)

    def journey(self, key: str) -> Locator:
        return self.page.locator(f"[data-fu-journeys] > li[data-journey-key='{key}']")

    @property
    def editor(self) -> Locator:
        return self.page.locator("[data-fu-journey-form]")

    @property
    def steps(self) -> Locator:
        return self.page.locator("[data-fu-steps] > li")

    async def api(self, method: str, path: str = "", body: dict[str, Any] | None = None) -> Any:
        """The follow-up API as an integration would call it (host token)."""
        headers = {"authorization": f"Bearer {self.room['host_token']}"}
        async with httpx.AsyncClient(base_url=self.base) as http:
            r = await http.request(
                method, f"/api/rooms/{self.room['id']}/followup{path}", headers=headers, json=body
            )
            r.raise_for_status()
            return r.json()


async def _accept(dialog: Dialog) -> None:
    await dialog.accept()


async def _console(browser: Browser, running: Running, room: dict[str, str] | None = None) -> Console:
    """The console of a room, logged in, on the Follow-up tab with the overview loaded."""
    room = room or await create_room(running)
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    page = await context.new_page()
    console = Console(page, room, running.base)
    page.on("dialog", _accept)
    page.on("pageerror", lambda exc: console.errors.append(str(exc)))
    await page.goto(f"{running.base}/host/{room['id']}/login#key={room['host_key']}")
    await expect(page).to_have_url(f"{running.base}/host/{room['id']}")
    await expect(page.locator("html")).to_have_attribute("data-conn", "live")
    await page.locator("[data-tab=followup]").click()
    await expect(page.locator("[data-panel=followup]")).to_be_visible()
    await expect(page.locator("[data-panel=questions]")).to_be_hidden()
    await expect(page.locator("[data-panel=followup]")).to_have_attribute("data-loaded", "")
    await expect(page.locator("[data-fu-load-error]")).to_be_empty()
    return console


async def _journeys(console: Console) -> dict[str, dict[str, Any]]:
    return {j["key"]: j for j in (await console.api("GET"))["journeys"]}


async def test_ready_made_journeys_pause_and_resume(browser: Browser, running: Running) -> None:
    """The ready-made journeys are listed with trigger, goal and steps; Pause and Resume change the
    journey on the server and its badge here."""
    console = await _console(browser, running)
    page = console.page
    await expect(page.locator("[data-fu-journeys] > li")).to_have_count(len(JOURNEYS))
    unpaid = console.journey("unpaid-reminder")
    await expect(unpaid.locator(".f-j-name")).to_have_text("Clicked buy but did not pay · 点了购买未付款")
    await expect(unpaid.locator(".f-j-flow")).to_have_text(re.compile(r"Clicked buy\s*→\s*goal: Paid"))
    await expect(unpaid.locator(".f-j-step")).to_have_text(
        [re.compile(r"^Wait 30 min$"), re.compile(r"Send “unpaid-reminder” via Best channel.*Sent 0")]
    )
    await expect(unpaid.locator("[data-fu-journey-status]")).to_have_text("Active")

    await unpaid.locator("[data-fu-act=toggle]").click()
    await expect(unpaid.locator("[data-fu-journey-status]")).to_have_text("Paused")
    await expect(unpaid.locator("[data-fu-paused]")).to_have_text("Paused by the host.")
    await expect(unpaid.locator("[data-fu-act=toggle]")).to_have_text("Resume")
    assert (await _journeys(console))["unpaid-reminder"]["status"] == "paused"

    await unpaid.locator("[data-fu-act=toggle]").click()
    await expect(unpaid.locator("[data-fu-journey-status]")).to_have_text("Active")
    await expect(unpaid.locator("[data-fu-paused]")).to_have_count(0)
    journey = (await _journeys(console))["unpaid-reminder"]
    assert journey["status"] == "active" and journey["paused_reason"] is None
    assert not console.errors


async def test_a_journey_built_in_the_editor(browser: Browser, running: Running) -> None:
    """New journey: checked here first (name), steps added, reordered and removed, saved; it is
    listed and the server holds exactly what was built."""
    console = await _console(browser, running)
    page = console.page
    await page.locator("[data-fu-journey-new]").click()
    editor = console.editor
    await expect(editor).to_be_visible()
    await expect(console.steps).to_have_count(2)  # a wait and a send to start from

    await editor.locator("[name=key]").fill("buy-nudge")
    await editor.locator("[data-fu-journey-save]").click()
    await expect(page.locator("[data-fu-journey-error]")).to_have_text("Give it a name.")
    await expect(editor.locator("[name=name]")).to_have_attribute("aria-invalid", "true")

    await editor.locator("[name=name]").fill("Nudge after a buy click")
    await editor.locator("[name=entry]").select_option("product.buy")
    await editor.locator("[name=goal]").select_option("order.paid")
    await editor.locator("[name=key_by]").select_option("product_id")
    await console.steps.nth(0).locator("[data-step-act=remove]").click()  # the default wait
    await expect(console.steps).to_have_count(1)
    await expect(console.steps.first.locator("[data-step-act=remove]")).to_be_disabled()
    await editor.locator("[data-fu-add=wait]").click()
    await expect(console.steps).to_have_count(2)
    await console.steps.nth(1).locator("[data-step-act=up]").click()
    await expect(console.steps.nth(0)).to_have_attribute("data-kind", "wait")
    await console.steps.nth(0).locator("[name=amount]").fill("5")
    await console.steps.nth(0).locator("[name=unit]").select_option("minutes")
    send = console.steps.nth(1)
    await expect(send).to_have_attribute("data-kind", "send")
    await send.locator("[name=channel]").select_option("email")
    await send.locator("[name=template]").select_option("unpaid-reminder")
    await editor.locator("[data-fu-journey-save]").click()

    await expect(page.locator(".toast")).to_have_text("Journey “Nudge after a buy click” saved")
    await expect(page.locator("[data-fu-journey-editor]")).to_be_hidden()
    row = console.journey("buy-nudge")
    await expect(row.locator(".f-j-name")).to_have_text("Nudge after a buy click")
    await expect(row.locator(".f-j-flow")).to_have_text(re.compile(r"Clicked buy\s*→\s*goal: Paid"))
    await expect(row.locator(".f-j-what")).to_have_text(["Wait 5 min", "Send “unpaid-reminder” via Email"])
    await expect(row.locator(".f-j-tags")).to_have_text("channel not set up")  # no SMTP in the tests
    await expect(page.locator("[data-fu-journeys] > li")).to_have_count(len(JOURNEYS) + 1)
    saved = (await _journeys(console))["buy-nudge"]
    assert saved["entry"] == "product.buy" and saved["goal"] == "order.paid"
    assert saved["key_by"] == "product_id" and saved["status"] == "active"
    assert saved["steps"] == [
        {"wait": {"minutes": 5}},
        {"send": {"channel": "email", "template": "unpaid-reminder", "transactional": False}},
    ]

    await row.locator("[data-fu-act=edit]").click()  # the editor opens on what was saved
    await expect(editor.locator("[name=key]")).to_have_value("buy-nudge")
    await expect(editor.locator("[name=key]")).not_to_be_editable()
    await expect(console.steps.nth(1).locator("[name=template]")).to_have_value("unpaid-reminder")
    assert not console.errors


async def test_template_edit_preview_and_save(browser: Browser, running: Running) -> None:
    """A template previews with the sample data; a broken one shows the template error instead;
    Save stores the new text."""
    console = await _console(browser, running)
    page = console.page
    row = page.locator("[data-fu-templates] > li[data-template-key='unpaid-reminder']")
    await row.locator("button", has_text="English").click()
    form = page.locator("[data-fu-template-form]")
    await expect(form.locator("[name=key]")).to_have_value("unpaid-reminder")
    await expect(form.locator("[name=locale]")).to_have_value("en")
    body = "Still thinking about {{ product.name }} ({{ product.price }})?\nIt is here: {{ product.url }}"
    await form.locator("[name=subject]").fill("{{ product.name }} is waiting")
    await form.locator("[name=body]").fill(body)
    await page.locator("[data-fu-template-preview]").click()
    preview = page.locator("[data-fu-preview]")
    await expect(preview).to_be_visible()
    await expect(page.locator("[data-fu-preview-subject]")).to_have_text("Jasmine green tea 250g is waiting")
    await expect(page.locator("[data-fu-preview-text]")).to_contain_text(
        "Still thinking about Jasmine green tea 250g (¥68.00)?"
    )

    await form.locator("[name=body]").fill("Hello {{ product.name }")
    await page.locator("[data-fu-template-preview]").click()
    error = page.locator("[data-fu-preview-error]")
    await expect(error).to_contain_text("The template has an error.")
    await expect(error).to_contain_text("template error")
    await expect(preview).to_be_hidden()
    await form.locator("[name=body]").fill("Hello {{ product.nmae }}")  # a typo in a variable
    await page.locator("[data-fu-template-preview]").click()
    await expect(error).to_contain_text("nmae")

    await form.locator("[name=body]").fill(body)
    await page.locator("[data-fu-template-save]").click()
    await expect(page.locator(".toast")).to_have_text("Template “unpaid-reminder” saved")
    templates = (await console.api("GET"))["templates"]
    saved = next(t for t in templates if t["key"] == "unpaid-reminder" and t["locale"] == "en")
    assert saved["body"] == body and saved["subject"] == "{{ product.name }} is waiting"
    assert not console.errors


async def test_campaign_to_attended_runs_live_and_a_scheduled_one_is_cancelled(
    browser: Browser, running: Running
) -> None:
    """A campaign to everyone who attended shows its audience, then its progress and counts live
    until done; one set for later is scheduled and can be cancelled."""
    room = await create_room(running)
    for name in ("Ann", "Bo"):
        await join(running.base, room["id"], name)
    console = await _console(browser, running, room)
    await console.api("PUT", "/settings", {"quiet_start": "00:00", "quiet_end": "00:00"})  # any hour
    page = console.page
    form = page.locator("[data-fu-campaign-form]")
    await expect(form.locator("[name=segment] option[value=attended]")).to_have_text("Watched the live (2)")
    await form.locator("[name=name]").fill("Thanks for watching")
    await form.locator("[name=segment]").select_option("attended")
    await form.locator("[name=template]").select_option("post-stream")
    await form.locator("[name=channel]").select_option("auto")
    await page.locator("[data-fu-campaign-submit]").click()

    campaign = page.locator("[data-fu-campaigns] > li").first
    await expect(campaign.locator(".f-c-name")).to_have_text("Thanks for watching")
    await expect(campaign.locator("[data-fu-campaign-status]")).to_have_text("Done")
    await expect(campaign.locator("[data-fu-progress]")).to_have_text("2 of 2 done")
    await expect(campaign.locator(".f-c-counts")).to_have_text(re.compile(r"^Sent\s*2$"))
    await expect(campaign.locator(".f-c-meta")).to_contain_text(
        "Watched the live · Best channel · post-stream"
    )
    await expect(campaign.locator("[data-fu-act=cancel]")).to_have_count(0)

    await form.locator("[name=name]").fill("Tomorrow's teaser")
    await form.locator("input[name=when][value=later]").check()
    await expect(form.locator("[name=send_at]")).to_be_enabled()
    await page.locator("[data-fu-campaign-submit]").click()
    later = page.locator("[data-fu-campaigns] > li").first
    await expect(later.locator(".f-c-name")).to_have_text("Tomorrow's teaser")
    await expect(later.locator("[data-fu-campaign-status]")).to_have_text("Scheduled")
    await later.locator("[data-fu-act=cancel]").click()  # the confirm dialog is accepted
    await expect(later.locator("[data-fu-campaign-status]")).to_have_text("Cancelled")
    campaigns = (await console.api("GET"))["campaigns"]
    assert [(c["name"], c["status"]) for c in campaigns] == [
        ("Tomorrow's teaser", "cancelled"),
        ("Thanks for watching", "done"),
    ]

    log = page.locator("[data-fu-log] > tr")
    await page.locator("[data-fu-refresh]").click()
    await expect(log).to_have_count(2)
    await expect(log.first).to_contain_text("post-stream")
    await expect(log.first).to_contain_text("Sent")
    await expect(log.first).to_contain_text("campaign “Thanks for watching”")
    assert not console.errors


async def test_sending_rules_saved_and_a_bad_webhook_refused(browser: Browser, running: Running) -> None:
    """Quiet hours, caps and the pause ratio are saved and shown again after a reload; a webhook
    address that is not http(s) is refused with a hint, and nothing changes. The webhook's signing
    secret is masked until asked for."""
    console = await _console(browser, running)
    page = console.page
    form = page.locator("[data-fu-settings-form]")
    secret = (await console.api("GET"))["webhook_secret"]
    await expect(page.locator("[data-fu-secret]")).to_have_text(f"{secret[:6]}{'•' * 16}")
    await page.locator("[data-fu-secret-toggle]").click()
    await expect(page.locator("[data-fu-secret]")).to_have_text(secret)
    await expect(form.locator("[name=quiet_start]")).to_have_value("21:00")
    await form.locator("[name=quiet_start]").fill("22:30")
    await form.locator("[name=quiet_end]").fill("08:15")
    await form.locator("[name=cap_per_day]").fill("3")
    await form.locator("[name=failure_pause]").fill("35")
    await form.locator("[name=webhook_url]").fill("https://crm.example/hooks/live")
    await expect(form.locator("[name=utm]")).to_be_checked()  # on by default
    await form.locator("[name=utm_source]").fill("live room!")
    await page.locator("[data-fu-settings-save]").click()
    await expect(page.locator("[data-fu-settings-error]")).to_have_text(
        "Use 1 to 40 letters, digits, '-', '_' or '.'."
    )
    await form.locator("[name=utm_source]").fill("")
    await page.locator("[data-fu-settings-save]").click()
    await expect(page.locator(".toast")).to_have_text("Rules saved")
    settings = (await console.api("GET"))["settings"]
    assert settings == {
        "quiet_start": "22:30",
        "quiet_end": "08:15",
        "cap_per_day": 3,
        "cap_per_week": 5,
        "failure_pause_ratio": 0.35,
        "webhook_url": "https://crm.example/hooks/live",
        "utm": True,
        "utm_source": None,
    }

    await page.reload()
    await expect(page.locator("[data-panel=followup]")).to_have_attribute("data-loaded", "")
    await expect(form.locator("[name=quiet_start]")).to_have_value("22:30")
    await expect(form.locator("[name=quiet_end]")).to_have_value("08:15")
    await expect(form.locator("[name=failure_pause]")).to_have_value("35")
    await form.locator("[name=utm]").uncheck()
    await form.locator("[name=utm_source]").fill("spring.show")
    await page.locator("[data-fu-settings-save]").click()
    await expect(page.locator(".toast").last).to_have_text("Rules saved")
    settings = {**settings, "utm": False, "utm_source": "spring.show"}
    assert (await console.api("GET"))["settings"] == settings
    await page.reload()
    await expect(page.locator("[data-panel=followup]")).to_have_attribute("data-loaded", "")
    await expect(form.locator("[name=utm]")).not_to_be_checked()
    await expect(form.locator("[name=utm_source]")).to_have_value("spring.show")

    await form.locator("[name=webhook_url]").fill("ftp://crm.example/hooks")
    await page.locator("[data-fu-settings-save]").click()
    await expect(page.locator("[data-fu-settings-error]")).to_have_text(
        "Links must start with http:// or https://."
    )
    await expect(form.locator("[name=webhook_url]")).to_have_attribute("aria-invalid", "true")
    await form.locator("[name=cap_per_week]").fill("101")
    await form.locator("[name=webhook_url]").fill("https://crm.example/hooks/live")
    await page.locator("[data-fu-settings-save]").click()
    await expect(page.locator("[data-fu-settings-error]")).to_have_text("Enter a whole number from 0 to 100.")
    assert (await console.api("GET"))["settings"] == settings
    assert not console.errors


async def test_dead_letter_alert_and_self_paused_journey(browser: Browser, running: Running) -> None:
    """A journey the breaker paused says why, its alert stands out, the dead letter is counted and
    listed with its reason, and Retry sends it again."""
    room = await create_room(running)
    headers = {"authorization": f"Bearer {room['host_token']}"}
    async with httpx.AsyncClient(base_url=running.base) as http:  # the ready-made journeys exist
        (await http.get(f"/api/rooms/{room['id']}/followup", headers=headers)).raise_for_status()
    reason = "paused: 5 of the last 20 sends failed (over 20%)"
    t = now_ms()
    async with running.app.state.services.db.session() as session:
        journey = (
            await session.exec(
                select(Journey).where(Journey.room_id == room["id"], col(Journey.key) == "coupon-expiring")
            )
        ).one()
        journey.status, journey.paused_reason = "paused", reason
        session.add(journey)
        session.add(
            Alert(room_id=room["id"], kind="journey.paused", text=f"Claimed a deal: {reason}", created_ms=t)
        )
        message = Message(
            idem_key="test:dead", room_id=room["id"], journey_id=journey.id, step=1, channel="email",
            template="coupon-expiring", status="dead", reason="gave up after 6 attempts: 550 mailbox full",
            attempts=6, next_ms=t, created_ms=t,
        )  # fmt: skip
        session.add(message)
        # Sent twice over: its first worker was killed while the relay had it (an uncertain re-send).
        session.add(
            Message(
                idem_key="test:uncertain", room_id=room["id"], channel="email", template="coupon-expiring",
                status="sent", uncertain_resends=2, attempts=3, next_ms=t, created_ms=t, sent_ms=t,
            )
        )  # fmt: skip
        await session.commit()
        message_id = message.id

    console = await _console(browser, running, room)
    page = console.page
    paused = console.journey("coupon-expiring")
    await expect(paused.locator("[data-fu-journey-status]")).to_have_text("Paused")
    await expect(paused.locator("[data-fu-paused]")).to_have_text(f"Paused automatically: {reason}")
    alert = page.locator("[data-fu-alerts] > li.is-breaker")
    await expect(alert).to_contain_text("A journey paused itself:")
    await expect(alert).to_contain_text(reason)
    await expect(page.locator("[data-fu-dead]")).to_have_text("1")
    await expect(page.locator("[data-fu-badge]")).to_have_text("1 failed")
    uncertain = page.locator("[data-fu-uncertain-box]")
    await expect(uncertain).to_be_visible()
    await expect(uncertain.locator("[data-fu-uncertain]")).to_have_text("2")
    problem = page.locator(f"[data-fu-problems] > li[data-message-id='{message_id}']")
    await expect(problem).to_contain_text("550 mailbox full")
    await expect(problem).to_contain_text("6 attempt(s)")
    await expect(problem).to_contain_text("Claimed a deal, not redeemed · 领了优惠未使用, step 2")

    await problem.locator("[data-fu-act=retry]").click()
    await expect(page.locator(".toast")).to_have_text("The message will be sent again")
    await expect(problem).to_have_count(0)
    await expect(page.locator("[data-fu-problems-empty]")).to_be_visible()
    await expect(page.locator("[data-fu-dead]")).to_have_text("0")
    await expect(page.locator("[data-fu-badge]")).to_be_hidden()
    messages = (await console.api("GET", "/messages"))["messages"]
    assert [m["status"] for m in messages if m["id"] == message_id] != ["dead"]
    assert not console.errors


async def _paused_entry(running: Running, room_id: str, n: int, status: str, name: str | None) -> None:
    """A buy click that reached the paused "unpaid-reminder" journey, as the router records it."""
    t = now_ms()
    async with running.app.state.services.db.session() as session:
        journey = (
            await session.exec(
                select(Journey).where(Journey.room_id == room_id, col(Journey.key) == "unpaid-reminder")
            )
        ).one()
        session.add(Viewer(id=f"v{n}", display_name=name, created_ms=t))
        event = IntentEvent(
            event_id=f"e{n}", room_id=room_id, viewer_id=f"v{n}", kind="product.buy", product_id=n,
            created_ms=t, routed=True,
        )  # fmt: skip
        session.add(event)
        await session.flush()
        assert event.id is not None and journey.id is not None
        skipped = status == "skipped"
        session.add(
            PausedEntry(
                journey_id=journey.id, room_id=room_id, event_id=event.id, viewer_id=f"v{n}", status=status,
                reason="skipped while paused" if skipped else None, created_ms=t,
                ended_ms=t if skipped else None,
            )
        )  # fmt: skip
        await session.commit()


async def test_while_paused_choice_held_and_skipped_entries(browser: Browser, running: Running) -> None:
    """The editor sets what a paused journey does with new entries; a paused journey says it, counts
    the entries waiting for the resume and lists the skipped ones; after Resume the held entry went in."""
    console = await _console(browser, running)
    page = console.page
    unpaid = console.journey("unpaid-reminder")
    await unpaid.locator("[data-fu-act=edit]").click()
    editor = console.editor
    await expect(editor.locator("[name=while_paused]")).to_have_value("hold")
    await editor.locator("[name=while_paused]").select_option("skip")
    await editor.locator("[data-fu-journey-save]").click()
    await expect(page.locator("[data-fu-journey-editor]")).to_be_hidden()
    assert (await _journeys(console))["unpaid-reminder"]["while_paused"] == "skip"

    await unpaid.locator("[data-fu-act=toggle]").click()
    await expect(unpaid.locator("[data-fu-paused]")).to_have_text("Paused by the host.")
    await expect(unpaid.locator("[data-fu-while-paused]")).to_have_text(
        "New entries are skipped while it is paused."
    )
    room_id = console.room["id"]
    await _paused_entry(running, room_id, 1, "skipped", "Mei")
    await _paused_entry(running, room_id, 2, "skipped", None)
    await _paused_entry(running, room_id, 3, "held", "Bo")  # came while it still held entries
    await page.locator("[data-fu-refresh]").click()
    skipped = unpaid.locator("[data-fu-skipped]")
    await expect(skipped.locator("summary")).to_have_text("Skipped while paused: 2")
    await skipped.locator("summary").click()
    await expect(skipped.locator("[data-fu-skipped-item]")).to_have_text(
        [
            re.compile(r" · Clicked buy · a viewer without a name$"),
            re.compile(r" · Clicked buy · Mei$"),
        ]
    )
    await expect(unpaid.locator("[data-fu-held]")).to_have_text("1 waiting for the resume")

    await page.locator(".c-top [data-lang-switch]").click()
    await expect(unpaid.locator("[data-fu-while-paused]")).to_have_text("暂停期间新进入的人会被跳过。")
    await expect(skipped.locator("summary")).to_have_text("暂停期间跳过：2")
    await page.locator(".c-top [data-lang-switch]").click()

    await unpaid.locator("[data-fu-act=toggle]").click()
    await expect(unpaid.locator("[data-fu-journey-status]")).to_have_text("Active")
    await expect(unpaid.locator("[data-fu-released]")).to_have_text(
        "After pausing: 1 went in on resume, 0 had reached the goal first"
    )
    await expect(unpaid.locator("[data-fu-held]")).to_have_count(0)
    assert not console.errors


async def test_a_channel_that_is_off_is_named_with_its_setting(browser: Browser, running: Running) -> None:
    """A journey step on SMS (not configured in the tests) puts a setup warning at the top of the tab,
    with the setting to set and who uses it, in English and Chinese; the editor and the campaign form
    say it next to the channel; a message skipped for it has its reason translated."""
    console = await _console(browser, running)
    page = console.page
    spec = {
        "key": "text-nudge",
        "name": "Text nudge",
        "entry": "product.buy",
        "steps": [{"send": {"channel": "sms", "template": "unpaid-reminder"}}],
    }
    await console.api("POST", "/journeys", spec)
    async with running.app.state.services.db.session() as session:
        t = now_ms()
        session.add(
            Message(
                idem_key="test:off", room_id=console.room["id"], channel="sms", template="unpaid-reminder",
                status="skipped", reason="push: no subscription; sms is not configured on this server",
                next_ms=t, created_ms=t,
            )
        )  # fmt: skip
        await session.commit()
    await page.locator("[data-fu-refresh]").click()
    setup = page.locator("[data-fu-setup]")
    await expect(setup).to_be_visible()
    warning = setup.locator("[data-fu-setup-channel=sms]")
    await expect(warning.locator("span").first).to_have_text(
        "SMS is not configured on this server: set LIVEWALL_SMS_URL (and LIVEWALL_SMS_TOKEN)."
    )
    await expect(warning.locator(".muted")).to_have_text("Used by: Text nudge")
    await expect(setup.locator("li")).to_have_count(1)
    reason = page.locator("[data-fu-log] > tr .f-l-reason").first
    await expect(reason).to_have_text("push: no subscription; SMS is not configured on this server")

    await console.journey("text-nudge").locator("[data-fu-act=edit]").click()
    step = console.steps.first
    await expect(step.locator("[data-fu-channel-off]")).to_have_text(
        "SMS is not configured on this server: set LIVEWALL_SMS_URL (and LIVEWALL_SMS_TOKEN)."
    )
    await step.locator("[name=channel]").select_option("inapp")
    await expect(step.locator("[data-fu-channel-off]")).to_be_hidden()
    await page.locator("[data-fu-journey-cancel]").click()

    form = page.locator("[data-fu-campaign-form]")
    hint = page.locator("[data-fu-campaign-channel-off]")
    await form.locator("[name=channel]").select_option("email")
    await expect(hint).to_have_text(
        "Email is not configured on this server: set LIVEWALL_SMTP_URL (and LIVEWALL_MAIL_FROM)."
    )
    await form.locator("[name=channel]").select_option("auto")
    await expect(hint).to_be_hidden()

    await page.locator(".c-top [data-lang-switch]").click()
    await expect(warning).to_contain_text(
        "服务器未配置短信：请设置 LIVEWALL_SMS_URL（以及 LIVEWALL_SMS_TOKEN）。"
    )
    await expect(warning).to_contain_text("使用它的：Text nudge")
    await expect(reason).to_have_text("push: no subscription; 服务器未配置短信")
    assert not console.errors


async def test_state_js_followup_reducer_matches_the_server(browser: Browser, running: Running) -> None:
    """The host's "followup" event replaces campaigns, dead letters and alerts whole: the same in
    state.js as in the server's reducer."""
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{running.base}/")
    alert = {"id": 4, "kind": "journey.paused", "text": "x", "created_ms": 5}
    sending = {"id": 1, "status": "sending", "counts": {"scheduled": 3}}
    snapshot: dict[str, Any] = {
        "room": {"id": "r"},
        "followup": {"campaigns": [sending], "dead": 0, "alerts": []},
    }
    progress = {**sending, "counts": {"sent": 2, "scheduled": 1}}
    done = {**sending, "status": "done", "counts": {"sent": 3}}
    events = [
        {"type": "followup", "data": {"campaigns": [progress], "dead": 1, "alerts": [alert]}},
        {"type": "followup", "data": {"campaigns": [done], "dead": 0, "alerts": [alert]}},
    ]
    expected = snapshot
    for event in events:
        expected = apply_event(expected, event["type"], event["data"], REDUCERS)
    got = await page.evaluate(
        """async ([snap, events]) => {
          const { applyEvent } = await import("/static/js/state.js");
          return events.reduce((s, e) => applyEvent(s, e.type, e.data), snap);
        }""",
        [snapshot, events],
    )
    assert got == expected
    assert expected["followup"]["campaigns"][0]["status"] == "done" and expected["followup"]["dead"] == 0
