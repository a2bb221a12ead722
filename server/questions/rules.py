"""Pure rules for the audience's voice: validation, keyword filter, status, votes, sampling, sanctions."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from server.errors import Conflict, Forbidden, InvalidInput, RateLimited
from server.text import clean_text

KINDS = ("comment", "question", "suggestion", "concern", "need")
FEEDBACK_KINDS = KINDS[1:]  # everything but comments goes to the host's queue
STATUSES = ("pending", "visible", "answered", "hidden")
MODERATION_MODES = ("post", "pre")
LAYOUTS = ("wall", "spotlight", "top", "clean")
REACTIONS = ("heart", "like", "laugh", "wow", "fire", "clap")

# Danmaku must be readable while it flies: short. Questions may explain a need (size, skin type).
COMMENT_MAX_CHARS = 100
QUESTION_MAX_CHARS = 300
ANSWER_MAX_CHARS = 1000
BLOCKLIST_MAX_WORDS = 500
MUTE_MAX_MINUTES = 24 * 60

# Defaults a seller can edit: common insults and spam bait in English and Simplified Chinese.
DEFAULT_BLOCKLIST: tuple[str, ...] = (
    "fuck", "shit", "bitch", "asshole", "scam", "idiot",
    "傻逼", "傻b", "煞笔", "他妈的", "操你", "垃圾主播", "骗子", "加微信", "加v", "代购", "刷单",
)  # fmt: skip

# Separators that evaders put between the letters of a blocked word ("f.u c k", "傻 逼").
_SEPARATORS = re.compile(r"[\s\W_]+", re.UNICODE)


def normalize_for_match(text: str) -> str:
    """Fold width, case and separators: full-width letters, "f u c k" and "傻 逼" match their words."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", text).casefold())


@dataclass(frozen=True)
class Blocklist:
    """A compiled keyword list."""

    words: tuple[str, ...]

    @classmethod
    def of(cls, words: Iterable[str]) -> Blocklist:
        folded = {normalize_for_match(w) for w in words}
        return cls(tuple(sorted(w for w in folded if w)))

    def match(self, text: str) -> str | None:
        """The first blocked word in ``text``, or None."""
        folded = normalize_for_match(text)
        for word in self.words:
            if word in folded:
                return word
        return None


def clean_blocklist(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
        raise InvalidInput("blocklist must be a list of strings")
    words = [w.strip() for w in value if w.strip()]
    if len(words) > BLOCKLIST_MAX_WORDS:
        raise InvalidInput(f"at most {BLOCKLIST_MAX_WORDS} blocked words", code="too_long")
    if any(len(w) > 50 for w in words):
        raise InvalidInput("a blocked word is over 50 characters", code="too_long")
    return list(dict.fromkeys(words))


def clean_kind(value: object) -> str:
    if value not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}")
    assert isinstance(value, str)
    return value


def clean_item_text(kind: str, value: object) -> str:
    limit = COMMENT_MAX_CHARS if kind == "comment" else QUESTION_MAX_CHARS
    text = clean_text(value, field="text", max_chars=limit)
    assert text is not None
    return text


def clean_answer(value: object) -> str:
    text = clean_text(value, field="text", max_chars=ANSWER_MAX_CHARS)
    assert text is not None
    return text


def initial_status(mode: str, blocked_word: str | None) -> str:
    """Pre-moderation holds everything; a blocked word holds an item in any mode (never shown unseen)."""
    if mode == "pre" or blocked_word is not None:
        return "pending"
    return "visible"


def check_votable(status: str) -> None:
    if status not in ("visible", "answered"):
        raise Conflict("only shown questions can be voted on", code="bad_state")


def check_transition(status: str, command: str) -> str:
    """The item status after a moderation command, or Conflict."""
    table = {
        ("pending", "approve"): "visible",
        ("pending", "hide"): "hidden",
        ("visible", "hide"): "hidden",
        ("answered", "hide"): "hidden",
        ("hidden", "restore"): "visible",
        ("visible", "answered"): "answered",
        ("pending", "answered"): "answered",
        ("answered", "reopen"): "visible",
    }
    try:
        return table[(status, command)]
    except KeyError:
        raise Conflict(f"cannot {command} an item that is {status}", code="bad_state") from None


def check_not_silenced(mute_until_ms: int | None, banned: bool, now_ms: int) -> None:
    if banned:
        raise Forbidden("you cannot post in this room", code="banned")
    if mute_until_ms is not None and mute_until_ms > now_ms:
        seconds = (mute_until_ms - now_ms + 999) // 1000
        raise RateLimited(f"you are muted for {seconds} more seconds", code="muted")


def clean_minutes(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MUTE_MAX_MINUTES:
        raise InvalidInput(f"minutes must be a whole number from 1 to {MUTE_MAX_MINUTES}")
    return value


@dataclass(frozen=True)
class Candidate:
    """An item competing for a place on the wall during one tick."""

    id: int
    kind: str
    votes: int
    viewer_id: str


def sample_for_wall(items: Sequence[Candidate], cap: int) -> tuple[list[int], int]:
    """Pick at most ``cap`` item ids for the wall: questions first, then items with votes, then
    comments one viewer at a time (round robin), so one fast typist cannot fill the screen.
    Returns (chosen ids in original order, how many were left out)."""
    if len(items) <= cap:
        return [c.id for c in items], 0
    chosen: set[int] = set()
    ranked = sorted(items, key=lambda c: (c.kind == "comment", -c.votes))
    for c in ranked:
        if len(chosen) >= cap:
            break
        if c.kind != "comment" or c.votes > 0:
            chosen.add(c.id)
    by_viewer: dict[str, list[Candidate]] = {}
    for c in items:
        if c.id not in chosen:
            by_viewer.setdefault(c.viewer_id, []).append(c)
    queues = list(by_viewer.values())
    while len(chosen) < cap and queues:
        next_round = []
        for queue in queues:
            if len(chosen) >= cap:
                break
            chosen.add(queue.pop(0).id)
            if queue:
                next_round.append(queue)
        queues = next_round
    order = [c.id for c in items if c.id in chosen]
    return order, len(items) - len(order)


def clean_slow_mode(value: object) -> float:
    """Slow mode: seconds a viewer must wait between posts (0 turns it off)."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 3600:
        raise InvalidInput("slow_mode_secs must be a number of seconds from 0 to 3600")
    return float(value)
