"""``livewall users create|list|set-password`` and ``livewall orgs create|list``: the first account
(``--admin``) and the ones after it, without a running server (docs/accounts.md)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson

from server.cli.parser import settings_from
from server.config import Settings
from server.errors import LivewallError
from server.storage import Database

T = TypeVar("T")


def _json(data: dict[str, Any]) -> str:
    return orjson.dumps(data).decode()


def _password(args: argparse.Namespace) -> str:
    """The password: the first line of standard input (``--password-stdin``), else asked twice."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise ValueError("the two passwords are not the same")
    return first


def _with_db(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        assert settings.database_url
        db = Database(settings.database_url)
        await asyncio.to_thread(db.migrate)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


async def _audit(db: Database, org_id: str, action: str, target: str, detail: dict[str, object]) -> None:
    """An audit entry by "cli" (no server runs here to queue it)."""
    from server.storage import now_ms
    from server.storage.accounts import AuditEntry

    category = "roles" if action.startswith("member.") else "access"
    async with db.session() as session:
        session.add(
            AuditEntry(
                org_id=org_id,
                actor="cli",
                action=action,
                category=category,
                target=target,
                detail=orjson.dumps(detail).decode(),
                at_ms=now_ms(),
            )
        )
        await session.commit()


def cmd_users(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    try:
        if args.users_command == "create":
            return _create(settings, args)
        if args.users_command == "set-password":
            return _set_password(settings, args)
        return _with_db(settings, _list)
    except LivewallError as exc:
        print(f"livewall: {exc.message}", file=sys.stderr)
        return 2


def _create(settings: Settings, args: argparse.Namespace) -> int:
    from server.accounts import actions, rules
    from server.auth import MemberRole, hash_secret
    from server.storage.accounts import DEFAULT_ORG, Organisation

    email = rules.clean_email(args.email)
    password = rules.check_password(_password(args))
    role = rules.parse_role(args.role) if args.role else (MemberRole.OWNER if args.admin else MemberRole.HOST)
    org_id = args.org or DEFAULT_ORG

    async def work(db: Database) -> int:
        async with db.session() as session:
            org = await session.get(Organisation, org_id)
        if org is None and org_id != DEFAULT_ORG:
            print(f"livewall: no organisation {org_id!r} (see `livewall orgs create`)", file=sys.stderr)
            return 2
        await actions.ensure_org(db, org_id, "Default" if org_id == DEFAULT_ORG else None)
        hashed = await asyncio.to_thread(hash_secret, password)
        account = await actions.create_account(db, email, args.name, hashed, admin=args.admin)
        await actions.set_membership(db, org_id, account.id, role)
        await _audit(db, org_id, "member.add", account.email, {"old": None, "new": role.value})
        if args.json:
            print(_json({"id": account.id, "email": account.email, "org": org_id, "role": role.value}))
        else:
            kind = "server admin, " if args.admin else ""
            print(f"Account {account.email} created ({kind}{role.value} of {org_id}).")
            print(f"  Sign in at {settings.base_url}/studio/signin")
        return 0

    return _with_db(settings, work)


async def _list(db: Database) -> int:
    from sqlmodel import col, select

    from server.storage.accounts import Account, Membership

    async with db.session() as session:
        accounts = (await session.exec(select(Account).order_by(col(Account.email)))).all()
        memberships = (await session.exec(select(Membership))).all()
    roles: dict[str, list[str]] = {}
    for m in memberships:
        roles.setdefault(m.account_id, []).append(f"{m.org_id}:{m.role}")
    for a in accounts:
        flags = [
            f
            for f, on in (("admin", a.admin), ("disabled", a.disabled), ("no-password", not a.password_hash))
            if on
        ]
        print(f"{a.email}\t{a.name}\t{','.join(sorted(roles.get(a.id, []))) or '-'}\t{','.join(flags)}")
    return 0


def _set_password(settings: Settings, args: argparse.Namespace) -> int:
    from server.accounts import actions, rules
    from server.auth import hash_secret

    email = rules.clean_email(args.email)
    password = rules.check_password(_password(args))

    async def work(db: Database) -> int:
        from sqlalchemy import update
        from sqlmodel import col

        from server.storage.accounts import Account

        account = await actions.account_by_email(db, email)
        if account is None:
            print(f"livewall: no account {email!r} (see `livewall users list`)", file=sys.stderr)
            return 2
        hashed = await asyncio.to_thread(hash_secret, password)
        async with db.session() as session:
            await session.exec(
                update(Account).where(col(Account.id) == account.id).values(password_hash=hashed)
            )
            await session.commit()
        await actions.revoke_all(db, account.id)  # whoever knew the old one is signed out
        for org in await actions.orgs_of(db, account.id):
            await _audit(db, org, "password.set", account.email, {})
        print(f"Password of {account.email} set; its studio sessions are signed out.")
        return 0

    return _with_db(settings, work)


def cmd_orgs(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if args.orgs_command == "create":
        return _with_db(settings, lambda db: _create_org(db, args.name, args.id))
    return _with_db(settings, _list_orgs)


async def _create_org(db: Database, name: str, org_id: str | None) -> int:
    import re
    import secrets

    from server.storage.accounts import Organisation

    chosen = org_id or (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:24] or secrets.token_hex(4))
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,31}", chosen):
        print("livewall: --id: lower-case letters, digits and dashes, at most 32", file=sys.stderr)
        return 2
    async with db.session() as session:
        if await session.get(Organisation, chosen) is not None:
            print(f"livewall: organisation {chosen!r} exists", file=sys.stderr)
            return 2
    from server.accounts import actions

    await actions.ensure_org(db, chosen, name.strip()[:120] or chosen)
    print(f"Organisation {chosen} created. Add its first owner:")
    print(f"  livewall users create --email EMAIL --org {chosen} --role owner")
    return 0


async def _list_orgs(db: Database) -> int:
    from sqlmodel import col, select

    from server.storage.accounts import Organisation

    async with db.session() as session:
        orgs = (await session.exec(select(Organisation).order_by(col(Organisation.id)))).all()
    for org in orgs:
        print(f"{org.id}\t{org.name}")
    return 0
