"""Push channel against a local push service, with a real subscription keypair: encryption, VAPID, replies."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from server.config import Settings
from server.followup.channels import Outgoing, Permanent, Retryable
from server.followup.channels.push import PushChannel, load_or_create_vapid_key, public_key_b64url
from tests.followup.channels.conftest import LOOPBACK_ALLOWED, Remote, Reply


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """What a browser holds for one subscription: its ECDH key and auth secret."""

    key: ec.EllipticCurvePrivateKey
    auth: bytes

    @classmethod
    def new(cls) -> Browser:
        return cls(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))

    @property
    def keys(self) -> dict[str, str]:
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"p256dh": b64url(point), "auth": b64url(self.auth)}

    def decrypt(self, body: bytes) -> dict[str, object]:
        plain = http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth, version="aes128gcm")
        data: dict[str, object] = json.loads(plain)
        return data


def note(endpoint: str, browser: Browser, **overrides: object) -> Outgoing:
    values: dict[str, object] = {
        "idem_key": "m-99",
        "to": endpoint,
        "subject": "Flash sale",
        "text": "20% off for the next hour",
        "push_keys": browser.keys,
        "data": {"url": "https://shop.example/r/1"},
    }
    values.update(overrides)
    return Outgoing(**values)  # type: ignore[arg-type]


def channel(tmp_path: Path) -> PushChannel:
    return PushChannel(
        Settings(data_dir=tmp_path, vapid_subject="mailto:ops@shop.example", outbound_allow=LOOPBACK_ALLOWED),
        allow_http=True,
    )


async def test_delivered_encrypted_and_signed(tmp_path: Path, remote: Remote) -> None:
    """201 is sent; the subscriber decrypts the payload and the VAPID token verifies with our key."""
    browser = Browser.new()
    url = remote.script("/push/abc", Reply(201, headers={"location": "/m/7"}))
    push = channel(tmp_path)
    sent = await push.send(note(url, browser))
    await push.close()
    [got] = remote.received
    assert sent.provider_id == "/m/7"
    assert browser.decrypt(got.body) == {
        "title": "Flash sale",
        "body": "20% off for the next hour",
        "url": "https://shop.example/r/1",
        "tag": "m-99",
    }
    assert got.headers["content-encoding"] == "aes128gcm"
    assert got.headers["ttl"] == str(24 * 3600)
    assert got.headers["urgency"] == "normal"
    assert 0 < len(got.headers["topic"]) <= 32
    authorization = got.headers["authorization"]
    assert Vapid02.verify(authorization)
    token = dict(part.split("=", 1) for part in authorization.split(" ", 1)[1].split(","))
    assert token["k"] == public_key_b64url(Settings(data_dir=tmp_path))
    claims = json.loads(unb64url(token["t"].split(".")[1]))
    assert claims["aud"] == remote.base
    assert claims["sub"] == "mailto:ops@shop.example"


async def test_expired_subscription_is_gone(tmp_path: Path, remote: Remote) -> None:
    """410 means the subscription expired: permanent and gone."""
    push = channel(tmp_path)
    with pytest.raises(Permanent) as refused:
        await push.send(note(remote.script("/push/old", Reply(410)), Browser.new()))
    await push.close()
    assert refused.value.gone


async def test_unknown_subscription_is_gone(tmp_path: Path, remote: Remote) -> None:
    """404 is a subscription the service no longer knows: gone."""
    push = channel(tmp_path)
    with pytest.raises(Permanent) as refused:
        await push.send(note(remote.script("/push/old", Reply(404)), Browser.new()))
    await push.close()
    assert refused.value.gone


async def test_service_unavailable_is_retryable(tmp_path: Path, remote: Remote) -> None:
    """503 is retried; the next attempt is sent."""
    url = remote.script("/push/abc", Reply(503), Reply(201))
    push = channel(tmp_path)
    with pytest.raises(Retryable):
        await push.send(note(url, Browser.new()))
    await push.send(note(url, Browser.new()))
    await push.close()


async def test_rate_limited_honours_retry_after(tmp_path: Path, remote: Remote) -> None:
    """429 with Retry-After is retryable after that many seconds."""
    push = channel(tmp_path)
    with pytest.raises(Retryable) as limited:
        await push.send(
            note(remote.script("/push/abc", Reply(429, headers={"retry-after": "5"})), Browser.new())
        )
    await push.close()
    assert limited.value.retry_after_secs == 5


async def test_payload_too_large_is_permanent(tmp_path: Path, remote: Remote) -> None:
    """413 refuses this message; the subscription stays."""
    push = channel(tmp_path)
    with pytest.raises(Permanent) as refused:
        await push.send(note(remote.script("/push/abc", Reply(413)), Browser.new()))
    await push.close()
    assert not refused.value.gone


async def test_subscription_without_keys_is_gone(tmp_path: Path, remote: Remote) -> None:
    """A subscription without usable keys cannot be encrypted to; nothing is sent."""
    push = channel(tmp_path)
    with pytest.raises(Permanent) as missing:
        await push.send(note(remote.url("/push/abc"), Browser.new(), push_keys=None))
    with pytest.raises(Permanent) as broken:
        await push.send(
            note(remote.url("/push/abc"), Browser.new(), push_keys={"p256dh": "AAAA", "auth": "AAAA"})
        )
    await push.close()
    assert missing.value.gone and broken.value.gone
    assert remote.received == []


async def test_plain_http_endpoint_is_refused_by_default(tmp_path: Path, remote: Remote) -> None:
    """Push services are https; a stored http endpoint is not called."""
    push = PushChannel(Settings(data_dir=tmp_path))
    with pytest.raises(Permanent) as refused:
        await push.send(note(remote.url("/push/abc"), Browser.new()))
    await push.close()
    assert refused.value.gone
    assert remote.received == []


def test_key_file_created_once_and_reused(tmp_path: Path) -> None:
    """vapid.pem is created once, readable by the owner only, and the same key is used after."""
    settings = Settings(data_dir=tmp_path / "data")
    first = public_key_b64url(settings)
    path = tmp_path / "data" / "vapid.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    content = path.read_bytes()
    assert public_key_b64url(settings) == first
    assert path.read_bytes() == content
    assert len(unb64url(first)) == 65 and unb64url(first)[0] == 4  # uncompressed P-256 point


def _start_together(settings: Settings, starters: int) -> tuple[set[int], list[Exception]]:
    """Load the key from ``starters`` threads released at once: the keys they got, and their errors."""
    barrier = threading.Barrier(starters)
    keys: set[int] = set()
    errors: list[Exception] = []

    def start() -> None:
        barrier.wait()
        try:
            keys.add(load_or_create_vapid_key(settings).private_numbers().private_value)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(starters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return keys, errors


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    """Starters racing on one data directory (a shared volume) never read a half-written key."""
    # Threads stand in for processes: the race is in the file system, and a barrier lines them up
    # far more tightly than process starts would. Before the fix, over half the rounds failed.
    for round_ in range(20):
        settings = Settings(data_dir=tmp_path / f"data{round_}")
        keys, errors = _start_together(settings, 8)
        assert errors == [] and len(keys) == 1, (errors, len(keys))
        assert [p.name for p in settings.data_dir.iterdir()] == ["vapid.pem"]


def test_configured_key_file_is_used(tmp_path: Path) -> None:
    """vapid_private_key names the PEM to use; none is generated in the data directory."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "mine.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    settings = Settings(data_dir=tmp_path / "data", vapid_private_key=str(pem))
    assert load_or_create_vapid_key(settings).private_numbers() == key.private_numbers()
    assert not (tmp_path / "data" / "vapid.pem").exists()


def test_non_p256_key_is_refused(tmp_path: Path) -> None:
    """A key on another curve cannot sign VAPID tokens and is refused at start."""
    pem = tmp_path / "wrong.pem"
    pem.write_bytes(
        ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(ValueError):
        load_or_create_vapid_key(Settings(data_dir=tmp_path, vapid_private_key=str(pem)))
