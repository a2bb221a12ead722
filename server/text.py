"""Cleaning what people type and masking what others may see: pure, a leaf (it imports no domain).

Every domain validates text, ids, emails and phone numbers the same way and masks names, emails and
phone numbers the same way on the big screen, the draw record and the console."""

from __future__ import annotations

import unicodedata

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from server.errors import InvalidInput

# --- text and ids ----------------------------------------------------------------------------------

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


MAX_ID = 2**63 - 1  # the largest BIGINT: beyond it databases fail instead of finding nothing


def clean_id(value: object, field: str = "id") -> int:
    """An object id from a client: a positive integer (JSON booleans are not ids)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_ID:
        raise InvalidInput(f"{field} must be an id (a positive integer)")
    return value


# --- contacts --------------------------------------------------------------------------------------


def clean_phone(raw: object, default_region: str = "CN") -> str | None:
    """A phone number as E.164 (phonenumbers), None when not given; raises bad_phone."""
    if raw in (None, ""):
        return None
    if not isinstance(raw, str) or len(raw) > 32:
        raise InvalidInput("phone must be a phone number", code="bad_phone")
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        raise InvalidInput("that is not a phone number", code="bad_phone") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidInput("that phone number does not exist", code="bad_phone")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def clean_email(raw: object) -> str | None:
    """An email address, normalised (email-validator), None when not given; raises bad_email."""
    if raw in (None, ""):
        return None
    if not isinstance(raw, str) or len(raw) > 254:
        raise InvalidInput("email must be an email address", code="bad_email")
    try:
        return validate_email(raw, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidInput(f"that email address is not valid: {exc}", code="bad_email") from None


# --- masking ------------------------------------------------------------------------------------


def mask_name(name: str | None) -> str:
    """Names as the big screen may show them: 张三 -> 张*, 张小三 -> 张*三, Alice -> A***e."""
    if not name:
        return "***"
    if "@" in name:
        return mask_email(name)
    chars = list(name)
    if len(chars) == 1:
        return "*"
    if len(chars) == 2:
        return chars[0] + "*"
    middle = "*" * min(3, len(chars) - 2)
    return chars[0] + middle + chars[-1]


def mask_email(email: str) -> str:
    """a***@x.com: the first letter of the local part and the domain."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(phone: str) -> str:
    """+8613812345678 -> +86138****5678: the last four digits only."""
    if len(phone) <= 6:
        return "*" * len(phone)
    return phone[:-8] + "****" + phone[-4:] if len(phone) > 8 else phone[:2] + "****" + phone[-2:]
