"""One exception tree. The edges translate it: HTTP status + JSON body, or a WebSocket error frame."""

from __future__ import annotations


class LivewallError(Exception):
    """Base of every error a client may see. ``code`` is stable and documented in docs/protocol.md."""

    code = "error"
    http_status = 400

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInput(LivewallError):
    """The request is well-formed but its content is not acceptable."""

    code = "invalid"
    http_status = 422


class BadMessage(LivewallError):
    """A frame that is not a JSON object with a string ``type``."""

    code = "bad_message"
    http_status = 400


class UnknownType(LivewallError):
    """A message type this server does not know."""

    code = "unknown_type"
    http_status = 400


class Unauthorized(LivewallError):
    """No credentials, or forged or expired ones."""

    code = "unauthorized"
    http_status = 401


class Forbidden(LivewallError):
    """Valid credentials that do not allow this action (a viewer trying a host action, the screen writing)."""

    code = "forbidden"
    http_status = 403


class NotFound(LivewallError):
    """The room (or another object) does not exist."""

    code = "not_found"
    http_status = 404


class Conflict(LivewallError):
    """The action does not fit the current state (ending a room that has not started)."""

    code = "conflict"
    http_status = 409


class RateLimited(LivewallError):
    """Too many messages too fast."""

    code = "rate_limited"
    http_status = 429
    retry_after_secs: float | None = None  # sent as Retry-After (whole seconds) when known


class TooManyAttempts(RateLimited):
    """Too many wrong host keys from one address or for one room (or too many checks at once): the
    next attempt is refused, unchecked, until ``retry_after_secs`` have passed."""

    code = "too_many_attempts"

    def __init__(self, message: str, *, retry_after_secs: float) -> None:
        super().__init__(message)
        self.retry_after_secs = retry_after_secs


class TooLarge(LivewallError):
    """A body or frame over the size limit."""

    code = "too_large"
    http_status = 413
