"""HTTP replies as delivery outcomes: the status table, Retry-After, transport failures."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from server.followup.channels import Permanent, Retryable
from server.followup.channels.httpreply import new_client, post, retry_after_secs
from tests.followup.channels.conftest import Remote, Reply


@pytest.mark.parametrize("status", [200, 201, 202, 204])
async def test_2xx_is_accepted(remote: Remote, status: int) -> None:
    """Any 2xx reply is returned."""
    async with new_client() as client:
        response = await post(client, remote.script("/x", Reply(status)), content=b"{}", headers={}, what="t")
    assert response.status_code == status


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
async def test_retryable_statuses(remote: Remote, status: int) -> None:
    """408, 425, 429 and 5xx are retryable."""
    async with new_client() as client:
        with pytest.raises(Retryable):
            await post(client, remote.script("/x", Reply(status)), content=b"", headers={}, what="t")


@pytest.mark.parametrize(
    ("status", "gone"), [(400, False), (401, False), (403, False), (404, True), (410, True)]
)
async def test_permanent_statuses(remote: Remote, status: int, gone: bool) -> None:
    """Other 4xx are permanent; 404 and 410 mark the address gone."""
    async with new_client() as client:
        with pytest.raises(Permanent) as refused:
            await post(client, remote.script("/x", Reply(status)), content=b"", headers={}, what="t")
    assert refused.value.gone is gone


async def test_reason_carries_a_bounded_body(remote: Remote) -> None:
    """The refusal reason names the status and at most a short excerpt of the body."""
    url = remote.script("/x", Reply(400, b"bad number\n" + b"x" * 5000))
    async with new_client() as client:
        with pytest.raises(Permanent) as refused:
            await post(client, url, content=b"", headers={}, what="sms")
    assert refused.value.reason.startswith("sms: HTTP 400 bad number x")
    assert len(refused.value.reason) < 300


async def test_unsupported_scheme_is_permanent() -> None:
    """A URL that no request can be made to is permanent."""
    async with new_client() as client:
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
    client = new_client()
    assert client.follow_redirects is False
    assert isinstance(client.timeout, httpx.Timeout)
