"""Livewall's own CLI (``python -m server``) as the benchmark starts it, with bench-only switches.

- ``BENCH_UVLOOP=1`` (``python -m bench.run --uvloop``): set the uvloop policy first. ``server.cli``
  builds its uvicorn config with ``loop="uvloop"`` but runs ``Server.serve()`` inside its own
  ``asyncio.run``, where that setting has no effect: Livewall runs on the stdlib loop while the peers
  (``Server.run()``) get uvloop. This shows what the one-line CLI fix would bring.
- ``BENCH_GC_LOG=1``: print every garbage-collector pause over 5 ms to stderr (``BENCH_VERBOSE=1``
  shows it), to tell GC pauses from fan-out cost at 10,000 connections.
- ``BENCH_LOOP_LAG=1``: print every 100 ms window in which the event loop ran a callback more than
  50 ms late (a thread schedules one every 10 ms), with its wall-clock time, to see when the loop
  stalls and for how long.
- ``BENCH_FANOUT_LOG=1``: print, for every fan-out to 1,000 connections or more, how long it took from
  start to the last connection (wall) and inside its own chunks (writing), with the events it carried;
  and at the end of each measuring window (~1 s) the share of it spent writing, the loop thread's CPU
  share and whether the hub ticks.
- ``BENCH_TASK_DUMP=PATH``: whenever the file PATH appears, delete it and print the stack of every
  asyncio task to stderr, to see what a server that will not stop (or answer) is waiting for.

Without any of them it is exactly ``python -m server``.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
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
            sys.stderr.write(
                f"gc pause gen{info['generation']} {ms:.1f} ms collected={info['collected']} "
                f"at={time.time() * 1000:.0f}\n"
            )

    gc.callbacks.append(callback)


def _watch_loop_lag() -> None:
    import uvloop

    new_loop = uvloop.new_event_loop

    def factory() -> uvloop.Loop:
        loop = new_loop()
        threading.Thread(target=_probe, args=(loop,), name="bench-loop-lag", daemon=True).start()
        return loop

    uvloop.new_event_loop = factory  # server.cli runs the server on uvloop.new_event_loop


def _probe(loop: asyncio.AbstractEventLoop) -> None:
    worst = [0.0]

    def arrived(sent: float) -> None:
        worst[0] = max(worst[0], time.perf_counter() - sent)

    window_start = time.perf_counter()
    while not loop.is_closed():
        try:
            loop.call_soon_threadsafe(arrived, time.perf_counter())
        except RuntimeError:
            return
        time.sleep(0.01)
        if time.perf_counter() - window_start >= 0.1:
            if worst[0] > 0.05:
                sys.stderr.write(f"loop lag {worst[0] * 1000:.0f} ms at={time.time() * 1000:.0f}\n")
            worst[0], window_start = 0.0, time.perf_counter()


def _log_fanouts() -> None:
    from server.realtime import fanout, hub

    init, run = fanout.FanOut.__init__, fanout.FanOut.run
    stats: dict[int, list[float]] = {}

    def logged_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        stats[id(self)] = [time.perf_counter(), 0.0]

    def logged_run(self: Any, budget: int) -> tuple[int, int, bool]:
        t0 = time.perf_counter()
        result = run(self, budget)
        entry = stats.get(id(self))
        if entry is not None:
            entry[1] += time.perf_counter() - t0
            if result[2]:
                del stats[id(self)]
                if len(self.conns) >= 1000:
                    sys.stderr.write(
                        f"fanout conns={len(self.conns)} events={len(self.items)} "
                        f"wall_ms={(time.perf_counter() - entry[0]) * 1000:.1f} "
                        f"writing_ms={entry[1] * 1000:.1f} at={time.time() * 1000:.0f}\n"
                    )
        return result

    fanout.FanOut.__init__ = logged_init  # type: ignore[method-assign]
    fanout.FanOut.run = logged_run  # type: ignore[method-assign]

    measure = hub.Hub._measure

    def logged_measure(self: Any, now: float) -> None:
        ticks = self.ticks
        elapsed = max(now - ticks.window_start, 1e-9)
        writing, cpu = ticks.window_writing / elapsed, (self._cpu_clock() - ticks.window_cpu) / elapsed
        waited = ticks.waited(elapsed, writing, cpu, self._wait_clock())
        measure(self, now)
        sys.stderr.write(
            f"window writing={writing:.2f} loop_cpu={cpu:.2f} waited={waited:.2f} "
            f"ticking={ticks.coalescing} starved={ticks.starved} at={time.time() * 1000:.0f}\n"
        )

    hub.Hub._measure = logged_measure  # type: ignore[method-assign]


def _dump_tasks_on_request(path: str) -> None:
    import io

    import uvloop

    loops: list[asyncio.AbstractEventLoop] = []
    new_loop = uvloop.new_event_loop

    def recorded() -> uvloop.Loop:
        loop = new_loop()
        loops.append(loop)
        return loop

    uvloop.new_event_loop = recorded

    def watch() -> None:
        while True:
            time.sleep(0.2)
            if not os.path.exists(path) or not loops:
                continue
            os.unlink(path)
            out = io.StringIO()
            tasks = list(asyncio.all_tasks(loops[-1]))
            out.write(f"--- {len(tasks)} tasks at={time.time() * 1000:.0f}\n")
            shown: dict[str, int] = {}
            for task in tasks:
                buf = io.StringIO()
                task.print_stack(limit=6, file=buf)
                text = buf.getvalue().split("\n", 1)[-1]  # without the task's own repr
                shown[text] = shown.get(text, 0) + 1
            for text, n in sorted(shown.items(), key=lambda kv: -kv[1]):
                out.write(f"{n} task(s):\n{text}\n")
            sys.stderr.write(out.getvalue())

    threading.Thread(target=watch, daemon=True, name="bench-task-dump").start()


if __name__ == "__main__":
    if os.environ.get("BENCH_UVLOOP"):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if os.environ.get("BENCH_GC_LOG"):
        _log_gc_pauses()
    if os.environ.get("BENCH_LOOP_LAG"):
        _watch_loop_lag()
    if os.environ.get("BENCH_FANOUT_LOG"):
        _log_fanouts()
    if os.environ.get("BENCH_TASK_DUMP"):
        _dump_tasks_on_request(os.environ["BENCH_TASK_DUMP"])
    raise SystemExit(main())
