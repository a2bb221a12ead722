"""Signed links in messages: click tracking, the open pixel, unsubscribe, email confirmation; and the
room's outbound webhook secret (derived from the server's key: nothing to store)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from itsdangerous import URLSafeSerializer

DEFAULT_UTM_SOURCE = "livewall"


def with_utm(url: str, params: Mapping[str, str | None]) -> str:
    """``url`` with the UTM parameters it does not carry yet (the link's own are kept)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {k for k, _ in query}
    query += [(k, v) for k, v in params.items() if v and k not in present]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def webhook_secret(secret_key: str, room_id: str) -> str:
    """The room's outbound webhook signing secret, derived from the server's key (nothing to store)."""
    raw = hmac.new(secret_key.encode(), f"followup-webhook:{room_id}".encode(), hashlib.sha256)
    return "whsec_" + base64.b64encode(raw.digest()).decode()


class Links:
    """Signed links: click tracking, open pixel, unsubscribe, email confirmation."""

    def __init__(self, secret_key: str, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.secret_key = secret_key
        self._track = URLSafeSerializer(secret_key, salt="livewall.track")
        self._contact = URLSafeSerializer(secret_key, salt="livewall.contact")

    def click(self, message_id: int, url: str) -> str:
        return f"{self.base_url}/t/{self._track.dumps([message_id, url])}"

    def pixel(self, message_id: int) -> str:
        return f"{self.base_url}/t/o/{self._track.dumps([message_id])}"

    def unsubscribe(self, contact_id: str, channel: str) -> str:
        return f"{self.base_url}/u/{self._contact.dumps([contact_id, channel])}"

    def confirm(self, contact_id: str, email: str) -> str:
        return f"{self.base_url}/optin/{self._contact.dumps([contact_id, 'confirm', email])}"

    def read_track(self, token: str) -> list[Any]:
        value = self._track.loads(token)
        if not isinstance(value, list) or not value or not isinstance(value[0], int):
            raise ValueError("malformed tracking token")
        return value

    def read_contact(self, token: str) -> list[Any]:
        value = self._contact.loads(token)
        if not isinstance(value, list) or len(value) < 2 or not all(isinstance(v, str) for v in value):
            raise ValueError("malformed contact token")
        return value
