"""SMS through an HTTP gateway (``LIVEWALL_SMS_URL``), a thin adapter in front of any SMS provider.

The gateway contract, one request per message::

    POST <sms_url>
    Authorization: Bearer <sms_token>        (when a token is configured)
    Idempotency-Key: <idem_key>              (the same key on every retry of one message)
    Content-Type: application/json

    {"to": "+8613800138000", "text": "Your order ...", "id": "<idem_key>"}

- 2xx: accepted; an optional JSON body ``{"id": "..."}`` gives the provider's message id;
- 429 or 503 with ``Retry-After`` (seconds or HTTP date): try again after that long;
- other 5xx, 408, timeouts, refused connections: try again later;
- 404 or 410: the number does not exist; it is not sent to again;
- any other status: this message is refused, not retried.

A gateway must treat a repeated ``Idempotency-Key`` as the same message: a retry after a lost reply
must not text the viewer twice.
"""

from __future__ import annotations

import re

import httpx
import orjson

from server import netguard
from server.config import Settings
from server.followup.channels import Outgoing, Permanent, Sent
from server.followup.channels.httpreply import new_client, post

E164 = re.compile(r"\+[1-9][0-9]{1,14}")


class SmsChannel:
    """Texts through the configured HTTP SMS gateway."""

    name = "sms"

    def __init__(self, settings: Settings) -> None:
        if not settings.sms_url:
            raise ValueError("SmsChannel needs sms_url")
        allow = netguard.allow_list(settings.outbound_allow)
        try:  # a gateway on a literal local address is refused at start, not message by message
            netguard.check_shape(settings.sms_url, allow, what="LIVEWALL_SMS_URL")
        except netguard.Refused as exc:
            raise ValueError(exc.message) from None
        self._url = settings.sms_url
        self._token = settings.sms_token
        self._client = new_client(allow)

    async def send(self, message: Outgoing) -> Sent:
        """Post one text to the gateway; see the module docstring for how replies are read."""
        if not E164.fullmatch(message.to):
            raise Permanent(f"sms: {message.to!r} is not an E.164 number")
        headers = {"content-type": "application/json", "idempotency-key": message.idem_key}
        if self._token:
            headers["authorization"] = f"Bearer {self._token}"
        body = orjson.dumps({"to": message.to, "text": message.text, "id": message.idem_key})
        response = await post(self._client, self._url, content=body, headers=headers, what="sms")
        return Sent(provider_id=_provider_id(response))

    async def close(self) -> None:
        """Close the gateway connections."""
        await self._client.aclose()


def _provider_id(response: httpx.Response) -> str | None:
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    provider_id = data.get("id") if isinstance(data, dict) else None
    return str(provider_id) if provider_id not in (None, "") else None
