"""The questions flow on PostgreSQL: batched inserts, vote counters, claims, spotlight, export."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.helpers import Running, serve
from tests.questions import test_flow

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg_running(tmp_path: Path, postgres_url: str) -> AsyncIterator[Running]:
    async with serve(make_settings(tmp_path, database_url=postgres_url)) as running:
        yield running


async def test_votes_on_postgres(pg_running: Running) -> None:
    """Votes count once per viewer and can be withdrawn on PostgreSQL."""
    await test_flow.test_votes_once_and_withdraw(pg_running)


async def test_claims_on_postgres(pg_running: Running) -> None:
    """Claims are exclusive on PostgreSQL."""
    await test_flow.test_claim_prevents_double_handling(pg_running)


async def test_spotlight_on_postgres(pg_running: Running) -> None:
    """Spotlight, answers and private replies work on PostgreSQL."""
    await test_flow.test_spotlight_answer_and_private_reply(pg_running)


async def test_export_on_postgres(pg_running: Running) -> None:
    """The export holds everything on PostgreSQL."""
    await test_flow.test_export_has_everything(pg_running)
