"""Signing in to the studio: passwords (checked off the loop, throttled), studio sessions (started,
listed, revoked), one-time links (sign-in and password reset, sent by mail), and making accounts.

A revoked session is refused at its next request (identity.studio_user reads it), and the consoles
opened with it are closed by the rooms' revocation sweep (server/rooms/access.py) within
REVOCATION_SWEEP_SECS, in every process: nothing here needs to reach into the rooms domain.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import col, select

from server.accounts import rules
from server.accounts.audit import Actor, AuditLog
from server.accounts.engine import Accounts
from server.auth import MEMBER_SCOPES, MemberRole, Scope
from server.errors import Conflict, InvalidInput, NotFound, TooManyAttempts, Unauthorized
from server.i18n import translate
from server.services import Services
from server.storage import Database, now_ms
from server.storage.accounts import Account, Membership, OneTimeLink, Organisation, StudioSession
from server.throttle import Backoff

# Wrong passwords. An address may try 5 times, then waits 1 s, 2 s, 4 s ... up to 5 minutes; an
# account (tried from many addresses) 10 times, then up to 5 minutes: unlike a 96-bit host key, a
# password can be guessed, so the account's lock is what stops a spread-out guesser. Forgotten after
# 15 quiet minutes. Unknown addresses count as accounts too (the answer must not tell them apart).
SIGNIN_PER_ADDRESS = Backoff(free=5, first_secs=1.0, max_secs=300.0, forget_secs=900.0)
SIGNIN_PER_ACCOUNT = Backoff(free=10, first_secs=1.0, max_secs=300.0, forget_secs=900.0)
# Mail asked for one address (links, resets): 3 mails, then none for 1 minute, 2, 4 ... up to an
# hour, so that the form cannot be used to flood someone's inbox. The answer stays the same.
MAILS_PER_ADDRESS = Backoff(free=3, first_secs=60.0, max_secs=3600.0, forget_secs=3600.0)
# Checked when there is no account or no password, so that a wrong email takes as long as a wrong
# password (scrypt runs on it all the same; no password hashes to it).
_NO_PASSWORD = "scrypt$16384$8$1$" + "00" * 16 + "$" + "00" * 64
USER_AGENT_CHARS = 300
LINK_PURPOSES = ("signin", "reset")
SIGNED_IN = "wrong email or password"


def _engine(services: Services) -> Accounts:
    return services.engines.get(Accounts)


def actor_of(account: Account, session_id: str | None = None) -> Actor:
    return Actor(account.email, account.id, session_id)


async def orgs_of(db: Database, account_id: str) -> list[str]:
    async with db.session() as session:
        found = await session.exec(select(Membership.org_id).where(col(Membership.account_id) == account_id))
        return sorted(found.all())


async def record_access(
    services: Services, actor: Actor, action: str, account: Account, detail: dict[str, object] | None = None
) -> None:
    """An "access" entry in the audit log of every organisation the account belongs to."""
    log = services.engines.get(AuditLog)
    orgs: list[str | None] = [*await orgs_of(services.db, account.id)] or [None]
    for org in orgs:
        log.record(actor, action, "access", org_id=org, target=account.email, detail=detail)


# --- passwords -------------------------------------------------------------------------------------


async def check_signin(services: Services, email: object, password: object, address: str | None) -> Account:
    """The account whose email and password these are; Unauthorized (``bad_signin``, the same for an
    unknown email, a wrong password, an account without one or a disabled one), TooManyAttempts while
    the address or the account is locked by earlier failures."""
    engine = _engine(services)
    clean = email.strip().lower()[:254] if isinstance(email, str) else ""
    keys = [(f"studio-account:{clean}", SIGNIN_PER_ACCOUNT)]
    if address:
        keys.insert(0, (f"studio-addr:{address}", SIGNIN_PER_ADDRESS))
    wait = max([await engine.failures.locked(k) for k, _policy in keys])
    if wait > 0:
        raise TooManyAttempts(f"too many wrong passwords: try again in {wait:.0f} s", retry_after_secs=wait)
    account = await account_by_email(services.db, clean) if clean else None
    stored = account.password_hash if account is not None and account.password_hash else _NO_PASSWORD
    given = password if isinstance(password, str) and 0 < len(password) <= rules.PASSWORD_MAX else ""
    ok = await engine.checks.verify(given or "-", stored)
    if not ok or account is None or not given or not account.password_hash or account.disabled:
        for k, policy in keys:
            await engine.failures.fail(k, policy)
        raise Unauthorized(SIGNED_IN, code="bad_signin")
    for k, _policy in keys:
        await engine.failures.clear(k)
    return account


async def account_by_email(db: Database, email: str) -> Account | None:
    async with db.session() as session:
        found = await session.exec(select(Account).where(col(Account.email) == email))
        return found.first()


async def do_set_password(services: Services, account: Account, password: object) -> None:
    """Store a new password (rules.check_password; hashed off the loop)."""
    hashed = await _engine(services).checks.hash(rules.check_password(password))
    async with services.db.session() as session:
        await session.exec(update(Account).where(col(Account.id) == account.id).values(password_hash=hashed))
        await session.commit()


# --- sessions ----------------------------------------------------------------------------------------


async def do_start_session(
    services: Services, account: Account, *, how: str, user_agent: str | None, address: str | None
) -> StudioSession:
    """A new signed-in browser (its cookie is set by the caller), recorded in the audit log."""
    now = now_ms()
    row = StudioSession(
        id=secrets.token_hex(16),
        account_id=account.id,
        created_ms=now,
        last_seen_ms=now,
        expires_ms=now + rules.SESSION_IDLE_SECS * 1000,
        user_agent=(user_agent or "")[:USER_AGENT_CHARS] or None,
        address=(address or "")[:64] or None,
        how=how,
    )
    async with services.db.session() as session:
        session.add(row)
        await session.commit()
        await session.refresh(row)
    await record_access(services, actor_of(account, row.id), "signin", account, {"how": how})
    return row


async def do_end_session(services: Services, row: StudioSession, account: Account, *, action: str) -> None:
    """Revoke one session (signing out: ``action`` "signout"; from the sessions page: "revoke")."""
    await _revoke(services.db, [row.id])
    await record_access(services, actor_of(account, row.id), action, account)


@dataclass(frozen=True, slots=True)
class SessionView:
    """A live session as the sessions page lists it."""

    row: StudioSession
    email: str
    name: str


async def live_sessions(db: Database, account_ids: list[str]) -> list[SessionView]:
    """The live sessions of these accounts, most recently used first."""
    if not account_ids:
        return []
    now = now_ms()
    async with db.session() as session:
        found = await session.exec(
            select(StudioSession, Account)
            .join(Account, col(Account.id) == col(StudioSession.account_id))
            .where(
                col(StudioSession.account_id).in_(sorted(set(account_ids))),
                col(StudioSession.revoked_ms).is_(None),
                col(StudioSession.expires_ms) > now,
            )
            .order_by(col(StudioSession.last_seen_ms).desc())
        )
        return [SessionView(row, account.email, account.name) for row, account in found.all()]


async def members_administered(db: Database, account: Account, roles: dict[str, MemberRole]) -> list[str]:
    """The accounts whose sessions this one may see and revoke: its own, and the members of every
    organisation where it holds ORG_ADMIN (a server admin: everyone's)."""
    orgs = [org for org, role in roles.items() if Scope.ORG_ADMIN in MEMBER_SCOPES[role]]
    async with db.session() as session:
        if account.admin:
            found = await session.exec(select(Account.id))
            return sorted(set(found.all()) | {account.id})
        if not orgs:
            return [account.id]
        members = await session.exec(select(Membership.account_id).where(col(Membership.org_id).in_(orgs)))
        return sorted(set(members.all()) | {account.id})


async def do_revoke(
    services: Services, account: Account, roles: dict[str, MemberRole], session_id: str, *, own_session: str
) -> StudioSession:
    """Revoke a session of one's own or of a member one administers; NotFound otherwise (whether it
    exists is not told)."""
    async with services.db.session() as session:
        row = await session.get(StudioSession, session_id)
    allowed = await members_administered(services.db, account, roles)
    if row is None or row.account_id not in allowed:
        raise NotFound("no such session")
    await _revoke(services.db, [row.id])
    async with services.db.session() as session:
        owner = await session.get(Account, row.account_id)
    if owner is not None:
        detail: dict[str, object] = {"session": row.id[:8], "own": row.id == own_session}
        await record_access(services, actor_of(account, own_session), "session.revoke", owner, detail)
    return row


async def do_revoke_others(services: Services, account: Account, keep: str) -> int:
    """Revoke every other live session of this account; how many."""
    others = [v.row.id for v in await live_sessions(services.db, [account.id]) if v.row.id != keep]
    await _revoke(services.db, others)
    if others:
        await record_access(services, actor_of(account, keep), "session.revoke_others", account)
    return len(others)


async def _revoke(db: Database, session_ids: list[str]) -> None:
    if not session_ids:
        return
    async with db.session() as session:
        await session.exec(
            update(StudioSession)
            .where(col(StudioSession.id).in_(session_ids), col(StudioSession.revoked_ms).is_(None))
            .values(revoked_ms=now_ms())
        )
        await session.commit()


async def revoke_all(db: Database, account_id: str) -> None:
    """Revoke every session of the account (a new password: whoever knew the old one is out)."""
    async with db.session() as session:
        await session.exec(
            update(StudioSession)
            .where(col(StudioSession.account_id) == account_id, col(StudioSession.revoked_ms).is_(None))
            .values(revoked_ms=now_ms())
        )
        await session.commit()


# --- one-time links ----------------------------------------------------------------------------------


def _link_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_link(db: Database, account_id: str, purpose: str) -> str:
    """A one-time link's token (only its hash is stored), valid rules.LINK_SECS, used once."""
    assert purpose in LINK_PURPOSES
    token = secrets.token_urlsafe(32)
    async with db.session() as session:
        session.add(
            OneTimeLink(
                id=_link_id(token),
                account_id=account_id,
                purpose=purpose,
                expires_ms=now_ms() + rules.LINK_SECS * 1000,
            )
        )
        await session.commit()
    return token


async def peek_link(db: Database, token: str, purpose: str) -> Account:
    """The account of a valid, unused link (without using it); Unauthorized (``bad_link``) otherwise."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        raise Unauthorized("this link is not valid", code="bad_link")
    async with db.session() as session:
        row = await session.get(OneTimeLink, _link_id(token))
        account = await session.get(Account, row.account_id) if row is not None else None
    if row is None or account is None or row.purpose != purpose:
        raise Unauthorized("this link is not valid", code="bad_link")
    if row.used_ms is not None or row.expires_ms <= now_ms() or account.disabled:
        raise Unauthorized("this link was used or has expired: ask for a new one", code="bad_link")
    return account


async def use_link(db: Database, token: str, purpose: str) -> Account:
    """Use a link: only the first of two requests racing with it gets the account."""
    account = await peek_link(db, token, purpose)
    now = now_ms()
    async with db.session() as session:
        result = await session.exec(
            update(OneTimeLink)
            .where(
                col(OneTimeLink.id) == _link_id(token),
                col(OneTimeLink.used_ms).is_(None),
                col(OneTimeLink.expires_ms) > now,
            )
            .values(used_ms=now)
        )
        await session.commit()
    if result.rowcount != 1:
        raise Unauthorized("this link was used or has expired: ask for a new one", code="bad_link")
    return account


async def request_link(services: Services, email: object, purpose: str, base: str, locale: str) -> None:
    """Mail a one-time link to the account of ``email``, if there is one (and mail is configured).
    Answers the same either way: whether an address has an account is not told."""
    try:
        clean = rules.clean_email(email)
    except InvalidInput:
        return
    engine = _engine(services)
    account = await account_by_email(services.db, clean)
    if account is None or account.disabled or not engine.mail_on:
        return
    if await engine.failures.locked(f"studio-mail:{clean}") > 0:
        return
    await engine.failures.fail(f"studio-mail:{clean}", MAILS_PER_ADDRESS)
    token = await issue_link(services.db, account.id, purpose)
    mail_link(
        services,
        account,
        purpose,
        f"{base}/studio/{'link' if purpose == 'signin' else 'reset'}/{token}",
        locale,
    )
    await record_access(services, Actor("link request"), f"{purpose}.link", account)


def mail_link(
    services: Services, account: Account, purpose: str, url: str, locale: str, org: str = ""
) -> None:
    """The mail that carries a link, in the account's language (else the page's)."""
    lang = account.locale or locale
    kind = {"signin": "signin", "reset": "reset", "invite": "invite"}[purpose]
    minutes = rules.LINK_SECS // 60
    subject = translate(lang, f"mail.{kind}.subject", org=org)
    text = translate(lang, f"mail.{kind}.body", link=url, minutes=minutes, org=org, name=account.name)
    _engine(services).mail(account.email, subject, text)


async def do_reset(services: Services, token: str, password: object) -> Account:
    """Set a new password with a reset link: the link is used, every session of the account revoked."""
    rules.check_password(password)
    await peek_link(services.db, token, "reset")
    account = await use_link(services.db, token, "reset")
    await do_set_password(services, account, password)
    await revoke_all(services.db, account.id)
    await record_access(services, actor_of(account), "password.reset", account)
    return account


# --- accounts and organisations ------------------------------------------------------------------------


async def create_account(
    db: Database, email: object, name: object = None, password_hash: str | None = None, *, admin: bool = False
) -> Account:
    """A new account (Conflict ``exists`` when the email has one)."""
    clean = rules.clean_email(email)
    if await account_by_email(db, clean) is not None:
        raise Conflict("an account with this email exists", code="exists")
    account = Account(
        id=secrets.token_hex(8),
        email=clean,
        name=rules.clean_name(name, clean),
        password_hash=password_hash,
        admin=admin,
        created_ms=now_ms(),
    )
    async with db.session() as session:
        session.add(account)
        await session.commit()
        await session.refresh(account)
    return account


async def ensure_org(db: Database, org_id: str, name: str | None = None) -> Organisation:
    """The organisation ``org_id``, made if missing."""
    async with db.session() as session:
        found = await session.get(Organisation, org_id)
        if found is not None:
            return found
        org = Organisation(id=org_id, name=(name or org_id)[:120], created_ms=now_ms())
        session.add(org)
        await session.commit()
        await session.refresh(org)
        return org


async def set_membership(db: Database, org_id: str, account_id: str, role: MemberRole) -> str | None:
    """Make the account a member with ``role`` (or change its role); its previous role, if any."""
    async with db.session() as session:
        if await session.get(Organisation, org_id) is None:
            raise NotFound("no such organisation")
        found = await session.get(Membership, (org_id, account_id))
        old = found.role if found is not None else None
        if found is None:
            session.add(
                Membership(org_id=org_id, account_id=account_id, role=role.value, created_ms=now_ms())
            )
        else:
            found.role = role.value
            session.add(found)
        await session.commit()
    return old
