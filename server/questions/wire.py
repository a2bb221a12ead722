"""The questions domain on the wire: client data parsed into typed commands, results shaped into the
dicts clients get (the only place in the domain where raw dicts are made or read)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from server.errors import InvalidInput
from server.questions import rules
from server.questions.store import AnyItem
from server.storage.models import Item, ModerationLog, RoomSettings, Sanction, Vote
from server.text import clean_id

# Direct (unsequenced) frames this domain sends, with their one-line docs.
DIRECT_TYPES = {"mine": "one of the viewer's own items changed (status, answer, private reply)"}

NOT_A_PRODUCT = "product_id is not a product of this room"
# What the moderation log keeps of a settings change (the request as sent).
SETTINGS_DETAIL_MAX_CHARS = 2000


# --- commands -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PostItem:
    """item.submit: a viewer's comment, question, suggestion, concern or need, maybe about a product."""

    kind: str
    text: str
    product_id: int | None


@dataclass(frozen=True, slots=True)
class CastVote:
    """item.vote: add (up) or withdraw a viewer's vote."""

    item_id: int
    up: bool


@dataclass(frozen=True, slots=True)
class React:
    """reaction: a phone's aggregated taps, counts per reaction kind."""

    counts: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Moderate:
    """item.approve|hide|restore|answered|reopen: a status change by a host."""

    item_id: int
    command: str


@dataclass(frozen=True, slots=True)
class ClaimItem:
    """item.claim (take) or item.release: a moderator takes an item or lets it go."""

    item_id: int
    take: bool


@dataclass(frozen=True, slots=True)
class Spotlight:
    """item.spotlight: answer an item now on the big screen; None clears the spotlight."""

    item_id: int | None


@dataclass(frozen=True, slots=True)
class AnswerItem:
    """item.answer (everyone sees it) or item.reply (private: only the asker sees it)."""

    item_id: int
    text: str
    private: bool


@dataclass(frozen=True, slots=True)
class SanctionViewer:
    """viewer.sanction: mute for N minutes, ban for the session, or pardon."""

    viewer_id: str
    mode: str
    minutes: int | None  # for "mute"
    detail: str  # what the moderation log records: the minutes as sent


@dataclass(frozen=True, slots=True)
class UpdateSettings:
    """settings.update: the settings given change, None leaves one as it is."""

    moderation: str | None = None
    slow_mode_secs: float | None = None
    layout: str | None = None
    blocklist: list[str] | None = None
    detail: str = ""  # what the moderation log records: the request as sent


# --- parsing ----------------------------------------------------------------------------------------


def parse_post(data: Mapping[str, Any]) -> PostItem:
    kind = rules.clean_kind(data.get("kind", "comment"))
    text = rules.clean_item_text(kind, data.get("text"))
    product_id = data.get("product_id")
    if product_id is not None and not isinstance(product_id, int):
        raise InvalidInput(NOT_A_PRODUCT)
    return PostItem(kind, text, product_id)


def parse_vote(data: Mapping[str, Any]) -> CastVote:
    up = data.get("up", True)
    if not isinstance(up, bool):
        raise InvalidInput('"up" must be true or false')
    return CastVote(clean_id(data.get("id")), up)


def parse_reaction(data: Mapping[str, Any]) -> React:
    return React(rules.clean_reactions(data.get("counts")))


def parse_moderate(data: Mapping[str, Any], *, command: str) -> Moderate:
    return Moderate(clean_id(data.get("id")), command)


def parse_claim(data: Mapping[str, Any], *, take: bool) -> ClaimItem:
    return ClaimItem(clean_id(data.get("id")), take)


def parse_spotlight(data: Mapping[str, Any]) -> Spotlight:
    item_id = data.get("id")
    return Spotlight(None if item_id is None else clean_id(item_id))


def parse_answer(data: Mapping[str, Any], *, private: bool) -> AnswerItem:
    item_id = clean_id(data.get("id"))
    return AnswerItem(item_id, rules.clean_answer(data.get("text")), private)


