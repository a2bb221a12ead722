"""Follow-up's part of the snapshot: the host's live summary, a viewer's contact and in-app inbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlmodel import col, select

from server.auth import Principal, Role
from server.domain import PersonalPart, Reducer
from server.followup import http, runner
from server.services import Services
from server.storage.followup import ContactViewer, Message


async def contribute(services: Services, principal: Principal, snap: dict[str, Any]) -> None:
    if principal.role is Role.HOST:
        snap["followup"] = await runner.summary(services.db, principal.room_id)


async def personal(services: Services, principal: Principal, out: dict[str, Any]) -> None:
    assert principal.viewer_id is not None
    out["contact"] = await http.my_contact(services, principal.viewer_id)
    out["inbox"] = await http.inbox(services, principal.viewer_id)


def has_state(_room_id: Any, viewer_ids: Any) -> list[Select[Any]]:
    # A contact (any room) or an in-app message addressed to this viewer id; messages reaching them
    # through their contact need the contact link, so the first statement covers those.
    return [
        select(ContactViewer.viewer_id).where(col(ContactViewer.viewer_id).in_(viewer_ids)),
        select(Message.viewer_id).where(col(Message.viewer_id).in_(viewer_ids), Message.channel == "inapp"),
    ]


def empty(_joined_ms: int | None) -> dict[str, Any]:
    return {"contact": None, "inbox": []}


def reduce_followup(snap: dict[str, Any], data: dict[str, Any]) -> None:
    snap["followup"] = dict(data)


# This domain's part of the snapshot, of the viewer's private state, and of the reducer.
PERSONAL = PersonalPart(personal, has_state, empty)
REDUCERS: dict[str, Reducer] = {"followup": reduce_followup}
