"""Draws on the wire: client messages parsed into typed commands, and the shapes sent back (the draw
for the screen and the console, a viewer's own entries and wins, the public record, the CSV export).
This is the one module of the domain that handles raw ``dict[str, Any]``."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

import orjson

from server import text
from server.draws import rules
from server.errors import InvalidInput
from server.httputil import csv_cell
from server.i18n import normalize
from server.products.rules import clean_url
from server.storage.models import Draw, DrawEntry, DrawWinner
from server.text import clean_email, clean_id, clean_phone, clean_text

# Direct (unsequenced) frames this domain sends, with their one-line docs.
DIRECT_TYPES = {"draw.entry": "the viewer is in a draw (by joining, a keyword comment, or what they did)"}

MODES = ("everyone", "join", "keyword", "askers", "claimers", "buyers", "shake")
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


# --- commands -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tier:
    name: str
    count: int
    image_url: str | None = None
    eligible: str = "all"


@dataclass(frozen=True)
class CreateDraw:
    """draw.create: how the draw is set up."""

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


@dataclass(frozen=True)
class DrawRef:
    """draw.close, draw.run, draw.cancel, draw.enter: which draw."""

    id: int


# A field whose error is reported only after the draw's own checks (the answer to a message that is
# wrong twice over names the same problem as before the commands were typed).
T = TypeVar("T")
Checked: TypeAlias = T | InvalidInput


def checked(value: Checked[T]) -> T:
    """The parsed value, or its error raised now."""
    if isinstance(value, InvalidInput):
        raise value
    return value


def _parsed(parse: Callable[[], T]) -> Checked[T]:
    try:
        return parse()
    except InvalidInput as exc:
        return exc


@dataclass(frozen=True)
class PlaceRef:
    """draw.confirm, draw.absent: a place of a draw."""

    id: int
    place: Checked[int]


@dataclass(frozen=True)
class Shake:
    """draw.shake: shakes gathered on the phone (1 to SHAKES_PER_MESSAGE)."""

    id: int
    count: Checked[int]


@dataclass(frozen=True)
class Contact:
    name: str
    phone: str | None
    email: str | None
    consent: bool


@dataclass(frozen=True)
class Claim:
    """draw.claim: a winner's form (a contact that is not valid is refused once the claimant is known
    to be a winner)."""

    id: int
    lang: str | None
    contact: Checked[Contact]


def _whole(data: Mapping[str, Any], key: str, low: int, high: int, default: int | None = None) -> int:
    value = data.get(key, default)
    if value is None:
        raise InvalidInput(f"{key} is required")
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidInput(f"{key} must be a whole number from {low:,} to {high:,}")
    return value


def parse_create(data: Mapping[str, Any]) -> CreateDraw:
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
    if mode in rules.WINDOW_MODES:
        window = _whole(data, "window_secs", MIN_WINDOW_SECS, MAX_WINDOW_SECS, 30)
    else:
        window = _whole(data, "window_secs", 0, MAX_WINDOW_SECS, 0)
    max_wins = data.get("max_wins")
    return CreateDraw(
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


def parse_ref(data: Mapping[str, Any]) -> DrawRef:
    return DrawRef(clean_id(data.get("id")))


def parse_place(data: Mapping[str, Any]) -> PlaceRef:
    return PlaceRef(clean_id(data.get("id")), _parsed(lambda: clean_id(data.get("place"), "place")))


def _shakes(n: object) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= SHAKES_PER_MESSAGE:
        raise InvalidInput(f"count must be 1 to {SHAKES_PER_MESSAGE}")
    return n


def parse_shake(data: Mapping[str, Any]) -> Shake:
    return Shake(clean_id(data.get("id")), _parsed(lambda: _shakes(data.get("count"))))


def parse_claim(data: Mapping[str, Any]) -> Claim:
    lang = data.get("lang")
    return Claim(
        clean_id(data.get("id")),
        normalize(lang) if isinstance(lang, str) else None,
        _parsed(lambda: parse_contact(data)),
    )


def parse_contact(data: Mapping[str, Any], default_region: str = "CN") -> Contact:
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


# --- shapes -------------------------------------------------------------------------------------


def tiers_of(d: Draw) -> list[dict[str, Any]]:
    tiers: list[dict[str, Any]] = orjson.loads(d.tiers)
    return tiers


def tiers_json(tiers: Sequence[Tier]) -> str:
    """The tiers as stored with the draw."""
    return orjson.dumps([vars(tier) for tier in tiers]).decode()


def winner_shape(w: DrawWinner, name: str | None, *, host: bool) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "place": w.place,
        "tier": w.tier,
        "entrant": w.entrant,
        "name": name if host else text.mask_name(name),
        "status": w.status,
    }
    if host:
        shape.update(
            viewer_id=w.viewer_id,
            claim_name=w.claim_name,
            claim_phone=w.claim_phone,
            claim_email=w.claim_email,
            consent=w.consent,
            claimed_ms=w.claimed_ms,
        )
    return shape


@dataclass(frozen=True)
class DrawView:
    """Everything the draw's shapes are made from, read once per change."""

    draw: Draw
    entrants: int
    winners: list[tuple[DrawWinner, str | None]]
    sample: list[str]

    def shape(self, *, host: bool) -> dict[str, Any]:
        d = self.draw
        drawn = d.status == "drawn"
        current = [winner_shape(w, n, host=host) for w, n in self.winners if w.status != "absent" or host]
        places = sum(t["count"] for t in tiers_of(d))
        return {
            "id": d.id,
            "code": d.code,
            "title": d.title,
            "mode": d.mode,
            "keyword": d.keyword,
            "tiers": [
                {"name": t["name"], "count": t["count"], "image_url": t.get("image_url")} for t in tiers_of(d)
            ],
            "status": d.status,
            "created_ms": d.created_ms,
            "closes_ms": d.closes_ms,
            "entrants": self.entrants,
            "seed_sha256": d.seed_sha256,
            "entrants_sha256": d.entrants_sha256,
            "seed": d.seed if drawn else None,
            "winners": current,
            "unfilled": max(0, places - sum(1 for w, _ in self.winners if w.status != "absent"))
            if drawn
            else 0,
            "sample": self.sample,
            "claim_until_ms": d.claim_until_ms,
            "frozen_ms": d.frozen_ms,
            "drawn_ms": d.drawn_ms,
            "verify_path": f"/d/{d.code}",
            **(self.setup() if host else {}),
        }

    def setup(self) -> dict[str, Any]:
        """How the draw was set up (hosts: the console shows it for past draws)."""
        d = self.draw
        return {
            "setup": {
                "tiers": tiers_of(d),
                "tier_order_random": d.tier_order_random,
                "weights": orjson.loads(d.weights) if d.weights else {},
                "exclude_winners": d.exclude_winners,
                "max_wins": d.max_wins,
                "window_secs": d.window_secs,
                "claim_secs": d.claim_secs,
            }
        }


