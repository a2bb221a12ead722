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
SHOWN = ("visible", "answered")  # the statuses viewers and the big screen see
SANCTION_MODES = ("mute", "ban", "pardon")

# Danmaku must be readable while it flies: short. Questions may explain a need (size, skin type).
COMMENT_MAX_CHARS = 100
QUESTION_MAX_CHARS = 300
ANSWER_MAX_CHARS = 1000
BLOCKLIST_MAX_WORDS = 500
MUTE_MAX_MINUTES = 24 * 60
# A phone aggregates its taps and sends counts (static/viewer/reactions.js): at most this many of one
# kind in one message.
REACTION_MAX_PER_MESSAGE = 50

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


def clean_reactions(counts: object) -> dict[str, int]:
    """A phone's aggregated reactions: known kinds, each 1 to REACTION_MAX_PER_MESSAGE."""
    if not isinstance(counts, dict) or not counts:
        raise InvalidInput('"counts" must be an object like {"heart": 3}')
    clean: dict[str, int] = {}
    for kind, n in counts.items():
        if kind not in REACTIONS:
            raise InvalidInput(f"unknown reaction {kind!r}; one of {', '.join(REACTIONS)}")
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= REACTION_MAX_PER_MESSAGE:
            raise InvalidInput(f"a reaction count is 1 to {REACTION_MAX_PER_MESSAGE}")
        clean[kind] = n
    return clean


def is_shown(status: str) -> bool:
    """Whether viewers and the big screen see an item in this status."""
    return status in SHOWN


def check_votable(status: str) -> None:
    if not is_shown(status):
        raise Conflict("only shown questions can be voted on", code="bad_state")


def check_may_vote(status: str, *, banned: bool) -> None:
    """Only shown items take votes, and a banned viewer casts none (a mute still lets them vote)."""
    check_votable(status)
    if banned:
        check_not_silenced(None, True, 0)


def vote_change(up: bool, *, has_voted: bool) -> int:
    """How a vote request moves the item's count: +1, -1, or 0 when it changes nothing."""
    if up and not has_voted:
        return 1
    if not up and has_voted:
        return -1
    return 0


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


def check_slow_mode(allowed: bool, wait_secs: float) -> None:
    """Slow mode refuses a post that comes sooner than the room's interval after the viewer's last."""
    if not allowed:
        raise RateLimited(f"slow mode: wait {wait_secs:.0f} s before posting again", code="slow_mode")


def sanction_in_force(mute_until_ms: int | None, banned: bool, now_ms: int) -> bool:
    """A ban lasts the session; a mute until its time has passed."""
    return banned or (mute_until_ms or 0) > now_ms


def apply_sanction(
    mode: str, minutes: int | None, now_ms: int, *, banned: bool, mute_until_ms: int | None
) -> tuple[bool, int | None]:
    """A viewer's (banned, mute_until_ms) after a host's mute, ban or pardon: a mute leaves a ban as it
    was, a ban leaves a mute, a pardon lifts both."""
    if mode == "mute":
        assert minutes is not None
        return banned, now_ms + minutes * 60_000
    if mode == "ban":
        return True, mute_until_ms
    return False, None


def spotlight_needs_approval(status: str) -> bool:
    """A pending item put in the spotlight is approved first; a hidden one must be restored first."""
    if status == "hidden":
        raise Conflict("restore a hidden item before answering it", code="bad_state")
    return status == "pending"


def previous_to_answer(previous: int | None, new: int | None) -> int | None:
    """The item that leaves the spotlight (it counts as answered), if any."""
    if previous is not None and previous != new:
        return previous
    return None


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
