"""docs/accounts.md in step with the code: its roles table is MEMBER_SCOPES, its routes are the
accounts domain's routes, its commands are the parser's."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.routing import Route

from server.accounts.domain import DOMAIN
from server.auth import MEMBER_SCOPES, MemberRole, Scope

DOC = (Path(__file__).resolve().parents[2] / "docs" / "accounts.md").read_text()


def test_the_roles_table_is_member_scopes() -> None:
    """Each role's row lists exactly the scopes MEMBER_SCOPES gives it, and every role has a row."""
    section = DOC.split("## Organisations and roles")[1].split("## Per-room overrides")[0]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| (\w+) \| ([^|]+) \|", section, flags=re.M)}
    for role in MemberRole:
        assert role.value in rows, f"{role} has no row"
        listed = {Scope(s) for s in re.findall(r"`([a-z]+:[a-z]+)`", rows[role.value])}
        assert listed == MEMBER_SCOPES[role], role


def test_every_team_api_route_is_documented() -> None:
    """Each /api/studio route of the accounts domain is in the team API table."""
    for route in DOMAIN.routes:
        assert isinstance(route, Route)
        if route.path.startswith("/api/"):
            path = route.path.replace("{org_id}", "{org}").replace("{account_id}", "{account}")
            path = path.replace("{room_id}", "{room}")
            for method in sorted((route.methods or set()) - {"HEAD"}):
                assert f"`{method} {path}" in DOC, f"{method} {path} missing from docs/accounts.md"
