"""Follow-up gives way to a claim rush: a pass woken meanwhile waits until the rush is over."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from server.config import Settings
from server.followup import runner as runner_module
from server.followup.channels.registry import make_channels
from server.followup.runner import Runner
from server.storage import Database
from tests.followup.flow import eventually


async def test_a_pass_waits_while_claims_are_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "WAKE_GAP_SECS", 0.001)
    db = Database(f"sqlite:///{tmp_path / 'f.db'}")
    await asyncio.to_thread(db.migrate)
    settings = Settings(data_dir=tmp_path, secret_key="k", followup_tick_secs=3600)
    asked: list[int] = []
    over = asyncio.Event()

    def rushing() -> bool:
        asked.append(runner.rounds)  # the rounds done when asked
        if len(asked) >= 3:
            over.set()
        return len(asked) < 3  # a rush for the first three looks

    runner = Runner(db, settings, make_channels(settings), rushing=rushing)
    try:
        await runner.start()
        await eventually(lambda: _rounds(runner, 1))  # the pass at start
        runner.wake()  # an event recorded during a rush
        await asyncio.wait_for(over.wait(), 10)
        await eventually(lambda: _rounds(runner, 2))
        # The woken pass came only after the rush: every look before it saw one pass done.
        assert asked[:3] == [1, 1, 1]
    finally:
        await runner.stop()
        await db.dispose()


async def _rounds(runner: Runner, n: int) -> bool:
    return runner.rounds >= n
