"""Jobs for tests/test_sandbox.py, run in sandbox workers: module-level functions, JSON in and out.
Kept apart from the tests so that a worker imports nothing heavy (pytest) before its first job."""

from __future__ import annotations

import os
import time
from typing import Any

from server.errors import InvalidInput, NotFound


def echo(value: Any) -> Any:
    return value


def pid() -> int:
    return os.getpid()


def spin() -> None:
    while True:
        pass


def slow_echo(value: Any, secs: float) -> Any:
    time.sleep(secs)
    return value


def hog(mb: int) -> int:
    return len(bytearray(mb * 1024 * 1024))


def shout(n: int) -> str:
    return "x" * n


def refuse(kind: str) -> None:
    raise (NotFound if kind == "not_found" else InvalidInput)("no such thing", code=kind)


def crash() -> None:
    os._exit(3)


def settings_seen() -> list[str]:
    return sorted(k for k in os.environ if k.startswith("LIVEWALL_"))
