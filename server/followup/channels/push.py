"""Web Push (RFC 8030) to a browser's push subscription, encrypted (RFC 8291) and VAPID-signed (RFC 8292).

pywebpush encrypts the payload and py-vapid signs the claims; the request itself goes out on this
process's httpx client, on the event loop, so a slow push service never occupies a thread and its
replies are read exactly as the SMS and webhook channels read theirs (``httpreply``).

The VAPID key is ``LIVEWALL_VAPID_PRIVATE_KEY`` (a PEM file) or, by default, ``vapid.pem`` in the data
directory, generated once. Browsers subscribe with its public half (``public_key_b64url``); a new key
invalidates every existing subscription, so the file must be kept like the secret key.

The payload the service worker receives: ``{"title", "body", "url", "tag"}`` (``tag`` is the
idempotency key, so a repeated notification replaces the first instead of stacking).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02, VapidException  # type: ignore[import-untyped]
from pywebpush import WebPusher, WebPushException  # type: ignore[import-untyped]

from server import netguard
from server.config import Settings
from server.followup.channels import Outgoing, Permanent, Sent
from server.followup.channels.httpreply import new_client, post

VAPID_KEY_FILE = "vapid.pem"
# How long the push service holds a message for a phone that is offline: a day-old follow-up is
# still worth showing, an older one is noise.
PUSH_TTL_SECS = 24 * 3600
# VAPID tokens may live up to 24 h (RFC 8292 2); 12 h leaves room for clock skew at the service.
VAPID_TOKEN_SECS = 12 * 3600


def load_or_create_vapid_key(settings: Settings) -> ec.EllipticCurvePrivateKey:
    """The VAPID signing key: the configured PEM file, else ``vapid.pem`` in data_dir (made once, 0600)."""
    if settings.vapid_private_key:
        return _read_key(Path(settings.vapid_private_key))
    path = settings.data_dir / VAPID_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # Written aside (0600), then linked into place: the name appears only with the whole key
        # behind it. Of several processes starting together on one data directory (servers and
        # workers on a shared volume), the first link wins and every one of them reads that key.
        fd, aside = tempfile.mkstemp(dir=path.parent, prefix=".vapid-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
            with contextlib.suppress(FileExistsError):
                os.link(aside, path)
        finally:
            os.unlink(aside)
    return _read_key(path)


def public_key_b64url(settings: Settings) -> str:
    """The application server key for ``PushManager.subscribe``: the uncompressed point, base64url."""
    return _b64url(_public_point(load_or_create_vapid_key(settings)))


class PushChannel:
    """Sends notifications to browser push subscriptions."""

    name = "push"

    def __init__(self, settings: Settings, *, allow_http: bool = False) -> None:
        self._vapid = Vapid02(load_or_create_vapid_key(settings))
        self._subject = settings.vapid_subject
        # Real push services are all https; an http endpoint is a stored subscription pointing a
        # request from this server somewhere it should not go. Tests run a plain local service.
        self._allow_http = allow_http
        self._client = new_client(netguard.allow_list(settings.outbound_allow))

    async def send(self, message: Outgoing) -> Sent:
        """Encrypt and post one notification to the subscription's endpoint."""
        endpoint = urlsplit(message.to)
        schemes = ("https", "http") if self._allow_http else ("https",)
        if endpoint.scheme not in schemes or not endpoint.netloc:
            raise Permanent(f"push: {message.to!r} is not a push service endpoint", gone=True)
        payload = orjson.dumps(
            {
                "title": message.subject,
                "body": message.text,
                "url": (message.data or {}).get("url"),
                "tag": message.idem_key,
            }
        )
        body = _encrypt(message, payload)
        claims = {
            "sub": self._subject,
            "aud": f"{endpoint.scheme}://{endpoint.netloc}",
            "exp": int(time.time()) + VAPID_TOKEN_SECS,
        }
        try:
            authorization: dict[str, str] = self._vapid.sign(claims)
        except VapidException as exc:  # vapid_subject is not a mailto: or https: URL
            raise Permanent(f"push: VAPID claims refused: {exc}") from exc
        headers = {
            **authorization,
            "content-encoding": "aes128gcm",
            "content-type": "application/octet-stream",
            "ttl": str(PUSH_TTL_SECS),
            "urgency": "normal",
            # A retry after a lost reply replaces the copy still queued at the service instead of
            # adding a second one (RFC 8030 5.4: at most 32 base64url characters).
            "topic": _b64url(hashlib.sha256(message.idem_key.encode()).digest())[:32],
        }
        response = await post(self._client, message.to, content=body, headers=headers, what="push")
        return Sent(provider_id=response.headers.get("location"))

    async def close(self) -> None:
        """Close the push service connections."""
        await self._client.aclose()


def _encrypt(message: Outgoing, payload: bytes) -> bytes:
    keys = message.push_keys or {}
    if not keys.get("p256dh") or not keys.get("auth"):
        raise Permanent("push: the subscription has no keys", gone=True)
    subscription = {"endpoint": message.to, "keys": {"p256dh": keys["p256dh"], "auth": keys["auth"]}}
    try:
        encoded: Any = WebPusher(subscription).encode(payload, content_encoding="aes128gcm")
    except (WebPushException, binascii.Error, ValueError) as exc:
        raise Permanent(f"push: the subscription's keys are unusable: {exc}", gone=True) from exc
    return bytes(encoded["body"])


def _read_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"{path.name}: a VAPID key must be an EC P-256 private key")
    return key


def _public_point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