@dataclass(frozen=True)
class Entry:
    """A viewer's place among a draw's entrants: the draw and their pseudonym."""

    id: int
    entrant: str

    def shape(self) -> dict[str, Any]:
        return {"id": self.id, "entrant": self.entrant}


def redrawn_shape(view: DrawView, replaced: bool) -> dict[str, Any]:
    """draw.absent's answer: the draw, and whether somebody took the place."""
    return {**view.shape(host=True), "replaced": replaced}


def claimed_shape(w: DrawWinner) -> dict[str, Any]:
    """draw.claim's answer: the claimed place."""
    return {"id": w.draw_id, "place": w.place, "status": w.status}


@dataclass(frozen=True)
class MyDraws:
    """A viewer's entries (draw id, pseudonym) and wins in the room's recent draws."""

    entries: list[tuple[int, str]]
    wins: list[DrawWinner]

    def shape(self) -> dict[str, Any]:
        out: dict[str, Any] = {str(i): {"entrant": entrant, "wins": []} for i, entrant in self.entries}
        for w in self.wins:
            out.setdefault(str(w.draw_id), {"entrant": w.entrant, "wins": []})["wins"].append(
                {"place": w.place, "tier": w.tier, "status": w.status}
            )
        return out


@dataclass(frozen=True)
class Record:
    """The public record of a draw: everything needed to recompute its winners (no viewer ids)."""

    draw: Draw
    entries: list[DrawEntry]
    view: DrawView

    def shape(self) -> dict[str, Any]:
        d = self.draw
        drawn = d.status == "drawn"
        return {
            "algorithm": rules.ALGORITHM,
            "draw": d.code,
            "title": d.title,
            "mode": d.mode,
            "status": d.status,
            "tiers": [{"name": t["name"], "count": t["count"]} for t in tiers_of(d)],
            "tier_order_random": d.tier_order_random,
            "tier_order": orjson.loads(d.tier_order) if d.tier_order else None,
            "shake_race": d.mode == "shake",
            "seed_sha256": d.seed_sha256,
            "entrants_sha256": d.entrants_sha256,
            "seed": d.seed if drawn else None,
            "entrants": [
                {
                    "id": e.entrant,
                    "name": text.mask_name(e.name),
                    "weight": e.weight,
                    "shakes": e.shakes,
                    "tiers": orjson.loads(e.tiers) if e.tiers else None,
                }
                for e in sorted(self.entries, key=lambda e: e.entrant)
            ]
            if d.status != "open"
            else [],
            "absent": orjson.loads(d.absent),
            "winners": [
                {"place": w.place, "tier": w.tier, "entrant": w.entrant, "name": text.mask_name(n)}
                for w, n in self.view.winners
                if w.status != "absent"
            ],
            "created_ms": d.created_ms,
            "frozen_ms": d.frozen_ms,
            "drawn_ms": d.drawn_ms,
        }


EXPORT_COLUMNS = ("draw", "title", "drawn_ms", "entrants", "place", "tier", "prize", "name", "viewer_id",
                  "status", "claim_name", "claim_phone", "claim_email", "consent", "claimed_ms")  # fmt: skip


def export_csv(draws: list[dict[str, Any]]) -> str:
    """Every winner of every draw, one row each (spreadsheet-safe)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for d in draws:
        drawn = d["status"] == "drawn"
        for w in d["winners"] if drawn else []:
            row = {"draw": d["code"], "title": d["title"], "drawn_ms": d["drawn_ms"],
                   "entrants": d["entrants"], "prize": d["tiers"][w["tier"]]["name"], **w}  # fmt: skip
            writer.writerow([csv_cell(row.get(c)) for c in EXPORT_COLUMNS])
    return out.getvalue()
