"""Untrusted or CPU-heavy work in worker processes with hard limits, off the event loop.

A thread is not enough: CPU-bound Python holds the GIL, and nothing can stop a thread that computes
``9 ** 64 ** 64``. A job runs in a separate process instead, one job per process at a time, bounded
four ways (docs/security.md#limits):

- wall clock: the caller waits ``deadline_secs`` from the moment the job reaches its worker, then that
  worker is killed (SIGKILL) and the caller gets ``LimitExceeded("time")``. Jobs in other workers go
  on; a new worker is started when next needed.
- memory: each worker caps its address space (RLIMIT_AS) at its size after start-up plus
  ``memory_mb``; an allocation past it raises MemoryError in the job (``LimitExceeded("memory")``),
  and that worker is replaced.
- output: a result holds at most ``output_chars`` characters (of its strings), and the parent reads
  no reply bigger than that can encode to.
- CPU time: RLIMIT_CPU, set before each job a little above its deadline, ends a worker by itself if
  its parent stops watching (killed mid-job): no orphan spins for ever.

A job is a module-level function of ours named by module and name; arguments and results travel as
JSON (orjson), never pickle: the parent does not unpickle what a process running a marketer's
template wrote. An error of the tree in server/errors.py raised by a job is raised again here.
Workers start lazily, at most ``workers`` of them, and stop with ``close()`` (the app's lifespan, the
end of ``livewall worker``); a worker also exits when its standard input closes (its parent died).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import math
import os
import struct
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

import orjson

from server import errors
from server.config import Settings

log = logging.getLogger("livewall.sandbox")

# A worker that has not said it is ready this long after its start is broken (its imports take about
# half a second on a quiet machine, several times that on a busy 2-core one; not counted as job time).
START_SECS = 30.0
# On close, an idle worker has this long to exit by itself once its input is closed; then it is killed.
STOP_SECS = 2.0
# The widest a character gets in a reply (orjson writes a control character as \u00XX), and the room
# left for keys, numbers and punctuation: a bigger reply frame is refused unread.
_BYTES_PER_CHAR = 6
_FRAME_SLACK_BYTES = 64 * 1024
_HEADER = struct.Struct(">I")
_BOOT = "from server.sandbox import _child; _child()"


class SandboxError(Exception):
    """A job could not be run to its end: its worker failed or could not start."""


class LimitExceeded(SandboxError):
    """A job passed one of its limits; ``limit`` is ``time``, ``memory`` or ``output``."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit
        self.message = message


@dataclass(frozen=True)
class Limits:
    deadline_secs: float
    memory_mb: int
    output_chars: int


