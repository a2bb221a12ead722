"""The library versions Livewall's private hooks were written for, checked before those hooks load.

``server/realtime/uvicorn_ws.py`` subclasses uvicorn's sans-I/O WebSocket protocol and inspects the
generator that websockets' parser runs; ``websocket_fast_path`` reads Starlette's route internals.
None of that is public API, so pyproject.toml bounds those three libraries, and this module refuses
to start on a version outside the bounds with one clear sentence instead of an AttributeError deep in
a connection (or, worse, a silent leak). The bounds are read from the installed package's own
metadata: pyproject.toml is the one place that states them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib import metadata

from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version

DISTRIBUTION = "livewall"
# The libraries whose internals we touch (see the module docstring).
GUARDED = ("uvicorn", "websockets", "starlette")


class UnsupportedDependency(RuntimeError):
    """An installed library is outside the versions Livewall supports."""


def _declared() -> list[Requirement]:
    try:
        lines = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:  # a source tree on sys.path without an install
        return []
    return [Requirement(line) for line in lines if Requirement(line).marker is None]


def problems(
    requirements: Iterable[Requirement],
    installed: Callable[[str], str | None],
    guarded: Iterable[str] = GUARDED,
) -> list[str]:
    """One sentence per guarded library whose installed version the requirements do not allow."""
    wanted = {req.name.lower(): req for req in requirements}
    found: list[str] = []
    for name in guarded:
        req = wanted.get(name)
        if req is None or not req.specifier:
            continue
        version = installed(name)
        if version is None:
            found.append(f"{name} is not installed; Livewall needs {name}{req.specifier}")
            continue
        try:
            ok = req.specifier.contains(Version(version), prereleases=True)
        except InvalidVersion:
            ok = False
        if not ok:
            found.append(
                f"{name} {version} is installed, but Livewall supports {name}{req.specifier} "
                "(it relies on that version's internals)"
            )
    return found


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def require_supported() -> None:
    """Raise UnsupportedDependency, naming each library and the fix, if a guarded version is off."""
    found = problems(_declared(), _installed)
    if found:
        raise UnsupportedDependency(
            "; ".join(found) + ". Install the tested versions with `pip install -c constraints.txt .`"
        )
