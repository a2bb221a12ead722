"""Client data parsed into the questions domain's typed commands; refusals keep their codes."""

from __future__ import annotations

import pytest

from server.errors import InvalidInput
from server.questions import wire
from server.storage.models import Item


def test_post_defaults_to_a_comment() -> None:
    """A post without a kind is a comment; the text is cleaned; a product id must be an integer."""
    assert wire.parse_post({"text": " hi "}) == wire.PostItem("comment", "hi", None)
    assert wire.parse_post({"kind": "question", "text": "size?", "product_id": 7}).product_id == 7
    with pytest.raises(InvalidInput, match="not a product of this room"):
        wire.parse_post({"text": "hi", "product_id": "7"})


def test_vote_checks_up_before_the_id() -> None:
    """ "up" defaults to true and must be a boolean; the id must be an id."""
    assert wire.parse_vote({"id": 3}) == wire.CastVote(3, True)
    with pytest.raises(InvalidInput, match='"up"'):
        wire.parse_vote({"id": "x", "up": 1})
    with pytest.raises(InvalidInput, match="id must be an id"):
        wire.parse_vote({"id": True})


def test_spotlight_null_clears() -> None:
    """A null id clears the spotlight; anything else must be an id."""
    assert wire.parse_spotlight({"id": None}) == wire.Spotlight(None)
    assert wire.parse_spotlight({"id": 2}) == wire.Spotlight(2)
    with pytest.raises(InvalidInput):
        wire.parse_spotlight({"id": "2"})


def test_sanction_modes() -> None:
    """Mute takes minutes; ban and pardon do not; the log keeps the minutes as sent."""
    assert wire.parse_sanction({"viewer_id": "v", "mode": "mute", "minutes": 5}) == wire.SanctionViewer(
        "v", "mute", 5, "5"
    )
    assert wire.parse_sanction({"viewer_id": "v", "mode": "ban"}).minutes is None
    with pytest.raises(InvalidInput, match="mode must be"):
        wire.parse_sanction({"viewer_id": "v", "mode": "kick"})
    with pytest.raises(InvalidInput, match="viewer_id"):
        wire.parse_sanction({"viewer_id": "v" * 33, "mode": "ban"})


def test_settings_take_only_known_fields() -> None:
    """Given fields are checked in turn, absent ones stay None, unknown ones are refused."""
    change = wire.parse_settings({"layout": "top", "blocklist": ["a", "a"]})
    assert (change.moderation, change.slow_mode_secs, change.layout, change.blocklist) == (
        None,
        None,
        "top",
        ["a"],
    )
    assert change.detail == '{"layout":"top","blocklist":["a","a"]}'
    with pytest.raises(InvalidInput, match="unknown settings: colour"):
        wire.parse_settings({"colour": "red"})
    with pytest.raises(InvalidInput, match="moderation"):
        wire.parse_settings({"moderation": None})


def test_item_shapes() -> None:
    """Viewers see no author id or private reply; hosts see all; the asker sees their reply."""
    item = Item(id=1, room_id="r", viewer_id="v", kind="question", text="q", status="visible",
                created_ms=5, reply="psst")  # fmt: skip
    assert "viewer_id" not in wire.public_item(item) and "reply" not in wire.public_item(item)
    assert wire.host_item(item)["viewer_id"] == "v"
    assert wire.mine_item(item)["reply"] == "psst"
    assert wire.public_or_none(None) is None
