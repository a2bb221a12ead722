"""Pure rules of accounts: whose role counts in a room, what a valid email, name or password is."""

from __future__ import annotations

import re

from server.auth import MemberRole
from server.errors import InvalidInput

# A studio session lasts this long without use; every use moves it on (sliding), up to the absolute
# limit, after which the person signs in again.
SESSION_IDLE_SECS = 14 * 24 * 3600
SESSION_MAX_SECS = 60 * 24 * 3600
# One-time links (sign-in and password reset) are short-lived and used once.
LINK_SECS = 30 * 60
PASSWORD_MIN = 10
PASSWORD_MAX = 200

_EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


def effective_role(org_role: str | None, room_override: str | None) -> MemberRole | None:
    """The role a member has in one room: the room's override if there is one, else their
    organisation role; None: not a member (no access)."""
    chosen = room_override or org_role
    if chosen is None:
        return None
    try:
        return MemberRole(chosen)
    except ValueError:
        return None


def parse_role(value: object) -> MemberRole:
    if not isinstance(value, str):
        raise InvalidInput("role: one of " + ", ".join(r.value for r in MemberRole), code="bad_role")
    try:
        return MemberRole(value)
    except ValueError:
        raise InvalidInput(
            "role: one of " + ", ".join(r.value for r in MemberRole), code="bad_role"
        ) from None


def clean_email(value: object) -> str:
    if not isinstance(value, str) or not _EMAIL.match(value.strip()):
        raise InvalidInput("email: a valid address such as name@example.com", code="bad_email")
    return value.strip().lower()


def clean_name(value: object, fallback: str) -> str:
    if value is None or value == "":
        return fallback.split("@")[0][:80]
    if not isinstance(value, str) or len(value.strip()) > 80:
        raise InvalidInput("name: at most 80 characters", code="bad_name")
    return value.strip() or fallback.split("@")[0][:80]


def check_password(value: object) -> str:
    if not isinstance(value, str) or not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        raise InvalidInput(f"password: {PASSWORD_MIN} to {PASSWORD_MAX} characters", code="weak_password")
    if value.strip() == "" or len(set(value)) < 4:
        raise InvalidInput("password: too simple", code="weak_password")
    return value
