"""Benchmark scenarios: Livewall against python-socketio and a naive Starlette loop, in one run.

    python -m bench.run fanout --viewers 1000,5000,10000 --rate 10 --duration 15 --runs 3
    python -m bench.run blast --viewers 1000
    python -m bench.run idle --viewers 10000
    python -m bench.run comments --viewers 2000 --comments 500
    python -m bench.run reconnect --viewers 10000            (Livewall + redis-server; restarts the server)
    python -m bench.run redis2 --viewers 20000               (two Livewall processes sharing redis-server)
    python -m bench.run claim --viewers 10000 --units 100    (a claim rush: see bench/claim.py)
    python -m bench.run flood --viewers 1000                 (one flooding client: see bench/flood.py)

Every scenario starts its servers as subprocesses on free ports, drives them with the Node load
generator in bench/loadgen (one or more processes), samples the server's CPU and RSS from /proc,
prints a table and writes bench/results/SCENARIO.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import queue
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
LOADGEN = BENCH / "loadgen"
SERVERS = ("livewall", "socketio", "naive")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
HMAX = 600000  # the load generator's histogram: 0.1 ms buckets
LIVEWALL_MODULE = ["bench.lwserver"]  # exactly `python -m server`, plus bench-only switches


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit; children (servers, Node) inherit it."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- /proc sampling -----------------------------------------------------------------------------


def cpu_secs(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# --- servers ------------------------------------------------------------------------------------


@dataclass
class Server:
    """One server process we started."""

    kind: str
    proc: subprocess.Popen[str]
    port: int
    api_base: str
    room: str
    host_key: str
    data_dir: Path
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    screen_key: str = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 10) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _dump_stuck(self.proc.pid, f"did not exit within {timeout:g} s of SIGTERM")
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def _bench_env(*, lift_limits: bool = True) -> dict[str, str]:
    # The benchmark's host publishes faster than a person: lift the per-connection inbound limit
    # (server/config.py INBOUND_*) for the benchmark's servers only (not for the comment storm,
    # which must show the default limits holding).
    env = {**os.environ, "LIVEWALL_LOG_LEVEL": "warning", "PYTHONUNBUFFERED": "1"}
    if lift_limits:
        env.update(
            LIVEWALL_INBOUND_BURST="1000000",
            LIVEWALL_INBOUND_RATE_PER_SEC="1000000",
            LIVEWALL_INBOUND_BURST_BYTES="1000000000",
            LIVEWALL_INBOUND_BYTES_PER_SEC="1000000000",
        )
    return env


def _read_links(proc: subprocess.Popen[str], timeout: float = 60) -> dict[str, Any]:
    assert proc.stdout is not None
    result: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: result.put(proc.stdout.readline()), daemon=True).start()  # type: ignore[union-attr]
    try:
        line = result.get(timeout=timeout)
    except queue.Empty:
        proc.kill()
        raise RuntimeError("server did not print its links line") from None
    if not line:
        err = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"server exited: {err[-2000:]}")
    return dict(json.loads(line))


def start_server(
    kind: str,
    data_dir: Path,
    *,
    port: int = 0,
    redis_url: str | None = None,
    lift_limits: bool = True,
    extra_env: dict[str, str] | None = None,
) -> Server:
    """Start one server of ``kind`` and wait until it listens."""
    port = port or free_port()
    env = {**_bench_env(lift_limits=lift_limits), **(extra_env or {})}
    if kind == "livewall":
        argv = [
            sys.executable,
            "-m",
            LIVEWALL_MODULE[0],
            "demo",
            "--json",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--secret-key",
            "bench-secret",
        ]
        if redis_url:
            argv += ["--redis-url", redis_url]
    else:
        module = {"socketio": "bench.peers.socketio_server", "naive": "bench.peers.naive_starlette"}[kind]
        argv = [sys.executable, "-m", module, "--port", str(port)]
    proc = subprocess.Popen(
        argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    links = _read_links(proc)
    threading.Thread(target=_drain_pipe, args=(proc.stderr, kind), daemon=True).start()
    return Server(
        kind,
        proc,
        port,
        links["api_base"],
        links["room"],
        links["host_url"].split("#key=", 1)[1],
        data_dir,
        argv,
        env,
        links.get("screen_url", "").partition("?k=")[2],
    )


def start_follower(leader: Server, redis_url: str) -> Server:
    """A second Livewall process on the leader's database and redis (``serve``, no new room)."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        LIVEWALL_MODULE[0],
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(leader.data_dir),
        "--secret-key",
        "bench-secret",
        "--redis-url",
        redis_url,
    ]
    proc = subprocess.Popen(
        argv, cwd=REPO, env=leader.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_http(f"http://127.0.0.1:{port}/api/rooms/{leader.room}", proc)
    threading.Thread(target=_drain_pipe, args=(proc.stderr, "livewall-b"), daemon=True).start()
    return Server(
        "livewall",
        proc,
        port,
        f"http://127.0.0.1:{port}/api",
        leader.room,
        leader.host_key,
        leader.data_dir,
        argv,
        leader.env,
    )


def restart(server: Server) -> float:
    """Stop ``server`` (SIGTERM) and start ``serve`` on the same port, data and redis; returns when it
    answers HTTP again (time.time() in ms)."""
    server.stop()
    argv = [
        sys.executable,
        "-m",
        LIVEWALL_MODULE[0],
        "serve",
        "--port",
        str(server.port),
        "--data-dir",
        str(server.data_dir),
        "--secret-key",
        "bench-secret",
    ]
    if "--redis-url" in server.argv:
        argv += ["--redis-url", server.argv[server.argv.index("--redis-url") + 1]]
    server.proc = subprocess.Popen(
        argv, cwd=REPO, env=server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_http(f"{server.api_base}/rooms/{server.room}", server.proc)
    threading.Thread(target=_drain_pipe, args=(server.proc.stderr, "livewall"), daemon=True).start()
    return time.time() * 1000


def _wait_http(url: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read()[-2000:] if proc.stderr else ''}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as r:
            if r.status == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(url)


def _drain_pipe(stream: Any, name: str) -> None:
    with contextlib.suppress(ValueError, OSError):
        for line in stream:
            if os.environ.get("BENCH_VERBOSE"):
                sys.stderr.write(f"[{name}] {line}")


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A private redis-server on a free port, nothing persisted."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="lw-bench-redis-")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
            "--loglevel",
            "warning",
            "--maxclients",
            "10000",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            if time.monotonic() > deadline:
                raise TimeoutError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


# --- the load generator -------------------------------------------------------------------------


def ensure_loadgen() -> str:
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is not installed (Node 18+ is needed for bench/loadgen)")
    if not (LOADGEN / "node_modules" / "ws").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=LOADGEN, check=True)
    return node


class Loadgen:
    """One Node load-generator process: JSON commands in, JSON lines out."""

    def __init__(self, node: str, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.proc = subprocess.Popen(
            [node, "--max-old-space-size=4096", str(LOADGEN / "loadgen.mjs"), json.dumps(cfg)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None if os.environ.get("BENCH_VERBOSE") else subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stash: dict[str, collections.deque[dict[str, Any]]] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")

    def send(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def expect(self, ev: str, timeout: float) -> dict[str, Any]:
        """The next ``ev`` event. Others read while waiting are kept for their own ``expect``: on a
        loaded machine a slow resume can come after the run's ``published``, which must not be lost."""
        kept = self.stash.get(ev)
        if kept:
            return kept.popleft()
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"load generator: no {ev!r} within {timeout:.0f} s") from None
            if not line:
                raise RuntimeError("load generator exited")
            msg: dict[str, Any] = json.loads(line)
            if msg.get("ev") == "error":
                raise RuntimeError(f"load generator: {msg['error']}")
            if msg.get("ev") == ev:
                return msg
            self.stash.setdefault(str(msg.get("ev")), collections.deque()).append(msg)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send(cmd="quit")
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def default_clients(viewers: int) -> int:
    """Viewer load-generator processes: one Node event loop saturates around 30k messages/s."""
    if viewers < 2000:
        return 1
    return max(2, -(-viewers // 8000))


def loadgens(
    node: str,
    kind: str,
    targets: list[Server],
    viewers: int,
    *,
    clients: int = 0,
    host_conns: int = 1,
    submit: bool = False,
) -> list[Loadgen]:
    """The host publisher in a process of its own (first in the list, talks to targets[0]), then
    ``viewers`` split over ``clients`` processes; viewer process i talks to targets[i % len]."""
    clients = clients or default_clients(viewers)
    per = [viewers // clients + (1 if i < viewers % clients else 0) for i in range(clients)]
    out = []
    offset = 0
    for i, n in enumerate([0, *per]):
        t = targets[0] if i == 0 else targets[(i - 1) % len(targets)]
        cfg = {
            "name": "host" if i == 0 else f"{kind}{i}",
            "kind": kind,
            "room": t.room,
            "host_key": t.host_key,
            "viewers": n,
            "offset": offset,
            "host": i == 0,
            "host_conns": host_conns,
            "targets": [{"api_base": t.api_base, "ws_base": t.ws_base}],
            "bind_addrs": 8,
            "submit": submit,
            "screen_key": t.screen_key if submit and i == 0 else "",
        }
        out.append(Loadgen(node, cfg))
        offset += n
    return out


# --- statistics ---------------------------------------------------------------------------------


def merge_pct(parts: list[dict[str, Any]]) -> dict[str, float | None]:
    """Percentiles of the union of the load generators' sparse histograms (ms)."""
    counts: dict[int, int] = {}
    for part in parts:
        for bucket, n in part["sparse"]:
            counts[bucket] = counts.get(bucket, 0) + n
    total = sum(counts.values())
    out: dict[str, float | None] = {"n": total}
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)):
        if not total:
            out[name] = None
            continue
        need, acc = q * total, 0
        for bucket in sorted(counts):
            acc += counts[bucket]
            if acc >= need:
                out[name] = bucket / 10
                break
    out["max"] = round(max((p["max"] for p in parts), default=0), 1) if total else None
    return out


def connect_all(gens: list[Loadgen], servers: list[Server], timeout: float) -> dict[str, Any]:
    for g in gens:
        g.send(cmd="connect")
    for g in gens:
        g.expect("joined", timeout)
    # Memory per connection is measured from here: after the HTTP joins (SQLite page cache, request
    # garbage), before any WebSocket opens.
    time.sleep(1)
    rss0 = {s.pid: rss_kib(s.pid) for s in servers}
    for g in gens:
        g.send(cmd="open")
    replies = [g.expect("connected", timeout) for g in gens]
    time.sleep(2)  # let the welcome bursts and presence ticks settle before reading RSS
    rss1 = {s.pid: rss_kib(s.pid) for s in servers}
    viewers = sum(r["viewers"] for r in replies)
    growth = sum(rss1[p] - rss0[p] for p in rss0)
    return {
        "viewers": viewers,
        "connect_failed": sum(r["failed"] for r in replies),
        "join_s": round(max(r["join_s"] for r in replies), 2),
        "connect_s": round(max(r["connect_s"] for r in replies), 2),
        "connect_ms_p50": max((r["connect_ms"]["p50"] or 0) for r in replies),
        "connect_ms_p99": max((r["connect_ms"]["p99"] or 0) for r in replies),
        "rss_before_mib": round(sum(rss0.values()) / 1024, 1),
        "rss_idle_mib": round(sum(rss1.values()) / 1024, 1),
        "kib_per_conn": round(growth / max(1, viewers), 2),
    }


class _CpuSeries:
    """A process's CPU % (100 = one core) in each ``every`` seconds, sampled in a thread until stop()."""

    def __init__(self, pid: int, every: float) -> None:
        self.values: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(pid, every), daemon=True)
        self._thread.start()

    def _run(self, pid: int, every: float) -> None:
        last = cpu_secs(pid)
        while not self._stop.wait(every):
            try:
                now = cpu_secs(pid)
            except OSError:
                return
            self.values.append(round((now - last) / every * 100, 1))
            last = now

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _dump_stuck(pid: int, why: str) -> None:
    """Print every thread's stack of a server that will not stop (py-spy, when installed): a process
    whose event loop is idle can still wait at exit, for an executor's or another non-daemon thread."""
    binary = os.environ.get("BENCH_PYSPY_BIN") or shutil.which("py-spy")
    sys.stderr.write(f"server pid {pid} {why}\n")
    if binary is None:
        sys.stderr.write("  (install py-spy to see where it waits)\n")
        return
    try:
        dump = subprocess.run([binary, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        sys.stderr.write("  py-spy dump timed out\n")
        return
    sys.stderr.write(dump.stdout + dump.stderr)


def profile_servers(servers: list[Server], label: str, secs: float) -> list[subprocess.Popen[bytes]]:
    """``BENCH_PYSPY=DIR``: sample each server process with py-spy for ``secs``, as collapsed stacks
    in ``DIR/LABEL-pI.txt`` (per thread, idle included, unless ``BENCH_PYSPY_ARGS`` says otherwise,
    e.g. ``--gil``); py-spy from PATH or ``BENCH_PYSPY_BIN``."""
    out = os.environ.get("BENCH_PYSPY")
    if not out:
        return []
    binary = os.environ.get("BENCH_PYSPY_BIN") or shutil.which("py-spy")
    if binary is None:
        raise SystemExit("BENCH_PYSPY is set but py-spy is not installed (pip install py-spy)")
    Path(out).mkdir(parents=True, exist_ok=True)
    extra = os.environ.get("BENCH_PYSPY_ARGS", "--threads --idle").split()
    procs = []
    for i, s in enumerate(servers):
        path = f"{out}/{label}-p{i}.txt"
        argv = [binary, "record", "--pid", str(s.pid), "--rate", "200", "--format", "raw", *extra]
        argv += ["--duration", str(int(secs) + 1), "--output", path]
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return procs


def profile_machine(label: str, secs: float) -> list[subprocess.Popen[bytes]]:
    """``BENCH_PERF=DIR``: sample the whole machine (servers, load generators, Redis, the kernel) with
    ``perf record -a -g`` for ``secs``, into ``DIR/LABEL.perf.data``; read it with ``perf report -i``
    (``--sort comm,dso,sym``). Where py-spy shows only Python, this shows what a write costs in the
    kernel and which process pays it."""
    out = os.environ.get("BENCH_PERF")
    if not out:
        return []
    binary = shutil.which("perf")
    if binary is None:
        raise SystemExit("BENCH_PERF is set but perf is not installed (apt-get install linux-perf)")
    Path(out).mkdir(parents=True, exist_ok=True)
    argv = [binary, "record", "-a", "-g", "-F", "499", "-o", f"{out}/{label}.perf.data"]
    argv += ["--", "sleep", str(int(secs) + 1)]
    with open(f"{out}/{label}.perf.log", "wb") as log:  # why, if perf refuses (perf_event_paranoid)
        return [subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)]


def start_run(gens: list[Loadgen], args_for: Callable[[Loadgen], dict[str, Any]]) -> None:
    """Start a run: the viewer processes first, each confirming, then the host (gens[0]). A viewer
    process that had not yet read its run command ignored the run's first announcements (counted
    as lost: 2 of 2,040,000 deliveries in one redis2 run)."""
    for g in gens[1:]:
        g.send(cmd="run", **args_for(g))
    for g in gens[1:]:
        g.expect("running", 30)
    gens[0].send(cmd="run", **args_for(gens[0]))


def measure(
    gens: list[Loadgen],
    servers: list[Server],
    run_id: int,
    *,
    rate: float,
    duration: float,
    churn: float = 0.0,
    comments: float = 0.0,
    blast: bool = False,
    window: int = 8,
    senders: int = 0,
) -> dict[str, Any]:
    """One measurement window: publish, drain, and collect latency, loss, gaps, CPU."""
    cpu0 = {s.pid: cpu_secs(s.pid) for s in servers}
    lg0 = [cpu_secs(g.proc.pid) for g in gens]
    kind = servers[0].kind if servers else "none"
    viewers = sum(g.cfg["viewers"] for g in gens)
    profilers = profile_servers(servers, f"{kind}-{viewers}-r{run_id}", duration)
    profilers += profile_machine(f"{kind}-{viewers}-r{run_id}", duration)
    t0 = time.monotonic()
    start_run(
        gens,
        lambda g: dict(
            run_id=run_id,
            rate=rate,
            duration=duration,
            churn_per_sec=churn,
            comments_per_sec=comments / max(1, len(gens) - 1) if g.cfg["viewers"] else 0,
            blast=blast,
            window=window,
            senders=senders,
        ),
    )
    pub = gens[0].expect("published", duration + 60)
    if os.environ.get("BENCH_VERBOSE"):
        print(f"[bench] publishing started at={pub['t0']:.0f}", file=sys.stderr, flush=True)
    for g in gens[1:]:
        g.expect("published", 30)
    # Viewers first (they know how many items were acknowledged), then the host, which waits for
    # the queue events that carry those items.
    for g in gens[1:]:
        g.send(cmd="drain", sent=pub["sent"], timeout=30 if comments else 15)
    drained = [g.expect("drained", 90) for g in gens[1:]]
    acked_items = sum(d["submit_acked"] for d in drained)
    gens[0].send(cmd="drain", sent=pub["sent"], timeout=15, await_items=acked_items)
    drained.insert(0, gens[0].expect("drained", 60))
    wall = time.monotonic() - t0
    for proc in profilers:
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    cpu = sum(cpu_secs(s.pid) - cpu0[s.pid] for s in servers)
    lg_each = [cpu_secs(g.proc.pid) - c for g, c in zip(gens, lg0, strict=True)]
    lg_cpu = sum(lg_each)
    lat = merge_pct([d["lat"] for d in drained])
    rtt = merge_pct([d["rtt"] for d in drained])
    received = sum(d["received"] for d in drained)
    last = max((d["last_recv"] for d in drained if d["last_recv"]), default=pub["t0"])
    span_s = max(0.001, (last - pub["t0"]) / 1000)
    closes: dict[str, int] = {}
    for d in drained:
        for code, n in d["closes"].items():
            closes[code] = closes.get(code, 0) + n
    return {
        "sent": pub["sent"],
        "acked": pub["acked"],
        "refused": pub["refused"],
        "broadcasts_per_s": round(pub["sent"] / pub["publish_s"], 1),
        "deliveries": received,
        "deliveries_per_s": round(received / span_s),
        "lat_ms": lat,
        "comment_rtt_ms": rtt if rtt["n"] else None,
        "loss": sum(d["loss"] for d in drained),
        "gaps": sum(d["gaps"] for d in drained),
        "skipped_while_away": sum(d["skipped"] for d in drained),
        "not_open_at_end": sum(d["not_open"] for d in drained),
        "resumed": sum(d["resumed"] for d in drained),
        "resume_failed": sum(d["resume_failed"] for d in drained),
        "reconnects": sum(d["reconnects"] for d in drained),
        "closes": closes,
        "server_cpu_pct": round(100 * cpu / wall, 1),
        "loadgen_cpu_pct": round(100 * lg_cpu / wall, 1),
        # the busiest load-generator process (100 = one core): near 100 means the client limits
        "loadgen_max_proc_cpu_pct": round(100 * max(lg_each) / wall, 1),
        "loadgen_procs": len(gens),
        "server_rss_mib": round(sum(rss_kib(s.pid) for s in servers) / 1024, 1),
        "window_s": round(wall, 2),
        **(_items(drained, pub["publish_s"]) if comments else {}),
    }


def _items(drained: list[dict[str, Any]], publish_s: float) -> dict[str, Any]:
    """The comment storm as the host and the screen saw it."""
    host = drained[0]
    acked = sum(d["submit_acked"] for d in drained)
    errors: dict[str, int] = {}
    for d in drained:
        for code, n in d["submit_errors"].items():
            errors[code] = errors.get(code, 0) + n
    return {
        "items_sent": sum(d["comments_sent"] for d in drained),
        "questions_sent": sum(d["questions_sent"] for d in drained),
        "items_acked": acked,
        "items_refused": errors,
        "host_items": host["host_items"],
        "host_questions": host["host_questions"],
        # acknowledged to the sender but never in the host's queue (0 when nothing is lost)
        "host_items_lost": max(0, acked - host["host_items"]),
        "items_unanswered": sum(d["comments_sent"] for d in drained) - acked - sum(errors.values()),
        "host_item_ms": merge_pct([host["item"]]),
        "host_item_max_ms_per_s": host.get("item_max_per_s", []),
        "screen_frames_per_s": round(host["screen_frames"] / max(0.001, publish_s), 1),
        "screen_items": host["screen_items"],
        "screen_dropped": host["screen_dropped"],
    }


# --- scenarios ----------------------------------------------------------------------------------


def _one_population(
    node: str, kind: str, viewers: int, args: argparse.Namespace, work: Path, *, blast: bool = False
) -> list[dict[str, Any]]:
    """Start a server, connect ``viewers``, then ``args.runs`` measurement windows on them."""
    data = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=work))
    server = start_server(kind, data)
    gens = loadgens(
        node, kind, [server], viewers, clients=args.clients, host_conns=args.host_conns if blast else 1
    )
    rows = []
    try:
        conn = connect_all(gens, [server], timeout=120 + viewers / 50)
        for run in range(args.runs):
            m = measure(
                gens,
                [server],
                run + 1,
                rate=args.rate,
                duration=args.duration,
                churn=args.churn,
                comments=args.comments,
                blast=blast,
                window=args.window,
            )
            row = {
                "scenario": args.scenario,
                "server": kind,
                "run": run + 1,
                "rate": args.rate,
                "duration_s": args.duration,
                "churn_per_sec": args.churn,
                **conn,
                **m,
            }
            rows.append(row)
            _progress(row)
    finally:
        for g in gens:
            g.close()
        server.stop()
    return rows


def scenario_fanout(args: argparse.Namespace, node: str, work: Path) -> list[dict[str, Any]]:
    rows = []
    for viewers in args.viewers:
        for kind in args.servers:
            rows += _one_population(node, kind, viewers, args, work, blast=args.scenario == "blast")
    return rows


def scenario_comments(args: argparse.Namespace, node: str, work: Path) -> list[dict[str, Any]]:
    """Viewers submit comments and questions (item.submit) under the default inbound limits, spread
    over ``--senders`` connections, while the host announces at ``--rate``; the host must see every
    acknowledged item in its queue events, and a screen counts its wall frames."""
    rows = []
    for viewers in args.viewers:
        data = Path(tempfile.mkdtemp(prefix="livewall-", dir=work))
        server = start_server("livewall", data, lift_limits=False)
        gens = loadgens(node, "livewall", [server], viewers, clients=args.clients, submit=True)
        try:
            conn = connect_all(gens, [server], timeout=120 + viewers / 50)
            for run in range(args.runs):
                m = measure(
                    gens,
                    [server],
                    run + 1,
                    rate=args.rate,
                    duration=args.duration,
                    comments=args.comments,
                    senders=args.senders,
                )
                row = {
                    "scenario": "comments",
                    "server": "livewall",
                    "run": run + 1,
                    "rate": args.rate,
                    "comments_per_s": args.comments,
                    "senders": args.senders,
                    "duration_s": args.duration,
                    **conn,
                    **m,
                }
                rows.append(row)
                _progress(row)
                sys.stderr.write(
                    f"    items acked={m['items_acked']} host saw={m['host_items']} "
                    f"lost={m['host_items_lost']} host p99={m['host_item_ms']['p99']} ms "
                    f"screen fps={m['screen_frames_per_s']} refused={m['items_refused']}\n"
                )
        finally:
            for g in gens:
                g.close()
            server.stop()
    return rows


def scenario_idle(args: argparse.Namespace, node: str, work: Path) -> list[dict[str, Any]]:
    rows = []
    for viewers in args.viewers:
        for kind in args.servers:
            for run in range(args.runs):
                data = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=work))
                server = start_server(kind, data)
                gens = loadgens(node, kind, [server], viewers, clients=args.clients)
                try:
                    conn = connect_all(gens, [server], timeout=120 + viewers / 50)
                    row = {"scenario": "idle", "server": kind, "run": run + 1, **conn}
                    rows.append(row)
                    _progress(row)
                finally:
                    for g in gens:
                        g.close()
                    server.stop()
    return rows


def scenario_reconnect(args: argparse.Namespace, node: str, work: Path) -> list[dict[str, Any]]:
    """Viewers follow a room at ``rate``; the server restarts; every viewer must resume, gap-free."""
    rows = []
    for viewers in args.viewers:
        for run in range(args.runs):
            with redis_server() as redis_url:
                data = Path(tempfile.mkdtemp(prefix="livewall-", dir=work))
                server = start_server("livewall", data, redis_url=redis_url)
                gens = loadgens(node, "livewall", [server], viewers, clients=args.clients)
                try:
                    conn = connect_all(gens, [server], timeout=120 + viewers / 50)
                    duration = max(args.duration, 25.0)
                    cpu0 = cpu_secs(server.pid)
                    run_args = dict(run_id=run + 1, rate=args.rate, duration=duration, track_indices=True)
                    start_run(gens, lambda _g: run_args)  # noqa: B023 - called before the next iteration
                    time.sleep(5)
                    killed = time.time() * 1000
                    up = restart(server)
                    spies = profile_servers([server], f"reconnect-{viewers}-r{run + 1}", 20)
                    cpu_series = _CpuSeries(server.pid, 0.5)
                    for g in gens:
                        # counted from the kill: a viewer may be welcomed before the HTTP probe sees
                        # the new process up; times are reported from `up`
                        g.send(cmd="await_resumed", since=killed, timeout=30 + (up - killed) / 1000)
                    back = [g.expect("resumed", 60) for g in gens]
                    cpu_series.stop()
                    for spy in spies:
                        spy.wait()
                    per_half = [
                        sum(b["back_per_half_s"][i] for b in back if i < len(b["back_per_half_s"]))
                        for i in range(max(len(b["back_per_half_s"]) for b in back))
                    ]
                    pub = gens[0].expect("published", duration + 60)
                    # Loss counts the announcements the server acknowledged: a restart refuses (closes
                    # before answering) the few in flight, and the host does not send while it is away.
                    for g in gens:
                        g.send(cmd="drain", sent=pub["sent"], acked_idx=pub["acked_idx"], timeout=15)
                    drained = [g.expect("drained", 60) for g in gens]
                    row = {
                        "scenario": "reconnect",
                        "server": "livewall",
                        "run": run + 1,
                        **conn,
                        "restart_s": round((up - killed) / 1000, 2),
                        "all_back_s": round(
                            max(0, max((b["all_back_ms"] or 0) for b in back) - (up - killed)) / 1000, 2
                        ),
                        "back_ms_p50": round(
                            max(0, max((b["back_ms"]["p50"] or 0) for b in back) - (up - killed)), 1
                        ),
                        "back_ms_p99": round(
                            max(0, max((b["back_ms"]["p99"] or 0) for b in back) - (up - killed)), 1
                        ),
                        "not_back": sum(b["not_back"] for b in back),
                        # from the kill: welcomes per 500 ms, and the new process's CPU % per 500 ms
                        "back_per_half_s": per_half,
                        "server_cpu_pct_per_half_s": cpu_series.values,
                        "resumed": sum(d["resumed"] for d in drained),
                        "resume_failed": sum(d["resume_failed"] for d in drained),
                        "gaps": sum(d["gaps"] for d in drained),
                        "loss": sum(d["loss"] for d in drained),
                        "sent": pub["sent"],
                        "acked": pub["acked"],
                        "refused": pub["refused"],
                        "deliveries": sum(d["received"] for d in drained),
                        "lat_ms": merge_pct([d["lat"] for d in drained]),
                        "server_cpu_s_new_process": round(cpu_secs(server.pid), 1),
                        "server_cpu_s_first_process": round(cpu0, 1),
                    }
                    rows.append(row)
                    _progress(row)
                finally:
                    for g in gens:
                        g.close()
                    server.stop()
    return rows


def scenario_redis2(args: argparse.Namespace, node: str, work: Path) -> list[dict[str, Any]]:
    """Half the viewers on each of two Livewall processes sharing redis; the host on the first."""
    rows = []
    for viewers in args.viewers:
        with redis_server() as redis_url:
            data = Path(tempfile.mkdtemp(prefix="livewall-", dir=work))
            a = start_server("livewall", data, redis_url=redis_url)
            b = start_follower(a, redis_url)
            # Viewer processes alternate between the servers: an even number of them splits the
            # viewers evenly (3 of them put two thirds on the first server).
            clients = max(2, args.clients or default_clients(viewers))
            gens = loadgens(node, "livewall", [a, b], viewers, clients=clients + clients % 2)
            try:
                conn = connect_all(gens, [a, b], timeout=180 + viewers / 50)
                for run in range(args.runs):
                    m = measure(
                        gens, [a, b], run + 1, rate=args.rate, duration=args.duration, churn=args.churn
                    )
                    row = {
                        "scenario": "redis2",
                        "server": "livewall",
                        "processes": 2,
                        "run": run + 1,
                        "rate": args.rate,
                        **conn,
                        **m,
                    }
                    rows.append(row)
                    _progress(row)
            finally:
                for g in gens:
                    g.close()
                b.stop()
                a.stop()
    return rows


# --- output -------------------------------------------------------------------------------------


def _progress(row: dict[str, Any]) -> None:
    lat = row.get("lat_ms") or {}
    sys.stderr.write(
        f"  {row['scenario']:<9} {row['server']:<9} viewers={row['viewers']:<6} run={row['run']} "
        f"p50={lat.get('p50')} p99={lat.get('p99')} deliveries/s={row.get('deliveries_per_s')} "
        f"loss={row.get('loss')} gaps={row.get('gaps')} cpu%={row.get('server_cpu_pct')} "
        f"KiB/conn={row.get('kib_per_conn')}"
        + (
            f" sent={row['sent']} acked={row.get('acked')} refused={row['refused']}"
            f" back_s={row.get('all_back_s')}"
            if "refused" in row
            else ""
        )
        + "\n"
    )


def _get(row: dict[str, Any], key: str) -> Any:
    if "." in key:
        a, b = key.split(".", 1)
        return (row.get(a) or {}).get(b)
    return row.get(key)


SUMMARY_KEYS = (
    "lat_ms.p50",
    "lat_ms.p90",
    "lat_ms.p99",
    "lat_ms.max",
    "deliveries_per_s",
    "loss",
    "gaps",
    "server_cpu_pct",
    "kib_per_conn",
    "connect_s",
    "connect_ms_p99",
    "comment_rtt_ms.p99",
    "host_item_ms.p99",
    "host_items_lost",
    "screen_frames_per_s",
    "all_back_s",
    "not_back",
    "resume_failed",
    "resumed",
    "loadgen_cpu_pct",
    "loadgen_max_proc_cpu_pct",
    "server_rss_mib",
)


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Medians over runs per (server, viewers), with ratios to the peers for Livewall."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["server"], row["viewers"]), []).append(row)
    out = []
    for (server, viewers), group in groups.items():
        med: dict[str, Any] = {"server": server, "viewers": viewers, "runs": len(group)}
        for key in SUMMARY_KEYS:
            values = [v for v in (_get(r, key) for r in group) if isinstance(v, int | float)]
            if values:
                med[key] = round(statistics.median(values), 2)
        # loss and gaps are totals, not medians: one lost event in any run matters
        for key in ("loss", "gaps", "resume_failed", "not_back"):
            if any(key in r for r in group):
                med[key + "_total"] = sum(int(r.get(key) or 0) for r in group)
        out.append(med)
    by = {(m["server"], m["viewers"]): m for m in out}
    for m in out:
        if m["server"] != "livewall":
            continue
        for peer in ("socketio", "naive"):
            p = by.get((peer, m["viewers"]))
            if p is None:
                continue
            if m.get("lat_ms.p99") and p.get("lat_ms.p99"):
                m[f"p99_x_better_than_{peer}"] = round(p["lat_ms.p99"] / m["lat_ms.p99"], 1)
            if m.get("deliveries_per_s") and p.get("deliveries_per_s"):
                m[f"deliveries_x_{peer}"] = round(m["deliveries_per_s"] / p["deliveries_per_s"], 1)
            if m.get("kib_per_conn") and p.get("kib_per_conn"):
                m[f"memory_x_less_than_{peer}"] = round(p["kib_per_conn"] / m["kib_per_conn"], 1)
    return out


COLUMNS = [
    ("server", "server", 9),
    ("viewers", "viewers", 7),
    ("runs", "runs", 4),
    ("lat_ms.p50", "p50 ms", 8),
    ("lat_ms.p99", "p99 ms", 8),
    ("lat_ms.max", "max ms", 8),
    ("deliveries_per_s", "deliv/s", 9),
    ("loss_total", "loss", 5),
    ("gaps_total", "gaps", 5),
    ("server_cpu_pct", "cpu %", 6),
    ("kib_per_conn", "KiB/conn", 8),
    ("connect_s", "conn s", 7),
    ("comment_rtt_ms.p99", "cmt p99", 8),
    ("host_item_ms.p99", "item p99", 8),
    ("host_items_lost", "items lost", 10),
    ("screen_frames_per_s", "screen fps", 10),
    ("all_back_s", "back s", 7),
    ("resume_failed_total", "no-res", 6),
]


def table(summary: list[dict[str, Any]]) -> str:
    present = [c for c in COLUMNS if any(c[0] in m for m in summary) or c[0] in ("server", "viewers")]
    lines = ["  ".join(f"{title:>{w}}" for _k, title, w in present)]
    for m in sorted(summary, key=lambda m: (m["viewers"], SERVERS.index(m["server"]))):
        cells = []
        for key, _title, w in present:
            v = m.get(key, "")
            if isinstance(v, float) and v.is_integer() and key != "kib_per_conn":
                v = int(v)
            cells.append(f"{v!s:>{w}}")
        lines.append("  ".join(cells))
    ratios = [(m["viewers"], k, v) for m in summary for k, v in m.items() if "_x_" in k]
    if ratios:
        lines.append("")
        lines.append("Livewall vs peers (same run, same machine):")
        for viewers, k, v in sorted(ratios):
            lines.append(f"  {viewers:>6} viewers  {k:<32} {v}x")
    return "\n".join(lines)


def scenario_claim(args: argparse.Namespace, node: str, work: Path) -> list[dict[str, Any]]:
    from bench import claim  # imports this module

    return claim.scenario(args, node, work)


def scenario_flood(args: argparse.Namespace, node: str, work: Path) -> list[dict[str, Any]]:
    from bench import flood  # imports this module

    return flood.scenario(args, node, work)


def write_results(
    scenario: str, args: argparse.Namespace, rows: list[dict[str, Any]], out: Path | None = None
) -> Path:
    summarize_fn, table_fn = summarize, table
    if scenario == "claim":
        from bench import claim

        summarize_fn, table_fn = claim.summarize, claim.table
    elif scenario == "flood":
        from bench import flood

        summarize_fn, table_fn = flood.summarize, flood.table
    summary = summarize_fn(rows)
    doc = {
        "scenario": scenario,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": sys.platform},
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "summary": summary,
        "runs": rows,
    }
    path = out or RESULTS / f"{scenario}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1))
    print(f"\n{scenario}: medians of {args.runs} run(s)\n")
    print(table_fn(summary))
    print(f"\nwrote {path}")
    return path


SCENARIOS = {
    "fanout": scenario_fanout,
    "blast": scenario_fanout,
    "comments": scenario_comments,
    "idle": scenario_idle,
    "reconnect": scenario_reconnect,
    "redis2": scenario_redis2,
    "claim": scenario_claim,
    "flood": scenario_flood,
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "fanout": {"viewers": "1000,5000,10000", "churn": 0.005},
    "blast": {"viewers": "1000", "duration": 8.0, "host_conns": 4, "window": 16},
    "comments": {
        "viewers": "5000",
        "comments": 1000.0,
        "senders": 400,
        "rate": 1.0,
        "duration": 60.0,
        "runs": 1,
    },
    "idle": {"viewers": "5000"},
    "reconnect": {"viewers": "10000", "servers": "livewall", "runs": 1},
    "redis2": {"viewers": "20000", "servers": "livewall", "runs": 1},
    "claim": {"viewers": "10000", "servers": "livewall"},
    # 30 s windows: the flooder is closed (4029) and comes back at least twice in each.
    "flood": {"viewers": "1000", "servers": "livewall", "duration": 30.0},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--viewers", help="comma-separated viewer counts")
    p.add_argument("--servers", help="comma-separated: livewall,socketio,naive (default all that apply)")
    p.add_argument("--rate", type=float, help="host broadcasts per second (paced scenarios)")
    p.add_argument("--duration", type=float, help="seconds of publishing per run (default 10)")
    p.add_argument("--runs", type=int, help="measurement runs per configuration (default 3)")
    p.add_argument("--churn", type=float, help="fraction of viewers reconnecting per second (default 0)")
    p.add_argument("--comments", type=float, help="viewer messages per second, all viewers together")
    p.add_argument(
        "--clients",
        type=int,
        help="viewer load-generator processes (default: 1 below 2,000 viewers, else 2+)",
    )
    p.add_argument("--senders", type=int, help="viewer connections that send (comments; default 400)")
    p.add_argument("--host-conns", type=int, help="host connections publishing (blast)")
    p.add_argument("--window", type=int, help="announces in flight per host connection (blast)")
    p.add_argument(
        "--uvloop",
        action="store_true",
        help="run Livewall on uvloop (see bench/lwserver.py; the CLI does not yet)",
    )
    p.add_argument("--units", type=int, help="units on the discount (claim; default 100)")
    p.add_argument(
        "--spread-ms", type=float, help="claim: every viewer claims once within this window (default 1000)"
    )
    p.add_argument("--configs", help="claim: comma-separated embedded,redis1,redis2 (default all three)")
    p.add_argument(
        "--limits",
        choices=("default", "off"),
        help="flood: the server's inbound limits as shipped, or lifted (default: default)",
    )
    p.add_argument("--out", type=Path, help="result file (default bench/results/SCENARIO.json)")
    args = p.parse_args(argv)
    d = {
        "servers": ",".join(SERVERS),
        "duration": 10.0,
        "rate": 10.0,
        "runs": 3,
        "churn": 0.0,
        "comments": 0.0,
        "clients": 0,
        "host_conns": 1,
        "window": 8,
        "senders": 0,
        "units": 100,
        "spread_ms": 1000.0,
        "configs": "embedded,redis1,redis2",
        "limits": "default",
        **DEFAULTS[args.scenario],
    }
    for key, value in d.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    args.viewers = [int(v) for v in str(args.viewers).split(",") if v]
    args.servers = [s for s in str(args.servers).split(",") if s]
    unknown = set(args.servers) - set(SERVERS)
    if unknown:
        p.error(f"unknown servers: {sorted(unknown)}")
    args.configs = [c for c in str(args.configs).split(",") if c]
    unknown = set(args.configs) - {"embedded", "redis1", "redis2"}
    if unknown:
        p.error(f"unknown configs: {sorted(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.uvloop:
        os.environ["BENCH_UVLOOP"] = "1"
    limit = raise_fd_limit()
    need = max(args.viewers) // max(1, args.clients or default_clients(max(args.viewers))) + 200
    if limit < need:
        print(f"warning: file-descriptor limit {limit} < {need}; use --clients", file=sys.stderr)
    node = ensure_loadgen()
    work = Path(tempfile.mkdtemp(prefix="lw-bench-"))
    try:
        rows = SCENARIOS[args.scenario](args, node, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_results(args.scenario, args, rows, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
