"""Delivery channels. Each sends one rendered message and says how it went:

- it returns a ``Sent`` when the provider accepted the message (only then is it recorded as sent);
- it raises ``Retryable`` for what may pass (timeouts, refused connections, 429, 5xx, SMTP 4xx);
- it raises ``Permanent`` for what will not (4xx, SMTP 5xx, a gone push subscription). ``gone``
  marks an address that no longer exists (hard bounce, unknown number, expired subscription): only
  that, never a transient failure, may block the contact on that channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

# Channels whose provider cannot recognise a repeat of the idempotency key: SMTP has no such thing
# (a Message-ID lets inboxes thread a repeat, not drop it). Every other channel passes the key (SMS
# Idempotency-Key, webhook-id, the push Topic that replaces a notification) or is our own row (in-app).
NO_PROVIDER_DEDUPE = frozenset({"email"})


@dataclass(frozen=True)
class Outgoing:
    """One message, rendered, with where it goes. ``idem_key`` is passed to providers that dedupe."""

    idem_key: str
    to: str  # email address, E.164 phone, push endpoint, webhook URL or viewer id
    subject: str | None
    text: str
    html: str | None = None
    marketing: bool = True  # marketing email carries List-Unsubscribe; transactional does not
    unsubscribe_url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    push_keys: dict[str, str] | None = None  # {"p256dh": ..., "auth": ...} for web push
    data: dict[str, object] | None = None  # the structured payload (webhook body, push data)
    secret: str | None = None  # webhook signing secret (whsec_...), per endpoint


@dataclass(frozen=True)
class Sent:
    provider_id: str | None = None


class DeliveryError(Exception):
    def __init__(self, reason: str, *, gone: bool = False, retry_after_secs: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.gone = gone
        self.retry_after_secs = retry_after_secs


class Retryable(DeliveryError):
    """The provider may accept it later: retry with backoff."""


class Permanent(DeliveryError):
    """The provider will not accept it: no retry."""


class Channel(Protocol):
    name: str

    async def send(self, message: Outgoing) -> Sent: ...

    async def close(self) -> None: ...
