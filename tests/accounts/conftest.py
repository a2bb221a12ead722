"""Fixtures: one server per module with a real SMTP server (aiosmtpd) behind it, and accounts made
through the accounts domain's own actions."""

from __future__ import annotations

import email
import email.policy
import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from server.accounts import actions
from server.accounts.engine import Accounts
from server.auth import MemberRole, hash_secret
from server.services import Services
from server.storage.accounts import Account
from tests.conftest import make_settings
from tests.helpers import Running, free_port, serve

PASSWORD = "correct horse battery"
TIMEOUT = 10.0
_addresses = itertools.count(1)
_emails = itertools.count(1)


class Mailbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


@pytest.fixture(scope="module")
async def studio(
    tmp_path_factory: pytest.TempPathFactory, mailbox: tuple[Mailbox, int]
) -> AsyncIterator[Running]:
    """One server for the module, mailing through the local SMTP server; tests use accounts and
    addresses of their own."""
    settings = make_settings(
        tmp_path_factory.mktemp("studio"), smtp_url=f"smtp://127.0.0.1:{mailbox[1]}?tls=none"
    )
    async with serve(settings) as running:
        yield running


@pytest.fixture
async def http(studio: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=studio.base, timeout=TIMEOUT) as client:
        yield client


def services_of(running: Running) -> Services:
    found: Services = running.app.state.services
    return found


def address() -> dict[str, str]:
    """A client address of its own (uvicorn trusts X-Forwarded-For from 127.0.0.1, as behind Caddy)."""
    n = next(_addresses)
    return {"x-forwarded-for": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"}


def new_email(prefix: str = "person") -> str:
    return f"{prefix}{next(_emails)}@example.com"


@dataclass
class Person:
    account: Account
    email: str
    password: str | None


async def make_person(
    services: Services,
    *,
    org: str | None = None,
    role: MemberRole = MemberRole.OWNER,
    password: str | None = PASSWORD,
    prefix: str = "person",
) -> Person:
    """An account (with a password unless None), a member of ``org`` with ``role`` if given."""
    mail = new_email(prefix)
    hashed = hash_secret(password) if password else None
    account = await actions.create_account(services.db, mail, None, hashed)
    if org is not None:
        await actions.ensure_org(services.db, org)
        await actions.set_membership(services.db, org, account.id, role)
    return Person(account, mail, password)


async def sign_in(http: httpx.AsyncClient, person: Person, **extra: str) -> httpx.Response:
    data = {"email": person.email, "password": person.password or "", **extra}
    return await http.post("/studio/signin", data=data, headers=address())


async def mails_sent(running: Running) -> None:
    await services_of(running).engines.get(Accounts).sent()
