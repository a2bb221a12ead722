"""Shutting down: a step still running after a while is named in the log; steps still run to their
end, in order, and a failure still ends the shutdown as before."""

from __future__ import annotations

import asyncio
import logging

import pytest

from server import app as app_module
from server.app import _watched_step


async def test_a_slow_step_is_named_and_still_awaited(monkeypatch: pytest.MonkeyPatch) -> None:
    release, named = asyncio.Event(), asyncio.Event()
    said: list[str] = []
    finished: list[str] = []

    def error(msg: str, *args: object) -> None:
        said.append(msg % args)
        named.set()

    monkeypatch.setattr(app_module.log, "error", error)

    async def slow() -> None:
        await release.wait()
        finished.append("slow")

    step = asyncio.ensure_future(_watched_step("slow", slow(), 0.05))
    await asyncio.wait_for(named.wait(), 5)
    assert said == ["shutdown: slow has not stopped after 0 s; still waiting for it"]
    assert not step.done()  # named, not abandoned
    release.set()
    await step
    assert finished == ["slow"]


async def test_a_quick_step_says_nothing_and_a_failure_propagates(caplog: pytest.LogCaptureFixture) -> None:
    async def fine() -> None:
        return None

    async def failing() -> None:
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, "livewall.app"):
        await _watched_step("fine", fine(), 1.0)
        with pytest.raises(RuntimeError, match="boom"):
            await _watched_step("failing", failing(), 1.0)
    assert "has not stopped" not in caplog.text
