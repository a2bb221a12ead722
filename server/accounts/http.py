"""The studio's sign-in pages: password, one-time email link, password reset, signing out, and the
sessions page (docs/accounts.md). Server-rendered forms; every POST is refused from other sites
(``check_origin``), and the cookie is SameSite=Lax and HttpOnly (identity.set_studio_cookie)."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from server.accounts import actions, identity, rules
from server.accounts.engine import Accounts
from server.accounts.identity import StudioUser
from server.errors import InvalidInput, TooManyAttempts, Unauthorized
from server.httputil import check_origin, client_address, retry_after
from server.i18n import negotiate
from server.services import Services
from server.storage.accounts import Account
from server.templating import render

HOME = "/studio"
FORM_FIELDS = 6


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def safe_next(value: object) -> str:
    """Where to go after signing in: a path on this site, never another site (``//host``, ``/\\host``
    and URLs with a scheme are refused: an open redirect)."""
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or value.startswith(("//", "/\\"))
        or len(value) > 500
        or any(ord(c) < 33 or c == "\\" for c in value)
    ):
        return HOME
    return value


def base_of(request: Request) -> str:
    """The base URL of links in mail: the configured public URL, else the one this request came to."""
    configured = _services(request).settings.public_url
    return configured.rstrip("/") if configured else str(request.base_url).rstrip("/")


async def page_user(request: Request) -> StudioUser | Response:
    """The signed-in person, or a redirect to the sign-in page that comes back here after (with a
    small HTML body naming it, as the studio's other pages answer)."""
    try:
        return await identity.studio_user(_services(request), request)
    except Unauthorized:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target = f"/studio/signin?next={quote(here, safe='/')}"
        body = f'<!doctype html><a href="{html.escape(target)}">/studio/signin</a>\n'
        return HTMLResponse(body, status_code=303, headers={"location": target, "cache-control": "no-store"})


async def _form(request: Request) -> dict[str, str]:
    services = _services(request)
    check_origin(request, services.settings.allowed_origins, services.settings.public_url)
    form = await request.form(max_files=0, max_fields=FORM_FIELDS)
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def _signed_in(request: Request, account_id: str, how: str, target: str) -> Response:
    services = _services(request)
    async with services.db.session() as session:
        account = await session.get(Account, account_id)
    assert account is not None
    row = await actions.do_start_session(
        services,
        account,
        how=how,
        user_agent=request.headers.get("user-agent"),
        address=client_address(request),
    )
    response = RedirectResponse(safe_next(target), status_code=303)
    identity.set_studio_cookie(services, response, row.id)
    return response


def _signin_page(request: Request, status: int = 200, **context: object) -> Response:
    context.setdefault("next", safe_next(request.query_params.get("next")))
    mail_on = _services(request).engines.get(Accounts).mail_on
    return render(request, "studio/signin.html", status_code=status, user=None, mail_on=mail_on, **context)


async def signin(request: Request) -> Response:
    """GET the sign-in form; POST an email and password (throttled, checked off the loop)."""
    services = _services(request)
    if request.method == "GET":
        user = await page_user(request)
        if isinstance(user, StudioUser):
            return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
        return _signin_page(request)
    form = await _form(request)
    target = safe_next(form.get("next"))
    try:
        account = await actions.check_signin(
            services, form.get("email"), form.get("password"), client_address(request)
        )
    except Unauthorized:
        return _signin_page(request, 401, failed=True, email=form.get("email", "")[:254], next=target)
    except TooManyAttempts as exc:
        headers = retry_after(exc) or {"retry-after": "1"}
        response = _signin_page(request, 429, wait=headers["retry-after"], next=target)
        response.headers.update(headers)
        return response
    return await _signed_in(request, account.id, "password", target)


async def signin_link(request: Request) -> Response:
    """POST an email: a one-time sign-in link is mailed if it belongs to an account (same answer
    either way)."""
    form = await _form(request)
    await actions.request_link(
        _services(request), form.get("email"), "signin", base_of(request), negotiate(request)
    )
    return _signin_page(request, sent=True)


async def link(request: Request) -> Response:
    """GET: a button to sign in with a one-time link (mail scanners that open links do not use it);
    POST: use it and sign in."""
    services = _services(request)
    token = request.path_params["token"]
    try:
        if request.method == "GET":
            await actions.peek_link(services.db, token, "signin")
            return render(request, "studio/link.html", user=None, token=token, invalid=False)
        await _form(request)
        account = await actions.use_link(services.db, token, "signin")
    except Unauthorized:
        return render(request, "studio/link.html", status_code=401, user=None, token="", invalid=True)
    return await _signed_in(request, account.id, "link", HOME)


async def reset(request: Request) -> Response:
    """GET: the form asking for a reset link; POST an email: the link is mailed (same answer)."""
    services = _services(request)
    if request.method == "GET":
        mail_on = services.engines.get(Accounts).mail_on
        return render(request, "studio/reset.html", user=None, mode="ask", mail_on=mail_on)
    form = await _form(request)
    await actions.request_link(services, form.get("email"), "reset", base_of(request), negotiate(request))
    return render(request, "studio/reset.html", user=None, mode="sent", mail_on=True)


async def reset_token(request: Request) -> Response:
    """GET: the new-password form of a reset link; POST: set it, sign out everywhere, sign in here."""
    services = _services(request)
    token = request.path_params["token"]
    try:
        account = await actions.peek_link(services.db, token, "reset")
    except Unauthorized:
        return render(request, "studio/reset.html", status_code=401, user=None, mode="invalid")
    if request.method == "GET":
        return render(request, "studio/reset.html", user=None, mode="set", token=token, email=account.email)
    form = await _form(request)
    error = None
    if form.get("password") != form.get("password2"):
        error = "mismatch"
    else:
        try:
            rules.check_password(form.get("password"))
        except InvalidInput:
            error = "weak"
    if error is not None:
        return render(
            request,
            "studio/reset.html",
            status_code=422,
            user=None,
            mode="set",
            token=token,
            email=account.email,
            error=error,
        )
    try:
        account = await actions.do_reset(services, token, form.get("password"))
    except Unauthorized:  # used in the meantime
        return render(request, "studio/reset.html", status_code=401, user=None, mode="invalid")
    return await _signed_in(request, account.id, "reset", HOME)


async def signout(request: Request) -> Response:
    """POST: end this browser's session (the consoles opened with it close within a second)."""
    services = _services(request)
    await _form(request)
    response = RedirectResponse("/studio/signin", status_code=303)
    identity.clear_studio_cookie(response)
    try:
        user = await identity.studio_user(services, request)
    except Unauthorized:
        return response
    await actions.do_end_session(services, user.session, user.account, action="signout")
    return response


async def sessions_page(request: Request) -> Response:
    """GET: this person's live sessions and, for an owner, those of their organisations' members."""
    user = await page_user(request)
    if not isinstance(user, StudioUser):
        return user
    services = _services(request)
    ids = await actions.members_administered(services.db, user.account, user.roles)
    views = await actions.live_sessions(services.db, ids)
    mine = [v for v in views if v.row.account_id == user.id]
    others = [v for v in views if v.row.account_id != user.id]
    return render(
        request,
        "studio/sessions.html",
        user=user,
        mine=mine,
        others=others,
        current=user.session.id,
        revoked=request.query_params.get("revoked"),
        when=_when,
    )


async def revoke_session(request: Request) -> Response:
    """POST: revoke one session (one's own, or a member's for an owner); revoking this browser's
    own session signs it out."""
    user = await page_user(request)
    if not isinstance(user, StudioUser):
        return user
    services = _services(request)
    await _form(request)
    session_id = request.path_params["session_id"]
    await actions.do_revoke(services, user.account, user.roles, session_id, own_session=user.session.id)
    if session_id == user.session.id:
        response = RedirectResponse("/studio/signin", status_code=303)
        identity.clear_studio_cookie(response)
        return response
    return RedirectResponse("/studio/sessions?revoked=1", status_code=303)


async def revoke_others(request: Request) -> Response:
    """POST: revoke every other session of this account ("sign out everywhere else")."""
    user = await page_user(request)
    if not isinstance(user, StudioUser):
        return user
    await _form(request)
    await actions.do_revoke_others(_services(request), user.account, user.session.id)
    return RedirectResponse("/studio/sessions?revoked=1", status_code=303)


routes: list[BaseRoute] = [
    Route("/studio/signin", signin, methods=["GET", "POST"]),
    Route("/studio/signin/link", signin_link, methods=["POST"]),
    Route("/studio/link/{token}", link, methods=["GET", "POST"]),
    Route("/studio/reset", reset, methods=["GET", "POST"]),
    Route("/studio/reset/{token}", reset_token, methods=["GET", "POST"]),
    Route("/studio/signout", signout, methods=["POST"]),
    Route("/studio/sessions", sessions_page),
    Route("/studio/sessions/others/revoke", revoke_others, methods=["POST"]),
    Route("/studio/sessions/{session_id}/revoke", revoke_session, methods=["POST"]),
]