class _Worker:
    """One worker process and its two pipes: length-prefixed JSON frames each way."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        assert proc.stdin is not None and proc.stdout is not None
        self.stdin = proc.stdin
        self.stdout = proc.stdout

    async def send(self, frame: bytes) -> None:
        self.stdin.write(_HEADER.pack(len(frame)) + frame)
        await self.stdin.drain()

    async def receive(self, max_bytes: int) -> dict[str, Any]:
        try:
            (size,) = _HEADER.unpack(await self.stdout.readexactly(_HEADER.size))
            if size > max_bytes:
                raise LimitExceeded("output", f"answered more than {max_bytes:,} bytes")
            reply = orjson.loads(await self.stdout.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError):
            code = await self.proc.wait()
            raise SandboxError(f"the worker process stopped (exit status {code})") from None
        if not isinstance(reply, dict):
            raise SandboxError("the worker process answered something that is not a reply")
        return reply


class Sandbox:
    """``await sandbox.run(fn, *args)``: ``fn(*args)`` in a worker process, under ``limits``."""

    def __init__(self, limits: Limits, *, workers: int = 2, preload: Sequence[str] = ()) -> None:
        self.limits = limits
        self.workers = max(1, workers)
        self.preload = tuple(preload)  # modules each worker imports before it takes jobs
        self.on_dispatch: Callable[[str], None] | None = None  # a job reached a worker (tests, metrics)
        self._slots = asyncio.Semaphore(self.workers)
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._warming: list[asyncio.Task[_Worker]] = []  # replacements of killed workers, starting
        self._reaping: set[asyncio.Task[int]] = set()
        self._generation = 0  # one more at each close: a job's worker killed by close is not replaced

    @property
    def pids(self) -> set[int]:
        """The process ids of the workers started and not stopped (idle or busy)."""
        return {w.proc.pid for w in (*self._idle, *self._busy)}

    @classmethod
    def from_settings(cls, settings: Settings, *, preload: Sequence[str] = ()) -> Sandbox:
        limits = Limits(
            settings.sandbox_deadline_secs, settings.sandbox_memory_mb, settings.sandbox_output_chars
        )
        return cls(limits, workers=settings.sandbox_workers, preload=preload)

    async def run(
        self,
        fn: Callable[..., Any],
        *args: Any,
        deadline_secs: float | None = None,
        output_chars: int | None = None,
    ) -> Any:
        """The JSON result of ``fn(*args)``; LimitExceeded past a limit, SandboxError if the worker
        fails, and the job's own error if it raised one of server/errors.py."""
        name = f"{fn.__module__}:{fn.__qualname__}"
        deadline = deadline_secs if deadline_secs is not None else self.limits.deadline_secs
        cap = output_chars if output_chars is not None else self.limits.output_chars
        job = orjson.dumps({"fn": name, "args": args, "deadline_secs": deadline, "output_chars": cap})
        async with self._slots:
            generation = self._generation
            worker = await self._take()
            self._busy.add(worker)
            reusable = False
            try:
                if self.on_dispatch is not None:
                    self.on_dispatch(name)
                try:
                    async with asyncio.timeout(deadline):
                        await worker.send(job)
                        reply = await worker.receive(cap * _BYTES_PER_CHAR + _FRAME_SLACK_BYTES)
                except TimeoutError:
                    raise LimitExceeded("time", f"took longer than {deadline:g} s") from None
                reusable = "limit" not in reply  # after MemoryError a worker exits by itself
            finally:
                # A worker whose job was cancelled, timed out or failed may still be computing, or
                # have a reply on its way that the next job would read: it is killed, never reused.
                self._busy.discard(worker)
                if reusable:
                    self._idle.append(worker)
                else:
                    self._discard(worker)
                    if generation == self._generation:
                        # Its replacement starts now (half a second of imports), not when the next
                        # job (maybe the next message of a campaign) needs it.
                        self._warming.append(asyncio.ensure_future(self._start()))
        return self._result(reply, cap)

    def _result(self, reply: dict[str, Any], cap: int) -> Any:
        if "ok" in reply:
            return reply["ok"]
        limit = reply.get("limit")
        if limit == "memory":
            raise LimitExceeded("memory", f"needed more than {self.limits.memory_mb} MB of memory")
        if limit == "output":
            raise LimitExceeded("output", f"gave more than {cap:,} characters")
        refused = reply.get("refused")
        if isinstance(refused, str):
            kind = getattr(errors, refused, None)
            if not (isinstance(kind, type) and issubclass(kind, errors.LivewallError)):
                kind = errors.InvalidInput
            raise kind(str(reply.get("message")), code=str(reply.get("code")))
        raise SandboxError(f"the job failed: {reply.get('failed', 'no answer')}")

    async def _take(self) -> _Worker:
        if self._idle:
            return self._idle.pop()
        if self._warming:
            return await self._warming.pop(0)
        return await self._start()

    async def _start(self) -> _Worker:
        config = orjson.dumps({"memory_mb": self.limits.memory_mb, "preload": self.preload}).decode()
        # The server's settings (secret key, database password) stay out of a worker's environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEWALL_")}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _BOOT,
            config,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        worker = _Worker(proc)
        try:
            async with asyncio.timeout(START_SECS):
                ready = await worker.receive(_FRAME_SLACK_BYTES)
        except BaseException:
            self._discard(worker)
            raise
        if not ready.get("ready"):
            self._discard(worker)
            raise SandboxError(f"a worker process could not start: {ready.get('failed')}")
        return worker

    def _discard(self, worker: _Worker) -> None:
        with contextlib.suppress(ProcessLookupError):
            worker.proc.kill()
        task = asyncio.ensure_future(worker.proc.wait())  # reaped in the background: no zombie
        self._reaping.add(task)
        task.add_done_callback(self._reaping.discard)

    async def close(self) -> None:
        """Stop every worker: idle ones are asked to exit, busy ones killed (their callers get
        SandboxError). A job run after this starts workers again."""
        self._generation += 1
        warming, self._warming = self._warming, []
        for task in warming:
            task.cancel()  # a start cancelled kills what it started
        if warming:
            await asyncio.wait(warming)
        idle, self._idle = self._idle, []
        for task in warming:
            if not task.cancelled() and task.exception() is None:
                idle.append(task.result())
        for worker in self._busy:
            with contextlib.suppress(ProcessLookupError):
                worker.proc.kill()
        for worker in idle:
            worker.stdin.close()
        for worker in idle:
            try:
                await asyncio.wait_for(worker.proc.wait(), STOP_SECS)
            except TimeoutError:
                self._discard(worker)
        if self._reaping:
            await asyncio.wait(set(self._reaping), timeout=STOP_SECS)


