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

from server.errors import InvalidInput
from server.products.rules import clean_url
from server.text import clean_email, clean_phone, clean_text

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


# --- validation ---------------------------------------------------------------------------------

MODES = ("everyone", "join", "keyword", "askers", "claimers", "buyers", "shake")
WINDOW_MODES = ("everyone", "join", "keyword", "shake")  # entered during a window
ELIGIBLE = ("all", "followers", "askers", "claimers", "buyers")
# Extra chances a viewer earns by what they did in the room (e.g. a delivered order: 3).
WEIGHT_ACTIONS = ("asked", "claimed", "paid", "delivered", "followed")
MAX_TIERS = 10
MAX_WINNERS = 500
MAX_EXTRA_CHANCES = 10
MIN_WINDOW_SECS = 5
MAX_WINDOW_SECS = 3600
MIN_CLAIM_SECS = 60
MAX_CLAIM_SECS = 30 * 24 * 3600
KEYWORD_MAX_CHARS = 40
SHAKES_PER_MESSAGE = 50


@dataclass(frozen=True)
class Tier:
    name: str
    count: int
    image_url: str | None = None
    eligible: str = "all"


@dataclass(frozen=True)
class CreateSpec:
    title: str
    mode: str
    keyword: str | None
    tiers: tuple[Tier, ...]
    tier_order_random: bool
    weights: dict[str, int]
    exclude_winners: bool
    max_wins: int | None
    window_secs: int
    claim_secs: int


def _whole(data: Mapping[str, Any], key: str, low: int, high: int, default: int | None = None) -> int:
    value = data.get(key, default)
    if value is None:
        raise InvalidInput(f"{key} is required")
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidInput(f"{key} must be a whole number from {low:,} to {high:,}")
    return value


def clean_create(data: Mapping[str, Any]) -> CreateSpec:
    """A draw.create message, validated; prizes as ``tiers`` or as ``prize`` + ``count`` (one tier)."""
    title = clean_text(data.get("title") or data.get("prize"), field="title", max_chars=200)
    assert title is not None
    mode = data.get("mode", "join")
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}")
    keyword = None
    if mode == "keyword":
        keyword = clean_text(data.get("keyword"), field="keyword", max_chars=KEYWORD_MAX_CHARS)
    raw_tiers = data.get("tiers")
    if raw_tiers is None:
        raw_tiers = [{"name": title, "count": data.get("count", 1), "image_url": data.get("image_url")}]
    if not isinstance(raw_tiers, list) or not 1 <= len(raw_tiers) <= MAX_TIERS:
        raise InvalidInput(f"tiers must be a list of 1 to {MAX_TIERS} prizes")
    tiers = []
    for n, raw in enumerate(raw_tiers, start=1):
        if not isinstance(raw, dict):
            raise InvalidInput(f"tier {n} must be an object")
        name = clean_text(raw.get("name"), field=f"tier {n} name", max_chars=200)
        assert name is not None
        eligible = raw.get("eligible", "all")
        if eligible not in ELIGIBLE:
            raise InvalidInput(f"tier {n} eligible must be one of {', '.join(ELIGIBLE)}")
        tiers.append(
            Tier(
                name,
                _whole(raw, "count", 1, MAX_WINNERS),
                clean_url(raw.get("image_url"), "image_url"),
                eligible,
            )
        )
    if sum(t.count for t in tiers) > MAX_WINNERS:
        raise InvalidInput(f"at most {MAX_WINNERS} winners in one draw")
    order = data.get("tier_order", "listed")
    if order not in ("listed", "random"):
        raise InvalidInput('tier_order must be "listed" or "random"')
    weights_raw = data.get("weights") or {}
    if not isinstance(weights_raw, dict) or set(weights_raw) - set(WEIGHT_ACTIONS):
        raise InvalidInput(f"weights: extra chances for {', '.join(WEIGHT_ACTIONS)}")
    weights = {k: _whole(weights_raw, k, 0, MAX_EXTRA_CHANCES) for k in weights_raw}
    if mode in WINDOW_MODES:
        window = _whole(data, "window_secs", MIN_WINDOW_SECS, MAX_WINDOW_SECS, 30)
    else:
        window = _whole(data, "window_secs", 0, MAX_WINDOW_SECS, 0)
    max_wins = data.get("max_wins")
    return CreateSpec(
        title=title,
        mode=mode,
        keyword=keyword,
        tiers=tuple(tiers),
        tier_order_random=order == "random",
        weights=weights,
        exclude_winners=bool(data.get("exclude_winners", False)),
        max_wins=None if max_wins is None else _whole(data, "max_wins", 1, 100),
        window_secs=window,
        claim_secs=_whole(data, "claim_secs", MIN_CLAIM_SECS, MAX_CLAIM_SECS, 24 * 3600),
    )


@dataclass(frozen=True)
class Contact:
    name: str
    phone: str | None
    email: str | None
    consent: bool


def clean_contact(data: Mapping[str, Any], default_region: str = "CN") -> Contact:
    """A winner's claim form: a name and a phone or an email, validated (phonenumbers, email-validator)."""
    name = clean_text(data.get("name"), field="name", max_chars=80)
    assert name is not None
    phone = clean_phone(data.get("phone"), default_region)
    email = clean_email(data.get("email"))
    if phone is None and email is None:
        raise InvalidInput("leave a phone number or an email address so the prize can reach you")
    consent = data.get("consent", False)
    if not isinstance(consent, bool):
        raise InvalidInput('"consent" must be true or false')
    return Contact(name, phone, email, consent)
