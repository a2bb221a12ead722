"""Signing in to the studio with a password: the session and its cookie, the same refusal for an
unknown email and a wrong password, the throttle, and ``next`` kept on this site."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import col, select

from server.accounts import actions
from server.accounts.audit import AuditLog
from server.accounts.http import safe_next
from server.accounts.identity import STUDIO_COOKIE
from server.storage.accounts import AuditEntry, StudioSession
from tests.accounts.conftest import PASSWORD, address, make_person, services_of, sign_in
from tests.helpers import Running


async def test_signing_in_starts_a_session_with_a_safe_cookie(
    studio: Running, http: httpx.AsyncClient
) -> None:
    """A right password: 303 to /studio, an HttpOnly SameSite=Lax cookie, a stored session with the
    browser and address, and an "access" audit entry."""
    services = services_of(studio)
    person = await make_person(services, org="signin-org")
    r = await http.post(
        "/studio/signin",
        data={"email": person.email.upper(), "password": PASSWORD},
        headers={**address(), "user-agent": "X" * 400},
    )
    assert r.status_code == 303 and r.headers["location"] == "/studio"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{STUDIO_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    async with services.db.session() as session:
        [row] = (
            await session.exec(
                select(StudioSession).where(col(StudioSession.account_id) == person.account.id)
            )
        ).all()
    assert row.how == "password" and row.user_agent == "X" * 300 and row.address and row.revoked_ms is None
    await services.engines.get(AuditLog).flushed()
    async with services.db.session() as session:
        entries = (
            await session.exec(select(AuditEntry).where(col(AuditEntry.account_id) == person.account.id))
        ).all()
    assert [(e.action, e.category, e.org_id) for e in entries] == [("signin", "access", "signin-org")]


async def test_unknown_email_and_wrong_password_get_the_same_answer(
    studio: Running, http: httpx.AsyncClient
) -> None:
    """Both are 401 with the same page text; no cookie is set."""
    person = await make_person(services_of(studio))
    wrong = await http.post(
        "/studio/signin", data={"email": person.email, "password": "nope nope nope"}, headers=address()
    )
    unknown = await http.post(
        "/studio/signin", data={"email": "nobody@example.com", "password": PASSWORD}, headers=address()
    )
    assert wrong.status_code == unknown.status_code == 401
    assert "data-signin-failed" in wrong.text and "data-signin-failed" in unknown.text
    assert "set-cookie" not in wrong.headers and "set-cookie" not in unknown.headers


async def test_an_account_without_a_password_cannot_sign_in_with_an_empty_one(
    studio: Running, http: httpx.AsyncClient
) -> None:
    """An account made without a password (it signs in by link) is refused with any password."""
    person = await make_person(services_of(studio), password=None)
    for password in ("", "anything at all"):
        r = await http.post(
            "/studio/signin", data={"email": person.email, "password": password}, headers=address()
        )
        assert r.status_code == 401


async def test_an_address_is_locked_after_its_free_failures(studio: Running, http: httpx.AsyncClient) -> None:
    """The 5th wrong password from one address locks it: the 6th try, even a right one, is 429
    with Retry-After, unchecked."""
    person = await make_person(services_of(studio))
    where = address()
    for _ in range(actions.SIGNIN_PER_ADDRESS.free):
        r = await http.post(
            "/studio/signin", data={"email": person.email, "password": "wrong wrong wrong"}, headers=where
        )
        assert r.status_code == 401
    r = await http.post("/studio/signin", data={"email": person.email, "password": PASSWORD}, headers=where)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert "data-signin-throttled" in r.text


async def test_an_account_tried_from_many_addresses_is_locked(
    studio: Running, http: httpx.AsyncClient
) -> None:
    """Wrong passwords for one account from many addresses lock the account (not only each address)."""
    person = await make_person(services_of(studio))
    for _ in range(actions.SIGNIN_PER_ACCOUNT.free):
        r = await http.post(
            "/studio/signin", data={"email": person.email, "password": "wrong wrong wrong"}, headers=address()
        )
        assert r.status_code == 401
    r = await sign_in(http, person)
    assert r.status_code == 429


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("/studio/team", "/studio/team"),
        ("/studio/rooms/abc?tab=1", "/studio/rooms/abc?tab=1"),
        ("//evil.example/x", "/studio"),
        ("/\\evil.example", "/studio"),
        ("https://evil.example/", "/studio"),
        ("javascript:alert(1)", "/studio"),
        ("/studio\n/x", "/studio"),
        (None, "/studio"),
    ],
)
def test_next_stays_on_this_site(given: str | None, kept: str) -> None:
    """Only a local path is followed after signing in (no open redirect)."""
    assert safe_next(given) == kept


async def test_signing_in_follows_a_local_next_only(studio: Running, http: httpx.AsyncClient) -> None:
    """``next`` from the form is followed when local, replaced by /studio otherwise."""
    person = await make_person(services_of(studio))
    r = await sign_in(http, person, next="/studio/team")
    assert r.headers["location"] == "/studio/team"
    r = await sign_in(http, person, next="//evil.example/")
    assert r.headers["location"] == "/studio"


async def test_a_studio_page_without_a_session_sends_to_sign_in(http: httpx.AsyncClient) -> None:
    """/studio/sessions signed out: 303 to the sign-in page, which comes back here after; the
    sign-in page carries it in its form."""
    r = await http.get("/studio/sessions")
    assert r.status_code == 303 and r.headers["location"] == "/studio/signin?next=/studio/sessions"
    page = await http.get(r.headers["location"])
    assert page.status_code == 200 and 'name="next" value="/studio/sessions"' in page.text


async def test_sign_in_from_another_site_is_refused(studio: Running, http: httpx.AsyncClient) -> None:
    """A POST with a foreign Origin is refused (CSRF), before the password is looked at."""
    person = await make_person(services_of(studio))
    r = await http.post(
        "/studio/signin",
        data={"email": person.email, "password": PASSWORD},
        headers={**address(), "origin": "https://evil.example"},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "bad_origin"
