"""HTTP replies and transport failures as delivery outcomes, shared by the SMS, webhook and push channels.

- 2xx: accepted;
- 408, 425, 429 and 5xx: ``Retryable``, with ``Retry-After`` (seconds or an HTTP date) when given;
- 404 and 410: ``Permanent`` with ``gone`` (the number, endpoint or subscription no longer exists);
- any other status: ``Permanent``;
- timeouts, refused connections and broken streams: ``Retryable``;
- a URL that cannot be sent to, or whose host is not a public address (server/netguard.py): ``Permanent``.

The reason recorded with a message (and shown to the host in the console) is the status and a fixed
phrase, never the remote's body: a reply is the remote's text, and the host chose the remote. The
operator's log gets a short excerpt of the body for diagnosis.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus

import httpx

from server import netguard
from server.followup.channels import Permanent, Retryable

RETRY_STATUSES = frozenset({408, 425, 429})
GONE_STATUSES = frozenset({404, 410})
# Enough of a refusal's body to say why in the operator's log, not so much that a verbose error page
# fills it.
LOG_BODY_CHARS = 200
# A remote that answers slowly is retried later rather than holding a delivery worker: connecting
# should take well under a second, and providers answer within seconds when healthy.
CONNECT_TIMEOUT_SECS = 5.0
REPLY_TIMEOUT_SECS = 15.0

log = logging.getLogger("livewall.followup.channels")


def new_client(allow: netguard.Allow) -> httpx.AsyncClient:
    """An HTTP client with the channels' timeouts that connects only to public addresses (and those
    ``allow`` lists); redirects are not followed (a 3xx is a refusal)."""
    timeout = httpx.Timeout(REPLY_TIMEOUT_SECS, connect=CONNECT_TIMEOUT_SECS)
    return netguard.guarded_client(allow, timeout=timeout)


async def post(
    client: httpx.AsyncClient, url: str, *, content: bytes, headers: Mapping[str, str], what: str
) -> httpx.Response:
    """POST ``content`` to ``url``; a 2xx reply is returned, anything else raised as a delivery error."""
    try:
        response = await client.post(url, content=content, headers=headers)
    except netguard.Refused as exc:
        raise Permanent(f"{what}: {exc.message}") from exc
    except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL) as exc:
        raise Permanent(f"{what}: cannot send to this URL ({type(exc).__name__})") from exc
    except httpx.TimeoutException as exc:
        raise Retryable(f"{what}: timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        log.info("%s: %s: %s", what, type(exc).__name__, exc)
        raise Retryable(f"{what}: no connection ({type(exc).__name__})") from exc
    raise_for_status(response, what=what)
    return response


def raise_for_status(response: httpx.Response, *, what: str) -> None:
    """Raise the delivery error a non-2xx reply stands for."""
    status = response.status_code
    if 200 <= status < 300:
        return
    reason = f"{what}: HTTP {status} {_phrase(status)}".rstrip()
    log.info("%s: HTTP %s from %s: %r", what, status, response.url.host, _excerpt(response))
    if status in RETRY_STATUSES or status >= 500:
        after = retry_after_secs(response.headers.get("retry-after"))
        raise Retryable(reason, retry_after_secs=after)
    raise Permanent(reason, gone=status in GONE_STATUSES)


def retry_after_secs(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay seconds or HTTP date); None if absent or bad."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _excerpt(response: httpx.Response) -> str:
    try:
        text = response.text
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return ""
    return " ".join(text.split())[:LOG_BODY_CHARS]
