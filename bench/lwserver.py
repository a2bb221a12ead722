"""Livewall's own CLI (``python -m server``) as the benchmark starts it, with two bench-only switches.

- ``BENCH_UVLOOP=1`` (``python -m bench.run --uvloop``): set the uvloop policy first. ``server.cli``
  builds its uvicorn config with ``loop="uvloop"`` but runs ``Server.serve()`` inside its own
  ``asyncio.run``, where that setting has no effect: Livewall runs on the stdlib loop while the peers
  (``Server.run()``) get uvloop. This shows what the one-line CLI fix would bring.
- ``BENCH_GC_LOG=1``: print every garbage-collector pause over 5 ms to stderr (``BENCH_VERBOSE=1``
  shows it), to tell GC pauses from fan-out cost at 10,000 connections.

Without either it is exactly ``python -m server``.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from typing import Any

from server.cli import main


def _log_gc_pauses() -> None:
    started: list[float] = [0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        ms = (time.perf_counter() - started[0]) * 1000
        if ms > 5:
            sys.stderr.write(f"gc pause gen{info['generation']} {ms:.1f} ms collected={info['collected']}\n")

    gc.callbacks.append(callback)


if __name__ == "__main__":
    if os.environ.get("BENCH_UVLOOP"):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if os.environ.get("BENCH_GC_LOG"):
        _log_gc_pauses()
    raise SystemExit(main())
