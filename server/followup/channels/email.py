"""Email over SMTP (``LIVEWALL_SMTP_URL``), one connection per message: follow-up mail comes in
trickles, and a connection held between them would sit idle until the server dropped it.

The URL (``smtp://...:587`` with STARTTLS, ``?tls=none``, ``smtps://...:465``) is parsed by
server/mail.py, which the studio's system mail uses too. Certificates are verified against the
system store.

The Message-ID is derived from the idempotency key, so a retry after a lost reply carries the same
id and inboxes and providers can recognise the duplicate. Marketing mail carries ``List-Unsubscribe``
with one-click unsubscribe (RFC 8058); transactional mail does not.

Replies: SMTP 4xx and network failures are retried; 5xx is refused, and a refused recipient (550, 551,
553 or an enhanced status 5.1.x) is a hard bounce: the address is ``gone``.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

import aiosmtplib

from server.config import Settings
from server.followup.channels import DeliveryError, Outgoing, Permanent, Retryable, Sent
from server.mail import SMTP_TIMEOUT_SECS, SmtpServer, parse_smtp_url, smtp_client

__all__ = ["SMTP_TIMEOUT_SECS", "EmailChannel", "SmtpServer", "build_email", "parse_smtp_url"]

# Recipient refusals that mean the mailbox does not exist (RFC 5321 4.2.2) when the server gives
# no enhanced status code; with one, 5.1.x (bad destination address, RFC 3463) says the same.
HARD_BOUNCE_CODES = frozenset({550, 551, 553})
ENHANCED_STATUS = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})\b")
# An idempotency key usable verbatim as the left part of a Message-ID (RFC 5322 dot-atom).
MSGID_LOCAL = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")


def message_id(idem_key: str, mail_from: str) -> str:
    """The Message-ID for a message: the same key always gives the same id."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    local = idem_key if len(idem_key) <= 100 and MSGID_LOCAL.fullmatch(idem_key) else None
    local = local or hashlib.sha256(idem_key.encode()).hexdigest()[:40]
    return f"<{local}@{domain}>"


def build_email(message: Outgoing, *, mail_from: str) -> EmailMessage:
    """The MIME message: text, optional HTML alternative, and the headers described above."""
    mail = EmailMessage()
    mail["From"] = mail_from
    mail["To"] = message.to
    if message.subject:
        mail["Subject"] = message.subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = message_id(message.idem_key, mail_from)
    if message.marketing and message.unsubscribe_url:
        mail["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in message.headers.items():
        del mail[name]
        mail[name] = value
    mail.set_content(message.text)
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    return mail


class EmailChannel:
    """Submits mail to the configured SMTP server."""

    name = "email"

    def __init__(self, settings: Settings, *, tls_context: ssl.SSLContext | None = None) -> None:
        if not settings.smtp_url:
            raise ValueError("EmailChannel needs smtp_url")
        self._server = parse_smtp_url(settings.smtp_url)
        self._mail_from = settings.mail_from
        self._tls_context = tls_context  # None: the system trust store, certificates verified
        self._quitting: set[asyncio.Task[None]] = set()

    async def send(self, message: Outgoing) -> Sent:
        """Submit one message; the returned ``provider_id`` is its Message-ID."""
        try:
            mail = build_email(message, mail_from=self._mail_from)
        except ValueError as exc:  # a header with a line break, an unparsable address
            raise Permanent(f"email: cannot build the message: {exc}") from exc
        server = self._server
        client = smtp_client(server, self._tls_context)
        try:
            await client.connect()
            await client.send_message(mail)
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            raise delivery_error(exc) from exc
        # Accepted: return now, so the caller records the send before anything else happens. The
        # polite QUIT (a round trip) follows in the background; were the process to die during it,
        # the message would be sent again although the server already had it.
        task = asyncio.create_task(self._quit(client))
        self._quitting.add(task)
        task.add_done_callback(self._quitting.discard)
        return Sent(provider_id=str(mail["Message-ID"]))

    @staticmethod
    async def _quit(client: aiosmtplib.SMTP) -> None:
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()  # the message was accepted; a QUIT that fails changes nothing

    async def close(self) -> None:
        """Let the last QUITs finish (they are bounded by the SMTP timeout)."""
        if self._quitting:
            await asyncio.gather(*self._quitting, return_exceptions=True)


def delivery_error(exc: Exception) -> DeliveryError:
    """What an aiosmtplib or socket failure means for the message."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]  # one recipient per message
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        reason = f"smtp: {exc.code} {exc.message}"
        if 400 <= exc.code < 500:
            return Retryable(reason)
        if exc.code >= 500:
            recipient = isinstance(exc, aiosmtplib.SMTPRecipientRefused)
            return Permanent(reason, gone=recipient and _hard_bounce(exc.code, exc.message))
        return Retryable(reason)  # an unreadable reply: the connection, not the message
    if isinstance(exc, OSError):  # refused, reset, timed out, disconnected, TLS handshake
        return Retryable(f"smtp: {type(exc).__name__}: {exc}")
    return Permanent(f"smtp: {exc}")  # the server lacks STARTTLS or AUTH: configuration


def _hard_bounce(code: int, text: str) -> bool:
    enhanced = ENHANCED_STATUS.match(text.strip())
    if enhanced:
        return enhanced.group(1) == "5" and enhanced.group(2) == "1"
    return code in HARD_BOUNCE_CODES
