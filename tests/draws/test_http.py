"""The public draw routes: a crowd opening a record or its page shares one read of it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from server.draws import store
from tests.draws.test_flow import _drawn
from tests.helpers import Running


async def test_a_crowd_shares_one_read_of_a_record(running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """Twenty phones fetching record.json and the page at once cost one build of the record."""
    *_, drawn = await _drawn(running)
    builds = 0
    build = store.record

    async def counted(*args: Any) -> Any:
        nonlocal builds
        builds += 1
        return await build(*args)

    monkeypatch.setattr(store, "record", counted)
    async with httpx.AsyncClient(base_url=running.base) as http:
        paths = [f"/d/{drawn['code']}/record.json", f"/d/{drawn['code']}"] * 10
        answers = await asyncio.gather(*(http.get(path) for path in paths))
    assert all(r.status_code == 200 for r in answers) and builds == 1
    record = json.loads(answers[0].content)
    assert record["draw"] == drawn["code"] and answers[0].headers["content-type"] == "application/json"
