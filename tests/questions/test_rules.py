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


def test_banned_viewers_cast_no_votes() -> None:
    """A ban refuses a vote (after the status check); a mute does not enter into it."""
    rules.check_may_vote("answered", banned=False)
    with pytest.raises(Forbidden):
        rules.check_may_vote("visible", banned=True)
    with pytest.raises(Conflict):
        rules.check_may_vote("hidden", banned=True)


def test_vote_change() -> None:
    """A vote counts once: voting twice or withdrawing a vote never cast changes nothing."""
    assert rules.vote_change(True, has_voted=False) == 1
    assert rules.vote_change(True, has_voted=True) == 0
    assert rules.vote_change(False, has_voted=True) == -1
    assert rules.vote_change(False, has_voted=False) == 0


def test_slow_mode_refusal_says_how_long() -> None:
    """Slow mode refuses with slow_mode and the seconds to wait."""
    rules.check_slow_mode(True, 0.0)
    with pytest.raises(RateLimited) as exc:
        rules.check_slow_mode(False, 4.6)
    assert exc.value.code == "slow_mode" and "wait 5 s" in exc.value.message


def test_sanction_in_force_and_applied() -> None:
    """A ban lasts, a mute runs out; mute and ban leave each other, a pardon lifts both."""
    assert rules.sanction_in_force(None, True, 10)
    assert rules.sanction_in_force(11, False, 10) and not rules.sanction_in_force(10, False, 10)
    assert not rules.sanction_in_force(None, False, 10)
    assert rules.apply_sanction("mute", 2, 1_000, banned=True, mute_until_ms=None) == (True, 121_000)
    assert rules.apply_sanction("ban", None, 1_000, banned=False, mute_until_ms=5) == (True, 5)
    assert rules.apply_sanction("pardon", None, 1_000, banned=True, mute_until_ms=5) == (False, None)


def test_spotlight_rules() -> None:
    """A pending item is approved on its way to the spotlight, a hidden one refused; the item that
    leaves the spotlight is the one to mark answered."""
    assert rules.spotlight_needs_approval("pending")
    assert not rules.spotlight_needs_approval("visible")
    with pytest.raises(Conflict):
        rules.spotlight_needs_approval("hidden")
    assert rules.previous_to_answer(3, 4) == 3 and rules.previous_to_answer(3, None) == 3
    assert rules.previous_to_answer(3, 3) is None and rules.previous_to_answer(None, 4) is None


def test_reaction_counts() -> None:
    """Known kinds with counts of 1 to 50 pass; anything else is invalid input."""
    assert rules.clean_reactions({"heart": 3, "clap": 50}) == {"heart": 3, "clap": 50}
    for bad in ({}, [], {"boo": 1}, {"heart": 0}, {"heart": 51}, {"heart": True}):
        with pytest.raises(InvalidInput):
            rules.clean_reactions(bad)
