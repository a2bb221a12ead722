"""Fixtures: temporary data dirs, an in-process server, and real redis-server / PostgreSQL instances."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from server.config import Settings
from tests.helpers import Running, free_port, serve

IN_CI = os.environ.get("CI") == "true"


def make_settings(tmp: Path, **overrides: object) -> Settings:
    base = {
        "data_dir": tmp,
        "secret_key": "test-secret",
        "port": free_port(),
        "log_json": False,
        "presence_tick_secs": 0.1,
    }
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    """The app on the embedded defaults (SQLite, in-process hub), under real uvicorn."""
    async with serve(make_settings(tmp_path)) as r:
        yield r


def _need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        if IN_CI:
            pytest.fail(f"{binary} is not installed; tests/run.sh installs it")
        pytest.skip(f"{binary} is not installed (tests/run.sh installs it)")
    return path


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A private redis-server on a free port, nothing persisted; stopped after the session."""
    binary = _need("redis-server")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="lw-redis-")
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
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.02)
    client.close()
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def redis_clean(redis_url: str) -> str:
    """The session's redis, emptied for this test."""
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    client.close()
    return redis_url


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / name).exists():
            return str(root / name)
    return None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server URL (without database): LIVEWALL_TEST_POSTGRES_URL, or a private cluster."""
    given = os.environ.get("LIVEWALL_TEST_POSTGRES_URL")
    if given:
        yield given.rstrip("/")
        return
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        if IN_CI:
            pytest.fail("PostgreSQL binaries not found; tests/run.sh installs them")
        pytest.skip("PostgreSQL binaries not found")
    workdir = Path(tempfile.mkdtemp(prefix="lw-pg-"))
    datadir = workdir / "data"
    port = free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(workdir, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_user, initdb, "-D", str(datadir), "-A", "trust", "-U", "postgres", "--no-sync"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_user,
            pg_ctl,
            "-D",
            str(datadir),
            "-l",
            str(workdir / "log"),
            "-w",
            "-o",
            f"-p {port} -k {workdir} -h 127.0.0.1 -F",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(datadir), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the test PostgreSQL server, dropped afterwards."""
    import psycopg

    name = f"lw_{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{postgres_server}/{name}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