# --- the worker process -----------------------------------------------------------------------------


def _child() -> None:
    """A worker's main: jobs in on standard input, replies out on (the original) standard output,
    until the input closes."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal: the parent stops us
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print goes to the log, never into a reply
    sys.stdout = sys.stderr
    source = sys.stdin.buffer
    try:
        config = orjson.loads(sys.argv[1])
        for module in config["preload"]:
            importlib.import_module(module)
        _cap_memory(int(config["memory_mb"]))
    except Exception as exc:
        _write(out, {"failed": f"{type(exc).__name__}: {exc}"[:500]})
        return
    _write(out, {"ready": True})
    while True:
        job = _read(source)
        if job is None:
            return
        reply = _run_job(job)
        _write(out, reply)
        if "limit" in reply:
            return  # after a MemoryError the process may be fragmented: a fresh one takes over


def _read(source: IO[bytes]) -> dict[str, Any] | None:
    header = source.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    job = orjson.loads(source.read(size))
    return job if isinstance(job, dict) else None


def _write(out: IO[bytes], reply: dict[str, Any]) -> None:
    frame = orjson.dumps(reply)
    out.write(_HEADER.pack(len(frame)) + frame)
    out.flush()


def _run_job(job: dict[str, Any]) -> dict[str, Any]:
    _cap_cpu(float(job["deadline_secs"]))
    try:
        result = _resolve(str(job["fn"]))(*job["args"])
        if _chars(result) > int(job["output_chars"]):
            return {"limit": "output"}
        return {"ok": result}
    except MemoryError:
        return {"limit": "memory"}
    except errors.LivewallError as exc:
        return {"refused": type(exc).__name__, "code": exc.code, "message": exc.message}
    except Exception as exc:
        return {"failed": f"{type(exc).__name__}: {exc}"[:500]}


def _resolve(name: str) -> Callable[..., Any]:
    module, _, qualname = name.partition(":")  # named by the parent, from a function it was given
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    if not callable(found):
        raise ValueError(f"{name!r} is not a function")
    return found  # type: ignore[no-any-return]


def _chars(value: Any) -> int:
    """Characters in the strings of a JSON value (keys included)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(len(str(k)) + _chars(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return sum(_chars(v) for v in value)
    return 0


def _cap_memory(memory_mb: int) -> None:
    """Address space: what start-up took plus ``memory_mb`` (Linux; elsewhere only the deadline acts)."""
    try:
        import resource

        with open("/proc/self/statm") as statm:
            size = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = size + memory_mb * 1024 * 1024
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, OSError, ValueError) as exc:
        print(f"livewall sandbox: no memory limit on this system ({exc})", file=sys.stderr)


def _cap_cpu(deadline_secs: float) -> None:
    """CPU seconds, counted over the process's life: this job may use its deadline and a second more
    (SIGXCPU then ends the process). Only the soft limit moves, so the next job can raise it again."""
    try:
        import resource

        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = math.ceil(usage.ru_utime + usage.ru_stime + deadline_secs) + 1
        _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    except (ImportError, OSError, ValueError):
        pass  # no CPU limit here: the parent's deadline still kills the process
