"""SMS channel against a real local HTTP gateway: the request contract and how replies are read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.config import Settings
from server.followup.channels import Outgoing, Permanent, Retryable, httpreply
from server.followup.channels.sms import SmsChannel
from tests.followup.channels.conftest import LOOPBACK_ALLOWED, Remote, Reply


def channel(tmp_path: Path, url: str) -> SmsChannel:
    return SmsChannel(
        Settings(data_dir=tmp_path, sms_url=url, sms_token="gw-token", outbound_allow=LOOPBACK_ALLOWED)
    )


def text(to: str = "+8613800138000") -> Outgoing:
    return Outgoing(idem_key="m-7", to=to, subject=None, text="Your coupon expires tonight.")


async def test_request_contract(tmp_path: Path, remote: Remote) -> None:
    """JSON {to, text, id} with the bearer token and Idempotency-Key; the reply's id is kept."""
    url = remote.script("/sms", Reply(200, b'{"id": "gw-123"}', {"content-type": "application/json"}))
    sms = channel(tmp_path, url)
    sent = await sms.send(text())
    await sms.close()
    [got] = remote.received
    assert json.loads(got.body) == {
        "to": "+8613800138000",
        "text": "Your coupon expires tonight.",
        "id": "m-7",
    }
    assert got.headers["authorization"] == "Bearer gw-token"
    assert got.headers["idempotency-key"] == "m-7"
    assert got.headers["content-type"] == "application/json"
    assert sent.provider_id == "gw-123"


async def test_reply_without_id(tmp_path: Path, remote: Remote) -> None:
    """A 2xx without a JSON id is sent, with no provider id."""
    sms = channel(tmp_path, remote.script("/sms", Reply(202, b"queued")))
    assert (await sms.send(text())).provider_id is None
    await sms.close()


async def test_unavailable_then_accepted(tmp_path: Path, remote: Remote) -> None:
    """503 is retryable; the retry, with the same Idempotency-Key, is sent."""
    sms = channel(tmp_path, remote.script("/sms", Reply(503), Reply(200)))
    with pytest.raises(Retryable):
        await sms.send(text())
    await sms.send(text())
    await sms.close()
    assert [r.headers["idempotency-key"] for r in remote.received] == ["m-7", "m-7"]


async def test_rate_limited_honours_retry_after(tmp_path: Path, remote: Remote) -> None:
    """429 with Retry-After is retryable after that many seconds."""
    sms = channel(tmp_path, remote.script("/sms", Reply(429, headers={"retry-after": "30"})))
    with pytest.raises(Retryable) as limited:
        await sms.send(text())
    await sms.close()
    assert limited.value.retry_after_secs == 30


async def test_bad_request_is_permanent(tmp_path: Path, remote: Remote) -> None:
    """400 refuses this message; the number is not marked gone; the reason is the status, not the body."""
    sms = channel(tmp_path, remote.script("/sms", Reply(400, b'{"error": "text too long"}')))
    with pytest.raises(Permanent) as refused:
        await sms.send(text())
    await sms.close()
    assert not refused.value.gone
    assert refused.value.reason == "sms: HTTP 400 Bad Request"


async def test_unknown_number_is_gone(tmp_path: Path, remote: Remote) -> None:
    """410 says the number no longer exists."""
    sms = channel(tmp_path, remote.script("/sms", Reply(410)))
    with pytest.raises(Permanent) as refused:
        await sms.send(text())
    await sms.close()
    assert refused.value.gone


async def test_timeout_is_retryable(tmp_path: Path, remote: Remote, monkeypatch: pytest.MonkeyPatch) -> None:
    """A gateway that does not answer in time is retried later."""
    monkeypatch.setattr(httpreply, "REPLY_TIMEOUT_SECS", 0.2)
    sms = channel(tmp_path, remote.script("/sms", Reply(hang=True)))
    with pytest.raises(Retryable):
        await sms.send(text())
    await sms.close()


async def test_gateway_down_is_retryable(tmp_path: Path, dead_url: str) -> None:
    """A refused connection is retried later."""
    sms = channel(tmp_path, dead_url)
    with pytest.raises(Retryable):
        await sms.send(text())
    await sms.close()


async def test_not_e164_is_refused_without_a_request(tmp_path: Path, remote: Remote) -> None:
    """A number that is not E.164 is refused before calling the gateway."""
    sms = channel(tmp_path, remote.url("/sms"))
    with pytest.raises(Permanent):
        await sms.send(text("13800138000"))
    await sms.close()
    assert remote.received == []


async def test_no_token_no_authorization(tmp_path: Path, remote: Remote) -> None:
    """Without sms_token no Authorization header is sent."""
    sms = SmsChannel(Settings(data_dir=tmp_path, sms_url=remote.url("/sms"), outbound_allow=LOOPBACK_ALLOWED))
    await sms.send(text())
    await sms.close()
    assert "authorization" not in remote.received[0].headers
