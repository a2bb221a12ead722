"""The rooms' wire: client data parsed into typed commands, and results shaped into the dicts the
surfaces receive (the only raw dicts of this domain, with the snapshot's parts)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from server.errors import InvalidInput
from server.rooms import rules

if TYPE_CHECKING:  # the CLI reads ProductSeed without loading the tables
    from server.storage.models import Announcement, Room, Viewer

# --- commands -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Announce:
    """A validated announcement (cleaned text)."""

    text: str


@dataclass(frozen=True)
class Rename:
    """A validated viewer.rename (None: anonymous)."""

    name: str | None


@dataclass(frozen=True)
class Follow:
    """A validated room.follow: follow (True) or unfollow."""

    on: bool


@dataclass(frozen=True)
class ProductSeed:
    """A product created with its room (the demo, the CLI, tests); defaults as the table's."""

    name: str
    price_minor: int
    currency: str = "CNY"
    stock: int = 0
    sku: str | None = None
    image_url: str | None = None
    shop_url: str | None = None
    description: str | None = None


def parse_announce(data: Mapping[str, Any]) -> Announce:
    return Announce(rules.clean_announcement(data.get("text")))


def parse_rename(data: Mapping[str, Any]) -> Rename:
    return Rename(rules.clean_display_name(data.get("name")))


def parse_follow(data: Mapping[str, Any]) -> Follow:
    on = data.get("on", True)
    if not isinstance(on, bool):
        raise InvalidInput('"on" must be true or false')
    return Follow(on)


# --- shapes -------------------------------------------------------------------------------------


def status_shape(room: Room) -> dict[str, Any]:
    return {"status": room.status}


def announced_shape(item: Announcement) -> dict[str, Any]:
    """The answer to a host's announce: the new announcement's id."""
    return {"id": item.id}


def announcement_shape(item: Announcement) -> dict[str, Any]:
    return {"id": item.id, "text": item.text, "created_ms": item.created_ms}


def renamed_shape(viewer: Viewer) -> dict[str, Any]:
    return {"name": viewer.display_name}


def following_shape(on: bool) -> dict[str, Any]:
    return {"following": on}