def parse_sanction(data: Mapping[str, Any]) -> SanctionViewer:
    viewer_id = data.get("viewer_id")
    if not isinstance(viewer_id, str) or len(viewer_id) > 32:
        raise InvalidInput("viewer_id must be a viewer id")
    mode = data.get("mode")
    if not isinstance(mode, str) or mode not in rules.SANCTION_MODES:
        raise InvalidInput('mode must be "mute", "ban" or "pardon"')
    minutes = rules.clean_minutes(data.get("minutes")) if mode == "mute" else None
    return SanctionViewer(viewer_id, mode, minutes, detail=str(data.get("minutes") or ""))


def parse_settings(data: Mapping[str, Any]) -> UpdateSettings:
    moderation = data.get("moderation")
    if "moderation" in data and moderation not in rules.MODERATION_MODES:
        raise InvalidInput('moderation must be "post" or "pre"')
    slow = rules.clean_slow_mode(data["slow_mode_secs"]) if "slow_mode_secs" in data else None
    layout = data.get("layout")
    if "layout" in data and layout not in rules.LAYOUTS:
        raise InvalidInput(f"layout must be one of {', '.join(rules.LAYOUTS)}")
    words = rules.clean_blocklist(data["blocklist"]) if "blocklist" in data else None
    unknown = set(data) - {"moderation", "slow_mode_secs", "layout", "blocklist"}
    if unknown:
        raise InvalidInput(f"unknown settings: {', '.join(sorted(unknown))}")
    return UpdateSettings(
        moderation, slow, layout, words, detail=orjson.dumps(dict(data)).decode()[:SETTINGS_DETAIL_MAX_CHARS]
    )


# --- shapes -----------------------------------------------------------------------------------------


def public_item(item: AnyItem) -> dict[str, Any]:
    """What viewers and the big screen see of an item."""
    return {
        "id": item.id,
        "kind": item.kind,
        "text": item.text,
        "author": item.author,
        "product_id": item.product_id,
        "status": item.status,
        "votes": item.votes,
        "answer": item.answer,
        "created_ms": item.created_ms,
        "answered_ms": item.answered_ms,
    }


def public_or_none(item: AnyItem | None) -> dict[str, Any] | None:
    return public_item(item) if item is not None else None


def spotlight_result(item: AnyItem | None) -> dict[str, Any]:
    return {"item": public_or_none(item)}


def host_item(item: AnyItem) -> dict[str, Any]:
    """What hosts see: everything, including who posted it and who is handling it."""
    return {
        **public_item(item),
        "viewer_id": item.viewer_id,
        "blocked_word": item.blocked_word,
        "claimed_by": item.claimed_by,
        "reply": item.reply,
    }


def mine_item(item: AnyItem) -> dict[str, Any]:
    """What the asker sees of their own item: its status, the public answer and the private reply."""
    return {**public_item(item), "reply": item.reply}


def vote_result(vote: CastVote, votes: int) -> dict[str, Any]:
    return {"id": vote.item_id, "votes": votes, "voted": vote.up}


def settings_shape(settings: RoomSettings) -> dict[str, Any]:
    return {
        "moderation": settings.moderation,
        "slow_mode_secs": settings.slow_mode_secs,
        "layout": settings.layout,
    }


def sanction_shape(sanction: Sanction) -> dict[str, Any]:
    return {
        "viewer_id": sanction.viewer_id,
        "mute_until_ms": sanction.mute_until_ms,
        "banned": sanction.banned,
    }


def export_shape(
    room_id: str, items: Iterable[Item], votes: Iterable[Vote], log: Iterable[ModerationLog], count: int
) -> dict[str, Any]:
    """A room's export: every item in the host's shape, every vote, every moderation action."""
    return {
        "room": room_id,
        "items": [host_item(i) for i in items],
        "votes": [
            {"item_id": v.item_id, "viewer_id": v.viewer_id, "created_ms": v.created_ms} for v in votes
        ],
        "moderation": [
            {
                "actor": m.actor,
                "action": m.action,
                "item_id": m.item_id,
                "viewer_id": m.viewer_id,
                "detail": m.detail,
                "created_ms": m.created_ms,
            }
            for m in log
        ],
        "count": count,
    }
