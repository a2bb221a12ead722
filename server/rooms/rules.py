"""Pure room rules: status transitions and the validation of what people type."""

from __future__ import annotations

from server.errors import Conflict, InvalidInput
from server.text import clean_text

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
