"""HTTP replies as delivery outcomes: the status table, Retry-After, transport failures."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from server import netguard
from server.followup.channels import Permanent, Retryable
from server.followup.channels.httpreply import new_client, post, retry_after_secs
from tests.followup.channels.conftest import LOOPBACK_ALLOWED, Remote, Reply

ALLOW = netguard.allow_list(LOOPBACK_ALLOWED)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
async def test_2xx_is_accepted(remote: Remote, status: int) -> None:
    """Any 2xx reply is returned."""
    async with new_client(ALLOW) as client:
        response = await post(client, remote.script("/x", Reply(status)), content=b"{}", headers={}, what="t")
    assert response.status_code == status


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
async def test_retryable_statuses(remote: Remote, status: int) -> None:
    """408, 425, 429 and 5xx are retryable."""
    async with new_client(ALLOW) as client:
        with pytest.raises(Retryable):
            await post(client, remote.script("/x", Reply(status)), content=b"", headers={}, what="t")


@pytest.mark.parametrize(
    ("status", "gone"), [(400, False), (401, False), (403, False), (404, True), (410, True)]
)
async def test_permanent_statuses(remote: Remote, status: int, gone: bool) -> None:
    """Other 4xx are permanent; 404 and 410 mark the address gone."""
    async with new_client(ALLOW) as client:
        with pytest.raises(Permanent) as refused:
            await post(client, remote.script("/x", Reply(status)), content=b"", headers={}, what="t")
    assert refused.value.gone is gone


async def test_reason_never_carries_the_body(remote: Remote, caplog: pytest.LogCaptureFixture) -> None:
    """The refusal reason (shown to hosts) is the status and its phrase; the body goes to the log only."""
    url = remote.script("/x", Reply(400, b"internal service says: admin=secret\n" + b"x" * 5000))
    with caplog.at_level("INFO", "livewall.followup.channels"):
        async with new_client(ALLOW) as client:
            with pytest.raises(Permanent) as refused:
                await post(client, url, content=b"", headers={}, what="sms")
    assert refused.value.reason == "sms: HTTP 400 Bad Request"
    assert "internal service says" in caplog.text and len(caplog.text) < 1000


async def test_transport_failure_reason_is_fixed(dead_url: str) -> None:
    """A refused connection is retried with a fixed reason, not the socket error's text."""
    async with new_client(ALLOW) as client:
        with pytest.raises(Retryable) as failed:
            await post(client, dead_url, content=b"", headers={}, what="webhook")
    assert failed.value.reason == "webhook: no connection (ConnectError)"


async def test_loopback_is_refused_without_the_allow_list(remote: Remote) -> None:
    """Without an allow-list the client will not connect to a loopback receiver: permanent."""
    async with new_client(netguard.NOTHING_ALLOWED) as client:
        with pytest.raises(Permanent) as refused:
            await post(client, remote.script("/x"), content=b"", headers={}, what="webhook")
    assert "127.0.0.1 is a loopback address" in refused.value.reason
    assert remote.received == []


async def test_unsupported_scheme_is_permanent() -> None:
    """A URL that no request can be made to is permanent."""
    async with new_client(ALLOW) as client:
        with pytest.raises(Permanent):
            await post(client, "ftp://example.com/x", content=b"", headers={}, what="t")


def test_retry_after_seconds_and_dates() -> None:
    """Retry-After is read as delay seconds or as an HTTP date; garbage and absence are None."""
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_secs("120") == 120
    assert retry_after_secs("Wed, 01 Jan 2025 12:01:30 GMT", now=now) == 90
    assert retry_after_secs("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0
    assert retry_after_secs("soon") is None
    assert retry_after_secs(None) is None
    assert retry_after_secs("") is None


def test_client_does_not_follow_redirects() -> None:
    """The shared client never follows redirects."""
    client = new_client(ALLOW)
    assert client.follow_redirects is False
    assert isinstance(client.timeout, httpx.Timeout)
