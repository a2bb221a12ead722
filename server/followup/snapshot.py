"""Follow-up's part of the snapshot: the host's live summary, a viewer's contact and in-app inbox."""

from __future__ import annotations

from typing import Any

from server.auth import Principal, Role
from server.followup import http, runner
from server.rooms.snapshot import CONTRIBUTORS, PERSONAL, REDUCERS
from server.services import Services


async def contribute(services: Services, principal: Principal, snap: dict[str, Any]) -> None:
    if principal.role is Role.HOST:
        snap["followup"] = await runner.summary(services.db, principal.room_id)


async def personal(services: Services, principal: Principal, out: dict[str, Any]) -> None:
    assert principal.viewer_id is not None
    out["contact"] = await http.my_contact(services, principal.viewer_id)
    out["inbox"] = await http.inbox(services, principal.viewer_id)


def reduce_followup(snap: dict[str, Any], data: dict[str, Any]) -> None:
    snap["followup"] = dict(data)


CONTRIBUTORS.append(contribute)
PERSONAL.append(personal)
REDUCERS.update({"followup": reduce_followup})
