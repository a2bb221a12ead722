"""The fresh-install gate: what a new user gets from the README, before any test extra is installed.

In a new empty venv, a plain (non-editable) `pip install -c constraints.txt .` with no extras; then
`livewall demo --json --port 0` must print links that all answer 200, and `livewall serve --json`
on a private redis-server and PostgreSQL cluster must answer the same way, with a room made by
`livewall rooms create` on that database and a `livewall worker` that starts and stops cleanly.
Standard library only (it runs before the test dependencies exist). Exit 0, or 1 with one line:
`fresh-install gate: FAILED: <step>: <reason>`.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Generous: the gate may share a loaded 2-core machine with other work.
INSTALL_SECS = 600
START_SECS = 90
HTTP_SECS = 15
SECRET = "fresh-install-gate"


class GateError(Exception):
    """A step failed; the message is the one-line reason."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(step: str, args: list[str], timeout: float = INSTALL_SECS, **kw: object) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, **kw)  # type: ignore[call-overload]
    except subprocess.TimeoutExpired:
        raise GateError(f"{step}: no answer within {timeout:.0f} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise GateError(f"{step}: exit {done.returncode}: {last}")
    return str(done.stdout)


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=HTTP_SECS) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError as exc:
        raise GateError(f"GET {url}: {exc}") from None


def _check_links(step: str, urls: dict[str, str]) -> None:
    base = urls["healthz"].removesuffix("/healthz")
    deadline = time.monotonic() + START_SECS
    while _get(f"{base}/readyz") != 200:  # the database and hub answer
        if time.monotonic() > deadline:
            raise GateError(f"{step}: /readyz not 200 within {START_SECS} s")
        time.sleep(0.2)
    for name, url in urls.items():
        status = _get(url.split("#")[0])
        if status != 200:
            raise GateError(f"{step}: {name} {url} answered {status}")


class _Process:
    """A livewall process whose first stdout line is read on a thread (pipes never fill)."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_clean_env()
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.err: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines.put), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.err.append), daemon=True).start()

    @staticmethod
    def _pump(stream: object, put: object) -> None:
        with contextlib.suppress(ValueError):
            for line in stream:  # type: ignore[attr-defined]
                put(line)  # type: ignore[operator]

    def json_line(self, step: str) -> dict[str, str]:
        try:
            line = self.lines.get(timeout=START_SECS)
        except queue.Empty:
            raise GateError(f"{step}: printed nothing within {START_SECS} s; {self._last_error()}") from None
        try:
            return dict(json.loads(line))
        except ValueError:
            raise GateError(f"{step}: printed {line.strip()[:200]!r}, not JSON") from None

    def _last_error(self) -> str:
        code = self.proc.poll()
        tail = "".join(self.err).strip().splitlines()[-1:] or ["no error output"]
        return f"exit {code}: {tail[0][:300]}" if code is not None else f"still running: {tail[0][:300]}"

    def stop(self, step: str, *, must_exit_cleanly: bool = False) -> None:
        self.proc.terminate()
        try:
            code = self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise GateError(f"{step}: did not stop within 20 s of SIGTERM") from None
        # uvicorn re-raises the SIGTERM it handled once it has shut down gracefully, hence -15.
        if must_exit_cleanly and code not in (0, -signal.SIGTERM):
            raise GateError(f"{step}: exit {code} on SIGTERM; {self._last_error()}")


def _clean_env() -> dict[str, str]:
    """The environment without any LIVEWALL_* setting of the caller's, and without a venv of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEWALL_")}
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    return env


@contextlib.contextmanager
def _redis(tmp: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise GateError("redis: redis-server is not installed (tests/system-deps.sh installs it)")
    port = _free_port()
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
            str(tmp),
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + START_SECS
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
            if time.monotonic() > deadline:
                raise GateError(f"redis: not answering within {START_SECS} s")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / name).exists():
            return str(root / name)
    return None


