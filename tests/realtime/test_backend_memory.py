"""The in-process backend keeps the hub-backend contract (tests/realtime/contract.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from server.realtime.backends import backend_from_url
from server.realtime.backends.base import Backend, SharedRedis
from server.realtime.backends.memory import MemoryBackend
from tests.realtime.contract import ROOM, BackendContract, Make, Recorder, append_n


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    started: list[Backend] = []

    async def factory(history: int = 100) -> tuple[Backend, Recorder]:
        backend = MemoryBackend(history=history)
        recorder = Recorder()
        backend.bind(recorder)
        await backend.start()
        started.append(backend)
        return backend, recorder

    yield factory
    for backend in started:
        await backend.stop()


class TestMemoryBackend(BackendContract):
    """The shared contract, on MemoryBackend."""


def test_memory_is_the_default_backend() -> None:
    """No hub URL, or memory://, selects the in-process backend."""
    assert isinstance(backend_from_url(None, history=10), MemoryBackend)
    assert isinstance(backend_from_url("memory://", history=10), MemoryBackend)
    with pytest.raises(ValueError, match="unsupported hub URL"):
        backend_from_url("kafka://x", history=10)


def test_the_memory_backend_has_no_shared_redis() -> None:
    """No ``SharedRedis`` capability: the limiter and the stock keep their state in this process."""
    assert MemoryBackend(history=10).capability(SharedRedis) is None


async def test_each_process_start_is_a_new_epoch(make: Make) -> None:
    """History lives in memory, so a second instance (a restart) has another epoch and no events."""
    first, _rec = await make()
    await append_n(first, 3)
    second, _rec2 = await make()
    assert (await first.head(ROOM, "viewer")).epoch != (await second.head(ROOM, "viewer")).epoch
    assert (await second.head(ROOM, "viewer")).seq == 0
