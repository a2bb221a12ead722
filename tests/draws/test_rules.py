"""The winner function: uniform, weighted as documented, never a duplicate, verifiable, tamper-evident."""

from __future__ import annotations

import copy
import hashlib
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server import text
from server.draws import rules
from server.draws.rules import DrawSpec, Entrant

# Chi-square critical values at significance 0.001 (df: value), from the standard table.
CHI2_999 = {4: 18.467, 9: 27.877}
RUNS = 4000


def _seed(i: int) -> bytes:
    """Fixed seeds, so the statistical tests are deterministic (the function under test is pure)."""
    return hashlib.sha256(f"test-seed-{i}".encode()).digest()


def _chi2(observed: Counter[str], expected: dict[str, float]) -> float:
    return sum((observed[k] - e) ** 2 / e for k, e in expected.items())


def _one(n: int) -> DrawSpec:
    return DrawSpec(tier_counts=(n,), tier_order=(0,))


def test_first_place_is_uniform() -> None:
    """Over 4,000 draws among 10 entrants, each wins about as often (chi-square, p = 0.001)."""
    entrants = [Entrant(f"e{i}") for i in range(10)]
    wins = Counter(rules.pick_winners(_seed(i), entrants, _one(1))[0][0].entrant for i in range(RUNS))
    assert _chi2(wins, {e.id: RUNS / 10 for e in entrants}) < CHI2_999[9]


def test_weights_are_chances() -> None:
    """An entrant with 3 chances wins three times as often as one with 1 (chi-square, p = 0.001)."""
    weights = {"a": 1, "b": 1, "c": 2, "d": 3, "e": 3}
    entrants = [Entrant(k, w) for k, w in weights.items()]
    wins = Counter(rules.pick_winners(_seed(i), entrants, _one(1))[0][0].entrant for i in range(RUNS))
    total = sum(weights.values())
    assert _chi2(wins, {k: RUNS * w / total for k, w in weights.items()}) < CHI2_999[4]


@given(
    ids=st.lists(st.text("abcdef0123456789", min_size=1, max_size=6), max_size=40, unique=True),
    weights=st.lists(st.integers(1, 5), min_size=40, max_size=40),
    counts=st.lists(st.integers(1, 8), min_size=1, max_size=4),
    seed=st.binary(min_size=32, max_size=32),
    absent=st.lists(st.integers(1, 20), max_size=5),
)
def test_no_duplicates_and_no_pool_reset(
    ids: list[str], weights: list[int], counts: list[int], seed: bytes, absent: list[int]
) -> None:
    """Whatever the entrants, prizes and re-draws: no entrant holds two places, an absent winner
    never comes back, and more places than entrants leaves places empty (never a pool reset)."""
    entrants = [Entrant(i, w) for i, w in zip(ids, weights, strict=False)]
    spec = DrawSpec(tuple(counts), tuple(range(len(counts))), absent=tuple(absent))
    winners, replaced = rules.pick_winners(seed, entrants, spec)
    holders = [w.entrant for w in winners]
    assert len(holders) == len(set(holders))
    assert len(winners) <= min(sum(counts), len(entrants))
    assert not {r.entrant for r in replaced} & set(holders)
    if len(entrants) >= sum(counts) + len(replaced):
        assert len(winners) == sum(counts)
    again, _ = rules.pick_winners(seed, entrants, spec)
    assert again == winners  # deterministic


def test_tier_eligibility() -> None:
    """An entrant only eligible for tier 1 never takes tier 0."""
    entrants = [Entrant("buyer", tiers=(0, 1)), Entrant("guest", tiers=(1,)), Entrant("guest2", tiers=(1,))]
    for i in range(50):
        winners, _ = rules.pick_winners(_seed(i), entrants, DrawSpec((1, 2), (0, 1)))
        assert {(w.tier, w.entrant) for w in winners if w.tier == 0} == {(0, "buyer")}


def test_random_tier_order_comes_from_the_seed() -> None:
    """A random tier order is a permutation fixed by the seed."""
    orders = {rules.tier_order(_seed(i), 4, True) for i in range(50)}
    assert all(sorted(o) == [0, 1, 2, 3] for o in orders) and len(orders) > 5
    assert rules.tier_order(_seed(1), 4, False) == (0, 1, 2, 3)


def _record() -> dict[str, Any]:
    seed = _seed(7)
    entrants = [Entrant(f"id{i:02d}", 1 + i % 3) for i in range(12)]
    spec = DrawSpec((1, 2), rules.tier_order(seed, 2, False), absent=(2,))
    winners, _ = rules.pick_winners(seed, entrants, spec)
    return {
        "algorithm": rules.ALGORITHM,
        "draw": "abc",
        "tiers": [{"name": "big", "count": 1}, {"name": "small", "count": 2}],
        "tier_order_random": False,
        "tier_order": list(spec.tier_order),
        "seed": seed.hex(),
        "seed_sha256": rules.sha256_hex(seed),
        "entrants_sha256": rules.entrants_digest(entrants),
        "entrants": [{"id": e.id, "weight": e.weight, "shakes": 0, "tiers": None} for e in entrants],
        "absent": [2],
        "winners": [{"place": w.place, "tier": w.tier, "entrant": w.entrant} for w in winners],
    }


