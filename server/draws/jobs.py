"""The winner function and record verification as sandbox jobs (server/sandbox.py): JSON in, JSON out.

Both are pure Python over every chance of every entrant (10,000 entrants with 51 chances each: about
a second of CPU). In a thread they would hold the GIL that the event loop needs; in a worker process
they cost the loop nothing. The data is the server's own (not a user's program), so the limit is a
generous deadline, not the template's: a big draw must still be drawn.
"""

from __future__ import annotations

from typing import Any

from server.draws import rules
from server.sandbox import Sandbox

# 500,000 entrants with 51 chances each take about 40 s here; no live audience comes near that.
DRAW_DEADLINE_SECS = 120.0
# A verdict or the winners: at most 500 places of 10-character pseudonyms and a few problems.
DRAW_OUTPUT_CHARS = 200_000


def _places(places: list[rules.Place]) -> list[list[Any]]:
    return [[p.place, p.tier, p.entrant] for p in places]


def _from_places(rows: list[list[Any]]) -> list[rules.Place]:
    return [rules.Place(int(place), int(tier), str(entrant)) for place, tier, entrant in rows]


def verify_job(record: dict[str, Any]) -> dict[str, Any]:
    """``rules.verify_record`` in a worker."""
    verdict = rules.verify_record(record)
    return {
        "valid": verdict.valid,
        "problems": list(verdict.problems),
        "winners": _places(list(verdict.winners)),
    }


def pick_job(seed_hex: str, entrants: list[list[Any]], spec: dict[str, Any]) -> list[list[Any]]:
    """``rules.pick_winners`` in a worker: entrants as [id, weight, shakes, tiers], winners now."""
    found = [
        rules.Entrant(str(e), int(w), int(s), tuple(int(t) for t in tiers) if tiers is not None else None)
        for e, w, s, tiers in entrants
    ]
    draw = rules.DrawSpec(
        tier_counts=tuple(spec["tier_counts"]),
        tier_order=tuple(spec["tier_order"]),
        shake_race=bool(spec["shake_race"]),
        absent=tuple(spec["absent"]),
    )
    winners, _ = rules.pick_winners(bytes.fromhex(seed_hex), found, draw)
    return _places(winners)


async def verify(sandbox: Sandbox, record: dict[str, Any]) -> rules.Verdict:
    """The verdict on a record, computed in a worker process (SandboxError if it cannot be)."""
    out = await sandbox.run(
        verify_job, record, deadline_secs=DRAW_DEADLINE_SECS, output_chars=DRAW_OUTPUT_CHARS
    )
    return rules.Verdict(bool(out["valid"]), tuple(out["problems"]), tuple(_from_places(out["winners"])))


async def pick(
    sandbox: Sandbox, seed: bytes, entrants: list[rules.Entrant], spec: rules.DrawSpec
) -> list[rules.Place]:
    """The winners, computed in a worker process (SandboxError if they cannot be)."""
    rows = [[e.id, e.weight, e.shakes, list(e.tiers) if e.tiers is not None else None] for e in entrants]
    shape = {
        "tier_counts": list(spec.tier_counts),
        "tier_order": list(spec.tier_order),
        "shake_race": spec.shake_race,
        "absent": list(spec.absent),
    }
    out = await sandbox.run(
        pick_job, seed.hex(), rows, shape, deadline_secs=DRAW_DEADLINE_SECS, output_chars=DRAW_OUTPUT_CHARS
    )
    return _from_places(out)
