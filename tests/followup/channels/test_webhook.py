"""Webhook channel against a real local receiver: Standard Webhooks signatures and reply mapping."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from server.config import Settings
from server.followup.channels import Outgoing, Permanent, Retryable, httpreply
from server.followup.channels.webhook import WebhookChannel
from tests.followup.channels.conftest import LOOPBACK_ALLOWED, Remote, Reply

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def hook(url: str, secret: str | None = SECRET, **overrides: object) -> Outgoing:
    values: dict[str, object] = {
        "idem_key": "msg_2024_abc",
        "to": url,
        "subject": None,
        "text": "",
        "data": {"type": "intent.unpaid", "order": "A-17", "amount": 129.5},
        "secret": secret,
    }
    values.update(overrides)
    return Outgoing(**values)  # type: ignore[arg-type]


async def test_signature_verifies(tmp_path: Path, remote: Remote) -> None:
    """The receiver verifies the body with the endpoint's secret; webhook-id is the idempotency key."""
    channel = WebhookChannel(Settings(data_dir=tmp_path, outbound_allow=LOOPBACK_ALLOWED))
    await channel.send(hook(remote.url("/hook")))
    await channel.close()
    [got] = remote.received
    assert Webhook(SECRET).verify(got.body, got.headers) == {
        "type": "intent.unpaid",
        "order": "A-17",
        "amount": 129.5,
    }
    assert got.headers["webhook-id"] == "msg_2024_abc"
    assert got.headers["content-type"] == "application/json"


async def test_other_secret_does_not_verify(tmp_path: Path, remote: Remote) -> None:
    """A receiver holding a different secret rejects the signature."""
    channel = WebhookChannel(Settings(data_dir=tmp_path, outbound_allow=LOOPBACK_ALLOWED))
    await channel.send(hook(remote.url("/hook")))
    await channel.close()
    [got] = remote.received
    other = "whsec_" + base64.b64encode(b"another secret, 32 bytes long!!!").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(got.body, got.headers)


async def test_extra_headers_cannot_replace_the_signature(tmp_path: Path, remote: Remote) -> None:
    """Headers given with the message are sent, but never in place of the signing headers."""
    channel = WebhookChannel(Settings(data_dir=tmp_path, outbound_allow=LOOPBACK_ALLOWED))
    await channel.send(hook(remote.url("/hook"), headers={"X-Shop": "7", "Webhook-Id": "forged"}))
    await channel.close()
    [got] = remote.received
    assert got.headers["x-shop"] == "7"
    assert got.headers["webhook-id"] == "msg_2024_abc"


async def test_unavailable_then_accepted(tmp_path: Path, remote: Remote) -> None:
    """503 is retryable; the retry carries the same webhook-id and is sent."""
    url = remote.script("/hook", Reply(503), Reply(204))
    channel = WebhookChannel(Settings(data_dir=tmp_path, outbound_allow=LOOPBACK_ALLOWED))
    with pytest.raises(Retryable):
        await channel.send(hook(url))
    await channel.send(hook(url))
    await channel.close()
    assert [r.headers["webhook-id"] for r in remote.received] == ["msg_2024_abc", "msg_2024_abc"]


async def test_rate_limited_honours_retry_after(tmp_path: Path, remote: Remote) -> None:
    """429 with Retry-After is retryable after that many seconds."""
    url = remote.script("/hook", Reply(429, headers={"retry-after": "12"}))
    channel = WebhookChannel(Settings(data_dir=tmp_path, outbound_allow=LOOPBACK_ALLOWED))
    with pytest.raises(Retryable) as limited:
        await channel.send(hook(url))
    await channel.close()
    assert limited.value.retry_after_secs == 12


async def test_bad_request_is_permanent(tmp_path: Path, remote: Remote) -> None:
    """400 refuses this message; the endpoint is not marked gone."""
    channel = WebhookChannel(Settings(data_dir=tmp_path, outbound_allow=LOOPBACK_ALLOWED))
    with pytest.raises(Permanent) as refused:
        await channel.send(hook(remote.script("/hook", Reply(400))))
    await channel.close()
    assert not refused.value.gone


async def test_gone_endpoint(tmp_path: Path, remote: Remote) -> None:
    """410 marks the endpoint gone."""
    channel = WebhookChannel(Settings(data_dir=tmp_path, outbound_allow=LOOPBACK_ALLOWED))
    with pytest.raises(Permanent) as refused:
        await channel.send(hook(remote.script("/hook", Reply(410))))
    await channel.close()
    assert refused.value.gone


async def test_redirect_is_not_followed(tmp_path: Path, remote: Remote) -> None:
    """A 3xx is a refusal: the signed body is not carried to another address."""
    url = remote.script("/hook", Reply(307, headers={"location": remote.url("/elsewhere")}))
    channel = WebhookChannel(Settings(data_dir=tmp_path, outbound_allow=LOOPBACK_ALLOWED))
    with pytest.raises(Permanent):
        await channel.send(hook(url))
    await channel.close()
    assert [r.path for r in remote.received] == ["/hook"]


async def test_timeout_is_retryable(tmp_path: Path, remote: Remote, monkeypatch: pytest.MonkeyPatch) -> None:
    """A receiver that does not answer in time is retried later."""
    monkeypatch.setattr(httpreply, "REPLY_TIMEOUT_SECS", 0.2)
    channel = WebhookChannel(Settings(data_dir=tmp_path, outbound_allow=LOOPBACK_ALLOWED))
    with pytest.raises(Retryable):
        await channel.send(hook(remote.script("/hook", Reply(hang=True))))
    await channel.close()


async def test_receiver_down_is_retryable(tmp_path: Path, dead_url: str) -> None:
    """A refused connection is retried later."""
    channel = WebhookChannel(Settings(data_dir=tmp_path, outbound_allow=LOOPBACK_ALLOWED))
    with pytest.raises(Retryable):
        await channel.send(hook(dead_url))
    await channel.close()


@pytest.mark.parametrize("secret", [None, "whsec_"])
async def test_missing_secret_is_refused(tmp_path: Path, remote: Remote, secret: str | None) -> None:
    """No usable secret, no request: an unsigned webhook would be indistinguishable from a forgery."""
    channel = WebhookChannel(Settings(data_dir=tmp_path, outbound_allow=LOOPBACK_ALLOWED))
    with pytest.raises(Permanent):
        await channel.send(hook(remote.url("/hook"), secret=secret))
    await channel.close()
    assert remote.received == []


async def test_non_ascii_body_verifies(tmp_path: Path, remote: Remote) -> None:
    """A body with Chinese text is sent as the UTF-8 bytes that were signed."""
    channel = WebhookChannel(Settings(data_dir=tmp_path, outbound_allow=LOOPBACK_ALLOWED))
    await channel.send(hook(remote.url("/hook"), data={"商品": "测试"}))
    await channel.close()
    [got] = remote.received
    assert json.loads(got.body) == {"商品": "测试"}
    assert Webhook(SECRET).verify(got.body, got.headers) == {"商品": "测试"}