def test_an_untouched_record_verifies() -> None:
    verdict = rules.verify_record(_record())
    assert verdict.valid and not verdict.problems and len(verdict.winners) == 3


def _drop_entrant(r: dict[str, Any]) -> None:
    r["entrants"].pop()


def _add_entrant(r: dict[str, Any]) -> None:
    r["entrants"].append({"id": "sybil", "weight": 1, "shakes": 0, "tiers": None})


def _heavier(r: dict[str, Any]) -> None:
    r["entrants"][0]["weight"] = 9


def _other_seed(r: dict[str, Any]) -> None:
    r["seed"] = _seed(8).hex()


def _matching_seed(r: dict[str, Any]) -> None:
    r["seed"] = _seed(8).hex()
    r["seed_sha256"] = rules.sha256_hex(_seed(8))


def _other_winner(r: dict[str, Any]) -> None:
    taken = {w["entrant"] for w in r["winners"]}
    r["winners"][0]["entrant"] = next(e["id"] for e in r["entrants"] if e["id"] not in taken)


def _swap_places(r: dict[str, Any]) -> None:
    r["winners"][0]["entrant"], r["winners"][1]["entrant"] = (
        r["winners"][1]["entrant"],
        r["winners"][0]["entrant"],
    )


def _forget_absent(r: dict[str, Any]) -> None:
    r["absent"] = []


def _duplicate(r: dict[str, Any]) -> None:
    r["entrants"].append(dict(r["entrants"][0]))


@pytest.mark.parametrize(
    "tamper",
    [_drop_entrant, _add_entrant, _heavier, _other_seed, _matching_seed, _other_winner, _swap_places,
     _forget_absent, _duplicate],
)  # fmt: skip
def test_any_tampering_fails_verification(tamper: Any) -> None:
    """Change an entrant, a weight, the seed (with or without its hash), a winner, a re-draw: caught."""
    record = copy.deepcopy(_record())
    tamper(record)
    assert not rules.verify_record(record).valid


def test_malformed_records_are_not_valid() -> None:
    assert not rules.verify_record({}).valid
    assert not rules.verify_record({**_record(), "seed": "zz"}).valid


@pytest.mark.parametrize(
    ("name", "masked"),
    [("张三", "张*"), ("张小三", "张*三"), ("欧阳娜娜", "欧**娜"), ("Alice", "A***e"),
     ("a.b@x.com", "a***@x.com"), (None, "***"), ("X", "*")],
)  # fmt: skip
def test_masking(name: str | None, masked: str) -> None:
    """Winner names never appear whole on the screen or in the record."""
    assert text.mask_name(name) == masked


def test_phone_masking() -> None:
    assert text.mask_phone("+8613812345678") == "+86138****5678"


def _facts(**kw: Any) -> rules.SettleFacts:
    base: dict[str, Any] = dict(
        exclude_winners=False, max_wins=None, weights={}, tier_eligible=("all",), wins={}, did={}
    )
    return rules.SettleFacts(**{**base, **kw})


def _candidates(*viewers: str) -> list[rules.Candidate]:
    return [rules.Candidate(v, f"p-{v}", shakes=n) for n, v in enumerate(viewers)]


def test_settling_keeps_everyone_with_one_chance_by_default() -> None:
    """No exclusions or weights: every entry stays with one chance, its shakes and every tier."""
    settled = rules.settle_entrants(_candidates("a", "b"), _facts())
    assert settled.excluded == frozenset()
    assert settled.entrants == {"a": Entrant("p-a", 1, 0, None), "b": Entrant("p-b", 1, 1, None)}
    assert settled.digest == rules.entrants_digest(list(settled.entrants.values()))


def test_settling_excludes_earlier_winners_and_viewers_at_max_wins() -> None:
    """exclude_winners leaves out anyone who holds a place in the room; max_wins those at the cap."""
    wins = {"a": 1, "b": 2}
    everyone = _candidates("a", "b", "c")
    assert rules.settle_entrants(everyone, _facts(exclude_winners=True, wins=wins)).excluded == {"a", "b"}
    capped = rules.settle_entrants(everyone, _facts(max_wins=2, wins=wins))
    assert capped.excluded == {"b"} and set(capped.entrants) == {"a", "c"}


def test_settling_counts_extra_chances_and_fixes_tier_eligibility() -> None:
    """Each action a viewer did adds its extra chances; a tier for followers only is not open to others."""
    facts = _facts(
        weights={"asked": 2, "delivered": 3},
        tier_eligible=("all", "followers"),
        did={"asked": frozenset({"a", "b"}), "delivered": frozenset({"a"}), "followers": frozenset({"b"})},
    )
    settled = rules.settle_entrants(_candidates("a", "b", "c"), facts)
    assert {v: (e.weight, e.tiers) for v, e in settled.entrants.items()} == {
        "a": (6, (0,)),
        "b": (3, None),
        "c": (1, (0,)),
    }


def test_settling_can_leave_an_entrant_no_tier() -> None:
    """An entrant eligible for no tier stays in the list (and is hashed) with an empty tier list."""
    settled = rules.settle_entrants(_candidates("a"), _facts(tier_eligible=("buyers",)))
    assert settled.entrants["a"].tiers == ()
