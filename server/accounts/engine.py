"""This process's share of accounts: the bounded password checks, the sign-in failure counts, and
the system mail on its way (sign-in links, password resets, invitations)."""

from __future__ import annotations

import asyncio
import logging
import ssl

import aiosmtplib

from server.auth import SecretChecks
from server.config import Settings
from server.mail import send_plain
from server.throttle import Failures

log = logging.getLogger("livewall.accounts")


class Accounts:
    """An engine: built with the app, stopped with it (mail still on its way is sent first)."""

    def __init__(
        self,
        settings: Settings,
        failures: Failures,
        checks: SecretChecks | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        self.failures = failures
        self.checks = checks or SecretChecks()
        self.tls_context = tls_context  # None: the system trust store
        self.mail_failed = 0
        self._mails: set[asyncio.Task[None]] = set()

    @property
    def mail_on(self) -> bool:
        """Whether this server can send mail (one-time links are offered only then)."""
        return bool(self.settings.smtp_url)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.sent()
        self.checks.close()
        await self.failures.close()

    def mail(self, to: str, subject: str, text: str) -> None:
        """Send in the background: the request answers the same whether or not there was anyone to
        mail, and as fast (no account enumeration by timing); a failure is logged."""
        if not self.settings.smtp_url:
            return
        task = asyncio.create_task(self._send(self.settings.smtp_url, to, subject, text))
        self._mails.add(task)
        task.add_done_callback(self._mails.discard)

    async def _send(self, url: str, to: str, subject: str, text: str) -> None:
        try:
            await send_plain(url, self.settings.mail_from, to, subject, text, tls_context=self.tls_context)
        except (aiosmtplib.SMTPException, OSError, ValueError):
            self.mail_failed += 1
            log.warning("studio mail to %s could not be sent", to.partition("@")[2], exc_info=True)

    async def sent(self) -> None:
        """Wait until the mail queued so far is sent or has failed (tests; stopping)."""
        while self._mails:
            await asyncio.gather(*list(self._mails), return_exceptions=True)
