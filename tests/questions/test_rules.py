"""Pure rules of the audience's voice: text, keyword filter, status, sampling, sanctions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.errors import Conflict, Forbidden, InvalidInput, RateLimited
from server.questions import rules


def test_blocklist_catches_evasions() -> None:
    """Case, full-width letters and separators do not hide a blocked word, in English or Chinese."""
    blocklist = rules.Blocklist.of(["scam", "傻逼"])
    assert blocklist.match("This is a SCAM!") == "scam"
    assert blocklist.match("ｓｃａｍ") == "scam"
    assert blocklist.match("s.c a-m") == "scam"
    assert blocklist.match("你个傻 逼") == "傻逼"
    assert blocklist.match("great product, 真不错") is None


def test_default_blocklist_has_both_languages() -> None:
    """The default list has English and Chinese words."""
    words = rules.DEFAULT_BLOCKLIST
    assert any(w.isascii() for w in words) and any(not w.isascii() for w in words)


def test_text_limits_count_characters_not_bytes() -> None:
    """A 100-character comment of CJK and emoji is accepted; 101 is refused with too_long."""
    assert rules.clean_item_text("comment", "好" * 50 + "😀" * 50)
    with pytest.raises(InvalidInput) as exc:
        rules.clean_item_text("comment", "好" * 101)
    assert exc.value.code == "too_long"
    assert rules.clean_item_text("question", "q" * 300)


def test_empty_and_unknown_kind_refused() -> None:
    """Empty text and unknown kinds are invalid input."""
    with pytest.raises(InvalidInput):
        rules.clean_item_text("question", "   ")
    with pytest.raises(InvalidInput):
        rules.clean_kind("shout")


def test_initial_status() -> None:
    """Post-moderation shows at once; pre-moderation and blocked words hold for review."""
    assert rules.initial_status("post", None) == "visible"
    assert rules.initial_status("pre", None) == "pending"
    assert rules.initial_status("post", "scam") == "pending"


def test_transitions() -> None:
    """Moderation commands move items between statuses; nonsense is a Conflict."""
    assert rules.check_transition("pending", "approve") == "visible"
    assert rules.check_transition("visible", "hide") == "hidden"
    assert rules.check_transition("hidden", "restore") == "visible"
    assert rules.check_transition("visible", "answered") == "answered"
    with pytest.raises(Conflict):
        rules.check_transition("hidden", "approve")


def test_votes_only_on_shown_items() -> None:
    """Pending and hidden items cannot be voted on."""
    rules.check_votable("visible")
    for status in ("pending", "hidden"):
        with pytest.raises(Conflict):
            rules.check_votable(status)


def test_sanctions() -> None:
    """A ban forbids, a running mute rate-limits with the time left, an expired mute allows."""
    with pytest.raises(Forbidden):
        rules.check_not_silenced(None, True, 0)
    with pytest.raises(RateLimited) as exc:
        rules.check_not_silenced(61_000, False, 0)
    assert "61" in exc.value.message
    rules.check_not_silenced(1_000, False, 2_000)


def test_sampling_prefers_questions_and_votes_then_shares_fairly() -> None:
    """Over the cap: questions and voted items first, then one comment per viewer in turn."""
    items = [rules.Candidate(i, "comment", 0, "spammer") for i in range(10)]
    items += [rules.Candidate(100, "question", 0, "a"), rules.Candidate(101, "comment", 2, "b")]
    items += [rules.Candidate(200 + i, "comment", 0, f"v{i}") for i in range(3)]
    chosen, dropped = rules.sample_for_wall(items, 6)
    assert {100, 101, 200, 201, 202} <= set(chosen)
    assert sum(1 for c in chosen if c < 10) == 1  # the spammer gets one place, not ten
    assert dropped == len(items) - 6


@given(
    st.lists(
        st.tuples(st.sampled_from(rules.KINDS), st.integers(0, 5), st.sampled_from("abcdef")), max_size=60
    ),
    st.integers(1, 30),
)
def test_sampling_properties(raw: list[tuple[str, int, str]], cap: int) -> None:
    """Never more than the cap, no duplicates, order kept, and the count of dropped items is exact."""
    items = [rules.Candidate(i, kind, votes, viewer) for i, (kind, votes, viewer) in enumerate(raw)]
    chosen, dropped = rules.sample_for_wall(items, cap)
    assert len(chosen) == min(cap, len(items))
    assert chosen == sorted(set(chosen))
    assert dropped == len(items) - len(chosen)


def test_blocklist_validation() -> None:
    """The blocklist must be a list of short strings; duplicates collapse."""
    assert rules.clean_blocklist(["a", "a", " b "]) == ["a", "b"]
    with pytest.raises(InvalidInput):
        rules.clean_blocklist("a,b")
    with pytest.raises(InvalidInput):
        rules.clean_blocklist(["x" * 51])
