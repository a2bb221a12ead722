"""Where the surfaces' files are: inside the installed package (wheel) or at the repository root."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def web_root() -> Path:
    """The folder holding screen/, host_console/ and static/."""
    installed = _PACKAGE / "_web"
    if (installed / "static").is_dir():
        return installed
    return _PACKAGE.parent
