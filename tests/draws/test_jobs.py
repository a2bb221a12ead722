"""Draw recomputation and the winner function run in sandbox worker processes, with the same answers
as in-process; the public page never calls a record "not valid" because it could not be checked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from server.draws import jobs, rules
from server.sandbox import Limits, Sandbox
from tests.draws.test_flow import _drawn
from tests.helpers import Running


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    box = Sandbox(
        Limits(deadline_secs=2.0, memory_mb=256, output_chars=50_000), preload=("server.draws.jobs",)
    )
    yield box
    await box.close()


def _record() -> dict[str, Any]:
    seed = bytes(range(32))
    entrants = [
        rules.Entrant(f"e{i:04d}", weight=1 + i % 5, tiers=None if i % 3 else (1,)) for i in range(300)
    ]
    order = rules.tier_order(seed, 2, True)
    spec = rules.DrawSpec(tier_counts=(3, 2), tier_order=order, absent=(2,))
    winners, _ = rules.pick_winners(seed, entrants, spec)
    return {
        "algorithm": rules.ALGORITHM,
        "seed": seed.hex(),
        "seed_sha256": rules.sha256_hex(seed),
        "entrants_sha256": rules.entrants_digest(entrants),
        "entrants": [{"id": e.id, "weight": e.weight, "shakes": 0, "tiers": e.tiers} for e in entrants],
        "tiers": [{"name": "A", "count": 3}, {"name": "B", "count": 2}],
        "tier_order": list(order),
        "tier_order_random": True,
        "absent": [2],
        "winners": [{"place": w.place, "tier": w.tier, "entrant": w.entrant} for w in winners],
    }


async def test_verification_in_a_worker_gives_the_same_verdict(sandbox: Sandbox) -> None:
    """VALID for a true record and the same problems for a tampered one, as rules.verify_record."""
    record = _record()
    verdict = await jobs.verify(sandbox, record)
    assert verdict.valid and verdict == rules.verify_record(record)
    record["winners"][0]["entrant"] = "e9999"
    tampered = await jobs.verify(sandbox, record)
    assert not tampered.valid and tampered == rules.verify_record(record)


async def test_the_winner_function_in_a_worker_gives_the_same_winners(sandbox: Sandbox) -> None:
    """jobs.pick is rules.pick_winners, computed in a worker."""
    seed = bytes.fromhex("ab" * 32)
    entrants = [rules.Entrant(f"v{i}", weight=1 + i % 7, shakes=i % 4) for i in range(500)]
    spec = rules.DrawSpec(tier_counts=(4, 1), tier_order=(1, 0), shake_race=True, absent=(1, 3))
    expected, _ = rules.pick_winners(seed, entrants, spec)
    assert await jobs.pick(sandbox, seed, entrants, spec) == expected


async def test_draw_and_verify_page_compute_in_a_worker(running: Running) -> None:
    """draw.run picks the winners and GET /d/CODE recomputes them in sandbox workers; the page says
    valid."""
    seen: list[str] = []
    running.app.state.services.sandbox.on_dispatch = seen.append
    *_, drawn = await _drawn(running)
    assert seen == ["server.draws.jobs:pick_job"]
    async with httpx.AsyncClient(base_url=running.base) as http:
        page = await http.get(f"/d/{drawn['code']}")
    assert page.status_code == 200 and 'data-verdict="valid"' in page.text
    assert seen == ["server.draws.jobs:pick_job", "server.draws.jobs:verify_job"]


async def test_a_recomputation_that_fails_is_not_called_invalid(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past its deadline, the page says the record was not checked, never that it is not valid."""
    *_, drawn = await _drawn(running)
    monkeypatch.setattr(jobs, "DRAW_DEADLINE_SECS", 1e-6)
    async with httpx.AsyncClient(base_url=running.base) as http:
        page = await http.get(f"/d/{drawn['code']}")
    assert page.status_code == 200
    assert 'data-verdict="unchecked"' in page.text and 'data-verdict="invalid"' not in page.text
