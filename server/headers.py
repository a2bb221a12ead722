"""Security headers on every HTTP response (a pure ASGI middleware).

- ``Content-Security-Policy``: scripts, styles, fonts, frames and connections from this origin only,
  no ``'unsafe-inline'`` and no ``eval``; product images may come from any http(s) shop;
- ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY`` everywhere but the big screen, which OBS
  and dashboards embed (``LIVEWALL_SCREEN_FRAME_ANCESTORS``, default ``*``);
- ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: strict-origin-when-cross-origin``;
- ``Strict-Transport-Security`` when the public URL is https (``LIVEWALL_HSTS=false`` turns it off).

A response that sets one of these itself keeps its own.
"""

from __future__ import annotations

import functools
import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.config import Settings

# A year: what browsers' preload lists ask for; a site that goes back to http must wait this long.
HSTS_MAX_AGE_SECS = 365 * 24 * 3600
SCREEN_PREFIX = "/screen/"
# A Host header fit to be named in the policy (anything else gets 'self' alone).
_HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def content_security_policy(frame_ancestors: str, websocket_origin: str | None = None) -> str:
    """The policy of every response; ``websocket_origin`` (``wss://host``) is named for browsers
    whose ``'self'`` does not cover WebSockets."""
    connect = "'self'" + (f" {websocket_origin}" if websocket_origin else "")
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob: https: http:",
            f"connect-src {connect}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            f"frame-ancestors {frame_ancestors}",
        )
    )


class HeaderPolicy:
    """Which security headers a request's response gets (by its path, scheme and Host)."""

    def __init__(self, settings: Settings) -> None:
        ancestors = settings.screen_frame_ancestors.strip()
        if not ancestors or re.search(r"[;,\r\n]", ancestors):
            raise ValueError(
                "LIVEWALL_SCREEN_FRAME_ANCESTORS: a space-separated list of sources such as "
                f"\"* or 'self' https://obs.example\", got {settings.screen_frame_ancestors!r}"
            )
        self.screen_ancestors = ancestors
        https = (settings.public_url or "").lower().startswith("https://")
        self.hsts = f"max-age={HSTS_MAX_AGE_SECS}" if https and settings.hsts else None
        self._cached = functools.lru_cache(maxsize=64)(self._headers)

    def for_request(self, scope: Scope) -> tuple[tuple[str, str], ...]:
        """The headers for one request."""
        host = ""
        for name, value in scope.get("headers", ()):
            if name == b"host":
                host = value.decode("latin-1")
                break
        screen = str(scope.get("path", "")).startswith(SCREEN_PREFIX)
        return self._cached(screen, host, scope.get("scheme") == "https")

    def _headers(self, screen: bool, host: str, secure: bool) -> tuple[tuple[str, str], ...]:
        ws = f"{'wss' if secure else 'ws'}://{host}" if _HOST.fullmatch(host) else None
        ancestors = self.screen_ancestors if screen else "'none'"
        headers = [
            ("content-security-policy", content_security_policy(ancestors, ws)),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "strict-origin-when-cross-origin"),
        ]
        if not screen:
            headers.append(("x-frame-options", "DENY"))
        if self.hsts:
            headers.append(("strict-transport-security", self.hsts))
        return tuple(headers)


class SecurityHeaders:
    """Adds the policy's headers to every HTTP response of ``app``."""

    # WebSocket connections pass through untouched: the realtime fast path may skip this middleware.
    http_only = True

    def __init__(self, app: ASGIApp, policy: HeaderPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.policy.for_request(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
