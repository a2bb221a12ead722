"""Shutting down: each step gets a bounded time, so one that hangs does not keep the process alive."""

from __future__ import annotations

import asyncio
import logging

import pytest

from server.app import _bounded_step


async def test_a_step_that_swallows_its_cancellation_is_left_behind(caplog: pytest.LogCaptureFixture) -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # what a misbehaving library does

    loop = asyncio.get_running_loop()
    started = loop.time()
    with caplog.at_level(logging.ERROR, "livewall.app"):
        await _bounded_step("stubborn", stubborn(), 0.05)
    assert loop.time() - started < 1.0
    assert "stubborn did not stop within" in caplog.text
    release.set()  # let it end, so the test leaves no task behind
    await asyncio.sleep(0)


async def test_a_failing_step_is_logged_and_the_next_one_runs(caplog: pytest.LogCaptureFixture) -> None:
    ran: list[str] = []

    async def failing() -> None:
        raise RuntimeError("boom")

    async def fine() -> None:
        ran.append("fine")

    with caplog.at_level(logging.ERROR, "livewall.app"):
        await _bounded_step("failing", failing(), 1.0)
        await _bounded_step("fine", fine(), 1.0)
    assert "shutdown: failing failed" in caplog.text and "boom" in caplog.text
    assert ran == ["fine"]