@contextlib.contextmanager
def _postgres() -> Iterator[str]:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise GateError("postgres: initdb/pg_ctl not found (tests/system-deps.sh installs PostgreSQL)")
    # Its own folder, not under ``tmp`` (mode 0700, root's): the postgres user must reach it.
    work = Path(tempfile.mkdtemp(prefix="lw-fresh-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(work, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = work / "data", _free_port()
    _run("postgres initdb", [*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"])
    options = f"-p {port} -k {work} -h 127.0.0.1 -F"
    _run(
        "postgres start",
        [*as_user, pg_ctl, "-D", str(data), "-l", str(work / "log"), "-w", "-o", options, "start"],
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def _install(tmp: Path) -> Path:
    venv = tmp / "venv"
    _run("venv", [sys.executable, "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    _run("pip install -c constraints.txt .", [*pip, "install", "-c", "constraints.txt", "."], cwd=REPO)
    probe = (
        "import importlib.util as u, sys\n"
        "extra = [m for m in ('pytest', 'playwright') if u.find_spec(m)]\n"
        "sys.exit(f'test extras are installed: {extra}' if extra else 0)\n"
    )
    _run("no test extras", [str(venv / "bin" / "python"), "-c", probe], cwd=tmp)
    return venv / "bin" / "livewall"


def _demo(livewall: Path, tmp: Path) -> int:
    step = "livewall demo"
    proc = _Process([str(livewall), "demo", "--json", "--port", "0", "--data-dir", str(tmp / "demo")], tmp)
    try:
        links = proc.json_line(step)
        base = links["api_base"].removesuffix("/api")
        urls = {k: links[k] for k in ("host_url", "screen_url", "viewer_url", "api_base")}
        urls |= {k: f"{base}/{k}" for k in ("healthz", "readyz", "metrics")}
        _check_links(step, urls)
    finally:
        proc.stop(step, must_exit_cleanly=True)
    return len(urls)


def _scaled(livewall: Path, tmp: Path) -> int:
    step = "livewall serve (Redis + PostgreSQL)"
    with _redis(tmp) as redis_url, _postgres() as database_url:
        shared = ["--database-url", database_url, "--secret-key", SECRET]
        serve = [str(livewall), "serve", "--json", "--port", "0", "--redis-url", redis_url, *shared]
        proc = _Process([*serve, "--data-dir", str(tmp / "serve")], tmp)
        worker = None
        try:
            printed = proc.json_line(step)
            urls = {k: printed[k] for k in ("healthz", "readyz", "metrics", "api_base")}
            _check_links(step, urls)
            created = json.loads(
                _run(
                    "livewall rooms create (PostgreSQL)",
                    [
                        str(livewall),
                        "rooms",
                        "create",
                        "--title",
                        "Gate",
                        "--json",
                        "--public-url",
                        printed["url"],
                        *shared,
                        "--data-dir",
                        str(tmp / "cli"),
                    ],
                    timeout=START_SECS,
                    cwd=tmp,
                    env=_clean_env(),
                )
            )
            room_urls = {k: created[k] for k in ("host_url", "screen_url", "viewer_url")}
            _check_links(f"{step}: a room from `rooms create`", {**room_urls, "healthz": urls["healthz"]})
            worker = _Process(
                [
                    str(livewall),
                    "worker",
                    "--redis-url",
                    redis_url,
                    *shared,
                    "--data-dir",
                    str(tmp / "worker"),
                ],
                tmp,
            )
            deadline = time.monotonic() + START_SECS
            while not any("follow-up worker running" in line for line in worker.err):
                if worker.proc.poll() is not None or time.monotonic() > deadline:
                    raise GateError(f"livewall worker: not running; {worker._last_error()}")
                time.sleep(0.1)
            worker.stop("livewall worker", must_exit_cleanly=True)
            worker = None
        finally:
            if worker is not None:
                with contextlib.suppress(GateError):
                    worker.stop("livewall worker")
            proc.stop(step, must_exit_cleanly=True)
    return len(urls) + len(room_urls)


def main() -> int:
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="lw-fresh-") as name:
            tmp = Path(name)
            livewall = _install(tmp)
            demo = _demo(livewall, tmp)
            scaled = _scaled(livewall, tmp)
    except GateError as exc:
        print(f"fresh-install gate: FAILED: {exc}", flush=True)
        return 1
    took = time.monotonic() - started
    print(
        f"fresh-install gate: ok in {took:.0f} s (bare install; demo: {demo} URLs 200; "
        f"serve on Redis + PostgreSQL: {scaled} URLs 200; worker started and stopped)",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
