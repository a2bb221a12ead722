"""Outbound webhooks, signed as Standard Webhooks (https://www.standardwebhooks.com/).

Each message is one ``POST`` to ``message.to`` whose body is ``message.data`` as JSON, with
``webhook-id`` (the idempotency key, the same on every retry, so receivers can drop repeats),
``webhook-timestamp`` and ``webhook-signature`` (``v1,<HMAC-SHA256>`` under the endpoint's ``whsec_``
secret, ``message.secret``). Receivers verify with any Standard Webhooks library. Replies are read as
for SMS: 2xx sent; 408, 429, 5xx and network failures retried; 404 and 410 gone; others refused.
"""

from __future__ import annotations

import binascii
from datetime import UTC, datetime

import orjson
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from server import netguard
from server.config import Settings
from server.followup.channels import Outgoing, Permanent, Sent
from server.followup.channels.httpreply import new_client, post


class WebhookChannel:
    """Posts signed JSON to the endpoint a message names."""

    name = "webhook"

    def __init__(self, settings: Settings) -> None:
        # Endpoints and secrets travel with each message; the client checks each one's address.
        self._client = new_client(netguard.allow_list(settings.outbound_allow))

    async def send(self, message: Outgoing) -> Sent:
        """Sign and post ``message.data`` to ``message.to``."""
        if not message.secret:
            raise Permanent("webhook: no signing secret for this endpoint")
        try:
            body = orjson.dumps(message.data or {}).decode()
        except TypeError as exc:
            raise Permanent(f"webhook: payload is not JSON: {exc}") from exc
        try:
            signer = Webhook(message.secret)
        except (binascii.Error, ValueError, EmptyWebhookSecretError) as exc:
            raise Permanent("webhook: the signing secret is not a whsec_ base64 key") from exc
        now = datetime.now(UTC)
        headers = {
            **{key.lower(): value for key, value in message.headers.items()},
            "content-type": "application/json",
            "webhook-id": message.idem_key,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(message.idem_key, now, body),
        }
        await post(self._client, message.to, content=body.encode(), headers=headers, what="webhook")
        return Sent(provider_id=message.idem_key)

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()
