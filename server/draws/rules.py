"""Pure rules of lucky draws: the winner function, commitments, verification, masking.

The winner function is documented in docs/draws.md and is the whole of how winners are chosen:

1. Every entrant has an ``id`` (a pseudonym) and an integer ``weight`` (chances, at least 1).
2. Each chance ``i`` of entrant ``e`` gets a ticket: ``HMAC-SHA256(seed, "ticket|" + e.id + "|" + i)``
   read as a 256-bit integer. An entrant's key is its highest ticket.
3. Entrants are ranked by key, highest first (ties, which need a SHA-256 collision, by id). With one
   chance each this is a uniformly random order; with weights, the first place goes to an entrant with
   probability weight / total weight, and so on without replacement.
4. Places are filled in ranking order, skipping entrants who cannot take the place (a tier they are not
   eligible for) or who were marked absent; an entrant takes at most one place. A shake race ranks by
   shakes first and uses the ranking only to break ties.
Everything is integers and SHA-256: the same record gives the same winners on any machine.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

ALGORITHM = "livewall-draw-v1"
MAX_WEIGHT = 51  # one chance plus at most 10 extra for each of the 5 actions
SEED_BYTES = 32


@dataclass(frozen=True)
class Entrant:
    id: str  # a pseudonym, stable within the draw
    weight: int = 1
    shakes: int = 0
    tiers: tuple[int, ...] | None = None  # tier indexes this entrant may win; None = all


@dataclass(frozen=True)
class Place:
    place: int  # 1-based
    tier: int  # index into the draw's tiers
    entrant: str


@dataclass(frozen=True)
class DrawSpec:
    """What decides the winners besides the seed and the entrants."""

    tier_counts: tuple[int, ...]  # winners per tier, in drawing order (tier indexes 0..n-1)
    tier_order: tuple[int, ...]  # the order tiers are drawn in
    shake_race: bool = False
    absent: tuple[int, ...] = field(default_factory=tuple)  # places re-drawn, in the order marked


def new_seed() -> bytes:
    """32 bytes from the operating system's CSPRNG."""
    return secrets.token_bytes(SEED_BYTES)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _ticket(seed: bytes, entrant_id: str, chance: int) -> int:
    digest = hmac.new(seed, f"ticket|{entrant_id}|{chance}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest, "big")


def rank(seed: bytes, entrants: Sequence[Entrant]) -> list[Entrant]:
    """Entrants in winning order (see the module docstring)."""
    keyed = [(max(_ticket(seed, e.id, i) for i in range(max(1, e.weight))), e.id, e) for e in entrants]
    keyed.sort(key=lambda k: (-k[0], k[1]))
    order = [e for _, _, e in keyed]
    if any(e.shakes for e in entrants):
        position = {e.id: n for n, e in enumerate(order)}
        order.sort(key=lambda e: (-e.shakes, position[e.id]))
    return order


def tier_order(seed: bytes, tiers: int, randomized: bool) -> tuple[int, ...]:
    """The order prize tiers are drawn in: as listed, or shuffled by the seed."""
    order = list(range(tiers))
    if randomized:
        order.sort(key=lambda t: hmac.new(seed, f"tier|{t}".encode(), hashlib.sha256).digest())
    return tuple(order)


def pick_winners(seed: bytes, entrants: Sequence[Entrant], spec: DrawSpec) -> tuple[list[Place], list[Place]]:
    """(winners now, replaced places): fills every place in tier order down the ranking; a place
    marked absent is filled again by the next eligible entrant, never the batch."""
    order = rank(seed, entrants)
    slots: list[int] = []  # tier of each place, in place order
    for t in spec.tier_order:
        slots += [t] * spec.tier_counts[t]
    used: set[str] = set()
    current: list[Place] = []

    def next_for(tier: int) -> str | None:
        for e in order:
            if e.id not in used and (e.tiers is None or tier in e.tiers):
                used.add(e.id)  # one place per entrant; an absent winner keeps theirs "used"
                return e.id
        return None

    for number, tier in enumerate(slots, start=1):
        winner = next_for(tier)
        if winner is not None:
            current.append(Place(number, tier, winner))
    replaced: list[Place] = []
    for place_number in spec.absent:
        index = next((i for i, p in enumerate(current) if p.place == place_number), None)
        if index is None:
            continue
        old = current[index]
        replaced.append(old)
        winner = next_for(old.tier)
        if winner is None:
            del current[index]
        else:
            current[index] = Place(old.place, old.tier, winner)
    return current, replaced


def entrants_digest(entrants: Sequence[Entrant]) -> str:
    """SHA-256 of the canonical entrant list (sorted by id): published when entries close."""
    return sha256_hex(canonical_entrants(entrants))


def canonical_entrants(entrants: Sequence[Entrant]) -> bytes:
    rows = [
        {
            "id": e.id,
            "weight": e.weight,
            "shakes": e.shakes,
            "tiers": list(e.tiers) if e.tiers is not None else None,
        }
        for e in sorted(entrants, key=lambda e: e.id)
    ]
    return orjson.dumps(rows, option=orjson.OPT_SORT_KEYS)


# --- records and verification -------------------------------------------------------------------


def entrants_from_record(rows: Sequence[Mapping[str, Any]]) -> list[Entrant]:
    return [
        Entrant(
            id=str(r["id"]),
            weight=int(r.get("weight", 1)),
            shakes=int(r.get("shakes", 0)),
            tiers=tuple(int(t) for t in r["tiers"]) if r.get("tiers") is not None else None,
        )
        for r in rows
    ]


@dataclass(frozen=True)
class Verdict:
    valid: bool
    problems: tuple[str, ...]
    winners: tuple[Place, ...]


def verify_record(record: Mapping[str, Any]) -> Verdict:
    """Recompute a drawn record: the seed matches its commitment, the entrants match theirs, and the
    recorded winners are exactly what the winner function gives."""
    problems: list[str] = []
    try:
        if record.get("algorithm") != ALGORITHM:
            problems.append(f"unknown algorithm {record.get('algorithm')!r}")
        seed = bytes.fromhex(str(record["seed"]))
        entrants = entrants_from_record(record["entrants"])
        tiers = record["tiers"]
        spec = DrawSpec(
            tier_counts=tuple(int(t["count"]) for t in tiers),
            tier_order=tuple(int(t) for t in record["tier_order"]),
            shake_race=bool(record.get("shake_race")),
            absent=tuple(int(p) for p in record.get("absent", [])),
        )
        recorded = [Place(int(w["place"]), int(w["tier"]), str(w["entrant"])) for w in record["winners"]]
    except (KeyError, TypeError, ValueError) as exc:
        return Verdict(False, (f"the record is incomplete or malformed: {exc}",), ())
    if sha256_hex(seed) != record.get("seed_sha256"):
        problems.append("the seed does not match the commitment published before the draw")
    if entrants_digest(entrants) != record.get("entrants_sha256"):
        problems.append("the entrant list does not match the one frozen before the draw")
    if len({e.id for e in entrants}) != len(entrants):
        problems.append("an entrant appears twice")
    if any(not 1 <= e.weight <= MAX_WEIGHT for e in entrants):
        return Verdict(False, (*problems, f"a weight is outside 1 to {MAX_WEIGHT}"), ())
    expected_order = tier_order(seed, len(tiers), bool(record.get("tier_order_random")))
    if spec.tier_order != expected_order:
        problems.append("the order of the prize tiers is not the one the seed gives")
    winners, _ = pick_winners(seed, entrants, spec)
    if sorted(winners, key=lambda p: p.place) != sorted(recorded, key=lambda p: p.place):
        problems.append("the recorded winners are not the ones the seed and the entrants give")
    return Verdict(not problems, tuple(problems), tuple(winners))


# --- settling the entrants when entries close -----------------------------------------------------

WINDOW_MODES = ("everyone", "join", "keyword", "shake")  # entered during a window


@dataclass(frozen=True)
class Candidate:
    """An entry as it stood when entries closed."""

    viewer_id: str
    entrant: str
    shakes: int = 0


@dataclass(frozen=True)
class SettleFacts:
    """What settling the entrants depends on besides the entries, read before entries close."""

    exclude_winners: bool
    max_wins: int | None
    weights: Mapping[str, int]  # what a viewer did -> extra chances for it
    tier_eligible: Sequence[str]  # each tier's audience ("all", "followers", "askers", ...)
    wins: Mapping[str, int]  # viewer -> places held in the room's other draws
    did: Mapping[str, frozenset[str]]  # a weight's action or a tier's audience -> the viewers in it


@dataclass(frozen=True)
class Settled:
    """The committed entrant list: who stays (viewer id -> entrant) and who is left out."""

    entrants: dict[str, Entrant]
    excluded: frozenset[str]
    digest: str  # SHA-256 of the canonical list, published when entries close


def settle_entrants(candidates: Sequence[Candidate], facts: SettleFacts) -> Settled:
    """Apply exclusions (earlier winners, viewers at ``max_wins``), count extra chances and fix the
    tiers each entrant may win (None: every tier)."""
    out: set[str] = set()
    for c in candidates:
        won = facts.wins.get(c.viewer_id, 0)
        if (facts.exclude_winners and won) or (facts.max_wins is not None and won >= facts.max_wins):
            out.add(c.viewer_id)

    def did(what: str, viewer_id: str) -> bool:
        return what == "all" or viewer_id in facts.did.get(what, frozenset())

    kept: dict[str, Entrant] = {}
    for c in candidates:
        if c.viewer_id in out:
            continue
        weight = 1 + sum(n for action, n in facts.weights.items() if did(action, c.viewer_id))
        eligible = tuple(i for i, what in enumerate(facts.tier_eligible) if did(what, c.viewer_id))
        tiers = None if len(eligible) == len(facts.tier_eligible) else eligible
        kept[c.viewer_id] = Entrant(c.entrant, weight, c.shakes, tiers)
    return Settled(kept, frozenset(out), entrants_digest(list(kept.values())))
