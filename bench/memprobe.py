"""Where an idle connection's memory goes: Python allocations per connection, by line and by type.

    python -m bench.memprobe --viewers 2000 [--frames 12] [--top 25]

Starts a Livewall server (``demo``) under tracemalloc, joins ``viewers`` over HTTP, takes a snapshot,
opens their WebSockets (hello, welcome, idle), takes another, and prints the difference divided by
the number of connections, grouped by source line and by the allocating traceback's innermost
Livewall/uvicorn/websockets frame. RSS growth per connection is printed beside it (tracemalloc's
own bookkeeping inflates RSS, so read the RSS figure from ``python -m bench.run idle``).

Internally the same module is the server's entry point (``--serve``): it installs a SIGUSR1 handler
that writes a snapshot to the path in ``LW_MEMPROBE_OUT`` and then runs ``server.cli.main``.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench import run


def _serve(argv: list[str], frames: int) -> int:
    tracemalloc.start(frames)
    out = os.environ["LW_MEMPROBE_OUT"]
    counter = [0]

    def dump(_sig: int, _frame: Any) -> None:
        gc.collect()
        counter[0] += 1
        tracemalloc.take_snapshot().dump(f"{out}.{counter[0]}")

    signal.signal(signal.SIGUSR1, dump)
    from server.cli import main

    return main(argv)


def _snapshot(pid: int, out: str, n: int) -> tracemalloc.Snapshot:
    path = Path(f"{out}.{n}")
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.exists():
            size = path.stat().st_size
            time.sleep(0.5)
            if path.stat().st_size == size:
                return tracemalloc.Snapshot.load(str(path))
        time.sleep(0.2)
    raise TimeoutError("no snapshot")


def _where(tb: tracemalloc.Traceback) -> str:
    """The innermost frame in code we could change (server/, uvicorn, websockets, starlette, asyncio)."""
    frames = list(tb)  # oldest call first
    for fr in reversed(frames):
        f = fr.filename
        for key in ("server/", "uvicorn/", "websockets/", "starlette/", "asyncio/", "uvloop"):
            if key in f:
                return f"{f[f.index(key) :]}:{fr.lineno}"
    return f"{frames[-1].filename}:{frames[-1].lineno}"


def probe(viewers: int, frames: int, top: int) -> None:
    run.raise_fd_limit()
    node = run.ensure_loadgen()
    work = Path(tempfile.mkdtemp(prefix="lw-memprobe-"))
    out = str(work / "snap")
    env = {**run._bench_env(), "LW_MEMPROBE_OUT": out}
    port = run.free_port()
    argv = [sys.executable, "-m", "bench.memprobe", "--serve", "--frames", str(frames), "--"]
    argv += ["demo", "--json", "--port", str(port), "--data-dir", str(work / "data")]
    argv += ["--secret-key", "bench-secret"]
    proc = subprocess.Popen(
        argv, cwd=run.REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    links = run._read_links(proc)
    threading.Thread(target=run._drain_pipe, args=(proc.stderr, "livewall"), daemon=True).start()
    server = run.Server(
        "livewall", proc, port, links["api_base"], links["room"], links["host_url"].split("#key=", 1)[1], work
    )
    gens = run.loadgens(node, "livewall", [server], viewers, clients=1)
    try:
        for g in gens:
            g.send(cmd="connect")
        for g in gens:
            g.expect("joined", 300)
        time.sleep(1)
        rss0 = run.rss_kib(proc.pid)
        before = _snapshot(proc.pid, out, 1)
        for g in gens:
            g.send(cmd="open")
        replies = [g.expect("connected", 600) for g in gens]
        time.sleep(3)
        rss1 = run.rss_kib(proc.pid)
        after = _snapshot(proc.pid, out, 2)
        n = sum(r["viewers"] for r in replies) + 1  # the host connection
        diff = after.compare_to(before, "traceback")
        total = sum(d.size_diff for d in diff)
        print(
            f"\n{n} connections: traced Python growth {total / n / 1024:.2f} KiB/conn, "
            f"RSS growth {(rss1 - rss0) / n:.2f} KiB/conn (RSS inflated by tracemalloc)\n"
        )
        by_where: dict[str, list[int]] = {}
        for d in diff:
            w = _where(d.traceback)
            acc = by_where.setdefault(w, [0, 0])
            acc[0] += d.size_diff
            acc[1] += d.count_diff
        print(f"{'bytes/conn':>10} {'objs/conn':>9}  innermost frame in our code or a library we run")
        for w, (size, count) in sorted(by_where.items(), key=lambda kv: -kv[1][0])[:top]:
            print(f"{size / n:>10.0f} {count / n:>9.2f}  {w}")
        if os.environ.get("LW_MEMPROBE_TRACEBACKS"):
            for d in diff[:top]:
                print(f"\n{d.size_diff / n:.0f} B/conn {d.count_diff / n:.2f} objs/conn")
                for fr in list(d.traceback)[-8:]:
                    print(f"    {fr.filename.rsplit('site-packages/', 1)[-1]}:{fr.lineno}")
        print(f"\n{'bytes/conn':>10} {'objs/conn':>9}  allocating line")
        for st in after.compare_to(before, "lineno")[:top]:
            fr = st.traceback[0]
            print(f"{st.size_diff / n:>10.0f} {st.count_diff / n:>9.2f}  {fr.filename}:{fr.lineno}")
    finally:
        for g in gens:
            g.close()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m bench.memprobe", description=__doc__)
    p.add_argument("--viewers", type=int, default=2000)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    if "--" in argv:
        i = argv.index("--")
        args, rest = p.parse_args(argv[:i]), argv[i + 1 :]
    else:
        args, rest = p.parse_args(argv), []
    if args.serve:
        return _serve(rest, args.frames)
    probe(args.viewers, args.frames, args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
