"""One-time links by mail (a real SMTP server): signing in with a link, resetting a password, and
refusing a link used twice, expired, or of the other purpose; the same answer for unknown emails."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from sqlalchemy import update
from sqlmodel import col, select

from server.accounts import actions
from server.auth import verify_secret
from server.storage.accounts import Account, OneTimeLink, StudioSession
from tests.accounts.conftest import Mailbox, address, mails_sent, make_person, services_of, sign_in
from tests.conftest import make_settings
from tests.helpers import Running, serve

NEW_PASSWORD = "a new and long password"


def link_in(mailbox: tuple[Mailbox, int], to: str, kind: str) -> str:
    [message] = mailbox[0].to(to)
    body = message.get_content()
    found = re.search(rf"http://\S+/studio/{kind}/(\S+)", body)
    assert found, body
    return found.group(0)


async def test_a_sign_in_link_signs_in_once(studio: Running, mailbox: tuple[Mailbox, int]) -> None:
    """The mail holds /studio/link/TOKEN; GET shows a button and uses nothing (a mail scanner's
    prefetch), POST signs in (how=link); the same link a second time is refused."""
    person = await make_person(services_of(studio), password=None)
    async with httpx.AsyncClient(base_url=studio.base) as browser:
        page = await browser.get("/studio/signin")
        assert "data-signin-link" in page.text
        r = await browser.post("/studio/signin/link", data={"email": person.email}, headers=address())
        assert r.status_code == 200 and "data-link-sent" in r.text
        await mails_sent(studio)
        url = link_in(mailbox, person.email, "link")
        path = url.split(studio.base)[1]
        for _ in range(2):  # prefetches do not use it
            shown = await browser.get(path)
            assert shown.status_code == 200 and "data-link-confirm" in shown.text
        used = await browser.post(path)
        assert used.status_code == 303 and used.headers["location"] == "/studio"
        assert (await browser.get("/studio/sessions")).status_code == 200
        again = await browser.post(path)
        assert again.status_code == 401 and "data-link-invalid" in again.text
        assert (await browser.get(path)).status_code == 401
    async with services_of(studio).db.session() as session:
        rows = (
            await session.exec(
                select(StudioSession).where(col(StudioSession.account_id) == person.account.id)
            )
        ).all()
    assert [r.how for r in rows] == ["link"]


async def test_unknown_emails_get_the_same_answer_and_no_mail(
    studio: Running, http: httpx.AsyncClient, mailbox: tuple[Mailbox, int]
) -> None:
    """Asking for a link (sign-in or reset) for an address without an account answers the same page,
    and nothing is sent."""
    before = len(mailbox[0].messages)
    r = await http.post("/studio/signin/link", data={"email": "ghost@example.com"}, headers=address())
    assert r.status_code == 200 and "data-link-sent" in r.text
    r = await http.post("/studio/reset", data={"email": "ghost@example.com"}, headers=address())
    assert r.status_code == 200 and "data-reset-sent" in r.text
    r = await http.post("/studio/reset", data={"email": "not an email"}, headers=address())
    assert r.status_code == 200 and "data-reset-sent" in r.text
    await mails_sent(studio)
    assert len(mailbox[0].messages) == before


async def test_a_password_reset_sets_the_password_and_signs_out_elsewhere(
    studio: Running, mailbox: tuple[Mailbox, int]
) -> None:
    """Reset by mail: the link's form sets a new password (checked: same twice, long enough), every
    other session is signed out, this browser is signed in, and the old password no longer works."""
    services = services_of(studio)
    person = await make_person(services)
    async with (
        httpx.AsyncClient(base_url=studio.base) as elsewhere,
        httpx.AsyncClient(base_url=studio.base) as browser,
    ):
        await sign_in(elsewhere, person)
        r = await browser.post("/studio/reset", data={"email": person.email}, headers=address())
        assert "data-reset-sent" in r.text
        await mails_sent(studio)
        [message] = mailbox[0].to(person.email)
        assert message["Subject"] == "Reset your password"
        path = link_in(mailbox, person.email, "reset").split(studio.base)[1]
        form = await browser.get(path)
        assert form.status_code == 200 and person.email in form.text
        mismatch = await browser.post(path, data={"password": NEW_PASSWORD, "password2": NEW_PASSWORD + "x"})
        assert mismatch.status_code == 422 and 'data-reset-error="mismatch"' in mismatch.text
        weak = await browser.post(path, data={"password": "short", "password2": "short"})
        assert weak.status_code == 422 and 'data-reset-error="weak"' in weak.text
        done = await browser.post(path, data={"password": NEW_PASSWORD, "password2": NEW_PASSWORD})
        assert done.status_code == 303 and done.headers["location"] == "/studio"
        assert (await browser.get("/studio/sessions")).status_code == 200
        assert (await elsewhere.get("/studio/sessions")).status_code == 303
        again = await browser.post(path, data={"password": NEW_PASSWORD, "password2": NEW_PASSWORD})
        assert again.status_code == 401
    async with services.db.session() as session:
        account = await session.get(Account, person.account.id)
    assert account is not None and account.password_hash is not None
    assert verify_secret(NEW_PASSWORD, account.password_hash)
    async with httpx.AsyncClient(base_url=studio.base) as fresh:
        assert (await sign_in(fresh, person)).status_code == 401


async def test_expired_and_wrong_purpose_links_are_refused(studio: Running) -> None:
    """A link past its 30 minutes, and a sign-in link used as a reset link, are refused."""
    services = services_of(studio)
    person = await make_person(services)
    expired = await actions.issue_link(services.db, person.account.id, "signin")
    async with services.db.session() as session:
        await session.exec(
            update(OneTimeLink).values(expires_ms=0).where(col(OneTimeLink.account_id) == person.account.id)
        )
        await session.commit()
    signin = await actions.issue_link(services.db, person.account.id, "signin")
    async with httpx.AsyncClient(base_url=studio.base) as browser:
        assert (await browser.post(f"/studio/link/{expired}")).status_code == 401
        assert (await browser.get(f"/studio/reset/{signin}")).status_code == 401
        assert (await browser.post(f"/studio/link/{'x' * 43}")).status_code == 401
        assert (await browser.post(f"/studio/link/{signin}")).status_code == 303


async def test_without_mail_the_link_options_are_not_offered(tmp_path: Path) -> None:
    """No SMTP configured: the sign-in page offers neither the email link nor "forgot password", and
    the reset page says to ask an owner."""
    async with serve(make_settings(tmp_path)) as running, httpx.AsyncClient(base_url=running.base) as http:
        page = await http.get("/studio/signin")
        assert page.status_code == 200
        assert "data-signin-link" not in page.text and "data-forgot" not in page.text
        assert "data-reset-no-mail" in (await http.get("/studio/reset")).text


async def test_mail_is_in_the_accounts_language(studio: Running, mailbox: tuple[Mailbox, int]) -> None:
    """An account whose locale is zh-CN gets its link in Chinese, whatever the page's language."""
    services = services_of(studio)
    person = await make_person(services)
    async with services.db.session() as session:
        await session.exec(update(Account).values(locale="zh-CN").where(col(Account.id) == person.account.id))
        await session.commit()
    async with httpx.AsyncClient(base_url=studio.base) as browser:
        await browser.post("/studio/signin/link", data={"email": person.email}, headers=address())
    await mails_sent(studio)
    [message] = mailbox[0].to(person.email)
    assert message["Subject"] == "你的登录链接"
    assert "/studio/link/" in message.get_content()


async def test_one_address_gets_at_most_three_mails_at_a_time(
    studio: Running, mailbox: tuple[Mailbox, int]
) -> None:
    """Asking again and again (the form as a mail cannon): three mails go out, the rest are answered
    the same but not sent."""
    person = await make_person(services_of(studio))
    async with httpx.AsyncClient(base_url=studio.base) as browser:
        for _ in range(6):
            r = await browser.post("/studio/reset", data={"email": person.email}, headers=address())
            assert r.status_code == 200 and "data-reset-sent" in r.text
    await mails_sent(studio)
    assert len(mailbox[0].to(person.email)) == actions.MAILS_PER_ADDRESS.free
