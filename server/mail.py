"""Mail over SMTP (``LIVEWALL_SMTP_URL``): where the server is (``parse_smtp_url``) and sending one plain
system message (a studio sign-in link, a password reset). A leaf: imports no domain, so that accounts
(wired first) and the follow-up email channel (wired last) both use it.

``smtp://user:pass@host:587`` upgrades with STARTTLS (``?tls=starttls``, the default), ``?tls=none``
stays plain (a local relay), ``smtps://host:465`` speaks TLS from the first byte. Credentials are
percent-decoded. Certificates are verified against the system store.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

# Per SMTP command (connect, EHLO, each reply): a healthy server answers in well under a second,
# and a message that waits longer is better retried than left holding a delivery worker.
SMTP_TIMEOUT_SECS = 15.0
DEFAULT_PORTS = {"implicit": 465, "starttls": 587, "none": 25}

Tls = Literal["implicit", "starttls", "none"]


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to submit mail, parsed from ``smtp_url``."""

    host: str
    port: int
    tls: Tls
    username: str | None = None
    password: str | None = None


def parse_smtp_url(url: str) -> SmtpServer:
    """``smtp://[user:pass@]host[:port][?tls=starttls|none]`` or ``smtps://...``; ValueError if malformed."""
    parts = urlsplit(url)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    requested = query.get("tls")
    tls: Tls
    if parts.scheme == "smtps":
        if requested not in (None, "implicit"):
            raise ValueError(f"smtp_url: smtps:// is implicit TLS, tls={requested} contradicts it")
        tls = "implicit"
    elif parts.scheme == "smtp":
        if requested not in (None, "starttls", "none"):
            raise ValueError(f"smtp_url: tls must be starttls or none, not {requested!r}")
        tls = "none" if requested == "none" else "starttls"
    else:
        raise ValueError(f"smtp_url: expected smtp:// or smtps://, got {parts.scheme!r}")
    if not parts.hostname:
        raise ValueError("smtp_url: no host")
    return SmtpServer(
        host=parts.hostname,
        port=parts.port or DEFAULT_PORTS[tls],
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def smtp_client(server: SmtpServer, tls_context: ssl.SSLContext | None = None) -> aiosmtplib.SMTP:
    """A client for ``server`` (not yet connected); ``tls_context`` None: the system trust store."""
    return aiosmtplib.SMTP(
        hostname=server.host,
        port=server.port,
        username=server.username,
        password=server.password,
        use_tls=server.tls == "implicit",
        start_tls=server.tls == "starttls",
        tls_context=tls_context,
        timeout=SMTP_TIMEOUT_SECS,
    )


async def send_plain(
    smtp_url: str,
    mail_from: str,
    to: str,
    subject: str,
    text: str,
    *,
    tls_context: ssl.SSLContext | None = None,
) -> None:
    """Send one plain-text system message; raises aiosmtplib.SMTPException or OSError when refused
    or unreachable (the caller decides whether that matters)."""
    mail = EmailMessage()
    mail["From"] = mail_from
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = make_msgid(domain=parseaddr(mail_from)[1].rpartition("@")[2] or "localhost")
    mail.set_content(text)
    client = smtp_client(parse_smtp_url(smtp_url), tls_context)
    async with client:
        await client.send_message(mail)
