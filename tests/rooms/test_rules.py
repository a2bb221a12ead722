"""server.rooms.rules: status transitions and validation of what people type."""

from __future__ import annotations

import contextlib

import pytest

from server.errors import Conflict, InvalidInput
from server.rooms import rules
from server.rooms.rules import (
    ANNOUNCEMENT_MAX_CHARS,
    DISPLAY_NAME_MAX_CHARS,
    TITLE_MAX_CHARS,
    clean_announcement,
    clean_display_name,
    clean_text,
    clean_title,
    next_status,
)


def refused(fn: object, value: object) -> InvalidInput:
    assert callable(fn)
    with pytest.raises(InvalidInput) as info:
        fn(value)
    return info.value


# --- status transitions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "command", "after"),
    [("scheduled", "start", "live"), ("live", "end", "ended"), ("ended", "start", "live")],
)
def test_allowed_transitions(current: str, command: str, after: str) -> None:
    """scheduled -> live -> ended, and an ended room may go live again."""
    assert next_status(current, command) == after


@pytest.mark.parametrize(
    ("current", "command"),
    [("scheduled", "end"), ("live", "start"), ("ended", "end"), ("live", "pause"), ("gone", "start")],
)
def test_refused_transitions_conflict(current: str, command: str) -> None:
    """Any other (status, command) pair raises Conflict with code bad_state (HTTP 409)."""
    with pytest.raises(Conflict) as info:
        next_status(current, command)
    assert info.value.code == "bad_state"
    assert info.value.http_status == 409


def test_every_transition_lands_on_a_known_status() -> None:
    """Each allowed command leads to one of STATUSES."""
    for current in rules.STATUSES:
        for command in ("start", "end"):
            with contextlib.suppress(Conflict):
                assert next_status(current, command) in rules.STATUSES


# --- clean_text --------------------------------------------------------------------------------------


def test_text_normalized_to_nfc() -> None:
    """Decomposed input (e + combining acute) is stored composed (é)."""
    assert clean_text("Cafe\u0301", field="t", max_chars=10) == "Caf\u00e9"


def test_nfc_before_length_check() -> None:
    """Length is counted after NFC: 4 composed characters fit a 4-character limit."""
    assert clean_text("e\u0301" * 4, field="t", max_chars=4) == "\u00e9" * 4


def test_text_trimmed() -> None:
    """Leading and trailing whitespace (including ideographic space) is removed."""
    assert clean_text("  \u3000 hello \n ", field="t", max_chars=10) == "hello"


def test_inner_newline_kept() -> None:
    """A newline inside the text is kept (announcements may have lines)."""
    assert clean_text("one\ntwo", field="t", max_chars=10) == "one\ntwo"


def test_cjk_counted_as_characters() -> None:
    """CJK text is measured in characters, not UTF-8 bytes."""
    assert clean_text("直" * 10, field="t", max_chars=10) == "直" * 10
    with pytest.raises(InvalidInput):
        clean_text("直" * 11, field="t", max_chars=10)


def test_emoji_counted_as_characters() -> None:
    """An emoji outside the BMP counts as one character (not two UTF-16 units, not four bytes)."""
    assert clean_text("😀" * 10, field="t", max_chars=10) == "😀" * 10
    with pytest.raises(InvalidInput):
        clean_text("😀" * 11, field="t", max_chars=10)


@pytest.mark.parametrize("ch", ["\x00", "\x07", "\t", "\r", "\x1b", "\x7f", "\x85", "\ud800", "\ue000"])
def test_control_characters_refused(ch: str) -> None:
    """Control, surrogate and private-use characters inside the text are refused (code invalid)."""
    with pytest.raises(InvalidInput) as info:
        clean_text(f"a{ch}b", field="t", max_chars=10)
    assert info.value.code == "invalid"


def test_too_long_refused() -> None:
    """Text over max_chars is refused with code too_long and says the limit."""
    with pytest.raises(InvalidInput) as info:
        clean_text("x" * 11, field="t", max_chars=10)
    assert info.value.code == "too_long"
    assert "10" in info.value.message


@pytest.mark.parametrize("value", [None, "", "   ", "\n\t "])
def test_required_text_empty_refused(value: object) -> None:
    """Missing or whitespace-only required text is refused with code empty."""
    with pytest.raises(InvalidInput) as info:
        clean_text(value, field="t", max_chars=10)
    assert info.value.code == "empty"


@pytest.mark.parametrize("value", [None, "", "  "])
def test_optional_text_empty_is_none(value: object) -> None:
    """Missing or blank optional text becomes None."""
    assert clean_text(value, field="t", max_chars=10, required=False) is None


@pytest.mark.parametrize("value", [42, 1.5, True, ["a"], {"a": 1}])
def test_non_string_refused(value: object) -> None:
    """A value that is not a string is refused with code invalid."""
    with pytest.raises(InvalidInput) as info:
        clean_text(value, field="t", max_chars=10)
    assert info.value.code == "invalid"


# --- the three fields --------------------------------------------------------------------------------


def test_title_limits() -> None:
    """A title may be TITLE_MAX_CHARS long, one line."""
    assert clean_title("t" * TITLE_MAX_CHARS) == "t" * TITLE_MAX_CHARS
    assert refused(clean_title, "t" * (TITLE_MAX_CHARS + 1)).code == "too_long"
    assert refused(clean_title, "two\nlines").code == "invalid"


def test_announcement_limits() -> None:
    """An announcement may be ANNOUNCEMENT_MAX_CHARS long (CJK included) and span lines."""
    assert clean_announcement("直" * ANNOUNCEMENT_MAX_CHARS) == "直" * ANNOUNCEMENT_MAX_CHARS
    assert clean_announcement("line 1\nline 2") == "line 1\nline 2"
    assert refused(clean_announcement, "直" * (ANNOUNCEMENT_MAX_CHARS + 1)).code == "too_long"
    assert refused(clean_announcement, "").code == "empty"


def test_display_name_limits() -> None:
    """A display name is optional, at most DISPLAY_NAME_MAX_CHARS long, one line."""
    assert clean_display_name(None) is None
    assert clean_display_name(" 小明 ") == "小明"
    assert clean_display_name("名" * DISPLAY_NAME_MAX_CHARS) == "名" * DISPLAY_NAME_MAX_CHARS
    assert refused(clean_display_name, "名" * (DISPLAY_NAME_MAX_CHARS + 1)).code == "too_long"
    assert refused(clean_display_name, "a\nb").code == "invalid"
