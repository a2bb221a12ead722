"""The sandbox: jobs in worker processes under a deadline, a memory cap, an output cap and a CPU-time
backstop; a killed worker breaks nobody else's job; workers start lazily and stop on close."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.errors import InvalidInput, NotFound
from server.sandbox import LimitExceeded, Limits, Sandbox, SandboxError
from tests.helpers import REPO
from tests.sandbox_jobs import crash, echo, hog, pid, refuse, settings_seen, shout, slow_echo, spin

JOBS = ("tests.sandbox_jobs",)  # imported by each worker before its first job

# --- helpers ----------------------------------------------------------------------------------------


def _alive(process_id: int) -> bool:
    """Running (a zombie, killed but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{process_id}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _workers_of_this_process() -> set[int]:
    """Live sandbox worker processes whose parent is this test process."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == os.getpid() and stat[0] != "Z" and b"server.sandbox" in cmdline:
            found.add(int(entry.name))
    return found


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    box = Sandbox(Limits(deadline_secs=1.0, memory_mb=64, output_chars=1000), workers=2, preload=JOBS)
    yield box
    await box.close()


# --- tests ------------------------------------------------------------------------------------------


async def test_a_job_runs_in_another_process(sandbox: Sandbox) -> None:
    """The result comes back as JSON from a worker process, not this one."""
    assert await sandbox.run(echo, {"a": [1, "二", None]}) == {"a": [1, "二", None]}
    assert await sandbox.run(pid) != os.getpid()


async def test_workers_start_lazily_and_stop_on_close(sandbox: Sandbox) -> None:
    """No process before the first job; close stops them all; a later job starts them again."""
    assert sandbox.pids == set()
    await asyncio.gather(sandbox.run(slow_echo, 1, 0.2), sandbox.run(slow_echo, 2, 0.2))
    started = sandbox.pids
    assert len(started) == 2 and all(_alive(p) for p in started)
    await sandbox.close()
    assert sandbox.pids == set() and not any(_alive(p) for p in started)
    assert await sandbox.run(echo, "again") == "again"


async def test_a_job_past_its_deadline_is_killed_and_others_go_on(sandbox: Sandbox) -> None:
    """The spinning job's worker is killed at the deadline; the job beside it finishes; the next runs."""
    t = time.monotonic()
    spinning = asyncio.ensure_future(sandbox.run(spin))
    assert await sandbox.run(slow_echo, "beside", 0.1) == "beside"
    assert not spinning.done()
    with pytest.raises(LimitExceeded, match="took longer than 1 s") as caught:
        await spinning
    assert caught.value.limit == "time" and time.monotonic() - t < 3
    assert await sandbox.run(echo, "next") == "next"


async def test_the_killed_worker_is_gone_and_replaced(sandbox: Sandbox) -> None:
    """A worker past its deadline does not keep running; a fresh one takes its place."""
    first = await sandbox.run(pid)
    with pytest.raises(LimitExceeded):
        await sandbox.run(spin)
    second = await sandbox.run(pid)
    assert second != first
    await sandbox.close()  # reaps the killed one
    assert not _alive(first)


async def test_memory_over_the_cap_is_refused(sandbox: Sandbox) -> None:
    """A job allocating past its cap gets MemoryError in the worker: LimitExceeded("memory")."""
    assert await sandbox.run(hog, 16) == 16 * 1024 * 1024
    with pytest.raises(LimitExceeded, match="more than 64 MB") as caught:
        await sandbox.run(hog, 512)
    assert caught.value.limit == "memory"
    assert await sandbox.run(echo, "fine") == "fine"


async def test_output_over_the_cap_is_refused(sandbox: Sandbox) -> None:
    """A result longer than output_chars never reaches the caller."""
    assert await sandbox.run(shout, 1000) == "x" * 1000
    with pytest.raises(LimitExceeded, match="more than 1,000 characters") as caught:
        await sandbox.run(shout, 1001)
    assert caught.value.limit == "output"


async def test_errors_of_the_tree_come_back_as_themselves(sandbox: Sandbox) -> None:
    """A job's InvalidInput or NotFound is raised again in the caller, class, code and message."""
    with pytest.raises(InvalidInput) as invalid:
        await sandbox.run(refuse, "bad_template")
    assert invalid.value.code == "bad_template" and invalid.value.message == "no such thing"
    with pytest.raises(NotFound):
        await sandbox.run(refuse, "not_found")


async def test_a_crashed_worker_fails_its_job_only(sandbox: Sandbox) -> None:
    """A worker that dies answers SandboxError for its job; the next job gets a new worker."""
    with pytest.raises(SandboxError, match="stopped"):
        await sandbox.run(crash)
    assert await sandbox.run(echo, 1) == 1


async def test_a_cancelled_job_leaves_no_stale_answer() -> None:
    """The worker of a cancelled job is not reused: the next job never reads the old job's reply."""
    box = Sandbox(Limits(deadline_secs=5.0, memory_mb=64, output_chars=1000), workers=1, preload=JOBS)
    dispatched = asyncio.Event()
    box.on_dispatch = lambda _name: dispatched.set()
    try:
        first = asyncio.ensure_future(box.run(slow_echo, "first", 0.3))
        await dispatched.wait()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert await box.run(echo, "second") == "second"
    finally:
        await box.close()


async def test_close_during_a_job_fails_it_and_leaves_no_process() -> None:
    """A job running at close gets SandboxError; no worker is left or started again by it."""
    box = Sandbox(Limits(deadline_secs=5.0, memory_mb=64, output_chars=1000), workers=1, preload=JOBS)
    dispatched = asyncio.Event()
    box.on_dispatch = lambda _name: dispatched.set()
    job = asyncio.ensure_future(box.run(spin))
    await dispatched.wait()
    await box.close()
    with pytest.raises(SandboxError, match="stopped"):
        await job
    assert box._warming == []  # no replacement started for a worker that close killed
    await box.close()  # reaps what the first close killed
    assert box.pids == set() and _workers_of_this_process() == set()


async def test_workers_do_not_see_the_servers_settings(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LIVEWALL_* variables (the secret key, the database password) stay out of a worker."""
    monkeypatch.setenv("LIVEWALL_SECRET_KEY", "do-not-leak")
    assert await sandbox.run(settings_seen) == []


def test_cpu_limit_ends_a_worker_nobody_watches() -> None:
    """RLIMIT_CPU, set before each job, ends a spinning worker by itself (SIGXCPU) if its parent is
    gone; the deadline is 0.1 s, so the limit is 2 s of CPU."""
    code = "from server.sandbox import _cap_cpu; _cap_cpu(0.1)\nwhile True: pass"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=30, check=False)
    assert proc.returncode == -signal.SIGXCPU
