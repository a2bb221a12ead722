"""Pure room rules: status transitions and the validation of what people type."""

from __future__ import annotations

import unicodedata

from server.errors import Conflict, InvalidInput

STATUSES = ("scheduled", "live", "ended")
TITLE_MAX_CHARS = 200
ANNOUNCEMENT_MAX_CHARS = 500
DISPLAY_NAME_MAX_CHARS = 40

# scheduled -> live -> ended; a host may go live again after ending (a second part of the show).
_TRANSITIONS = {("scheduled", "start"): "live", ("ended", "start"): "live", ("live", "end"): "ended"}


def next_status(current: str, command: str) -> str:
    """The status after ``command`` ("start" or "end"), or Conflict if it makes no sense now."""
    try:
        return _TRANSITIONS[(current, command)]
    except KeyError:
        raise Conflict(f"cannot {command} a room that is {current}", code="bad_state") from None


# Bidirectional overrides and isolates let a name or comment display reversed or disguised text.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_text(value: object, *, field: str, max_chars: int, required: bool = True) -> str | None:
    """Normalize user text (NFC, trimmed, no control characters) and enforce its length in characters."""
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string")
    text = unicodedata.normalize("NFC", value).strip() if value is not None else ""
    # Text made only of spaces and invisible format characters (zero-width spaces) counts as empty.
    if not any(not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text):
        if required:
            raise InvalidInput(f"{field} is required", code="empty")
        return None
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Co") and ch not in "\n" for ch in text):
        raise InvalidInput(f"{field} contains control characters")
    if any(ch in _BIDI_CONTROLS for ch in text):
        raise InvalidInput(f"{field} contains text-direction controls")
    if len(text) > max_chars:
        raise InvalidInput(f"{field} is {len(text)} characters; at most {max_chars}", code="too_long")
    return text


def clean_title(value: object) -> str:
    text = clean_text(value, field="title", max_chars=TITLE_MAX_CHARS)
    assert text is not None
    if "\n" in text:
        raise InvalidInput("title must be one line")
    return text


def clean_announcement(value: object) -> str:
    text = clean_text(value, field="text", max_chars=ANNOUNCEMENT_MAX_CHARS)
    assert text is not None
    return text


def clean_display_name(value: object) -> str | None:
    """A display name, or None for an anonymous viewer."""
    text = clean_text(value, field="name", max_chars=DISPLAY_NAME_MAX_CHARS, required=False)
    if text is not None and "\n" in text:
        raise InvalidInput("name must be one line")
    return text


MAX_ID = 2**63 - 1  # the largest BIGINT: beyond it databases fail instead of finding nothing


def clean_id(value: object, field: str = "id") -> int:
    """An object id from a client: a positive integer (JSON booleans are not ids)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_ID:
        raise InvalidInput(f"{field} must be an id (a positive integer)")
    return value
