"""The docs cannot drift from the code: every message type, error code, close code, setting, command
and route in the code is documented."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import server.app  # noqa: F401  (defines every event)
from server import errors
from server.cli import build_parser
from server.config import Settings
from server.domains import default_registry
from server.realtime.protocol import Close

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = default_registry()
CLIENT_TYPES = REGISTRY.client_types
DIRECT_TYPES = REGISTRY.direct_types
PROTOCOL = (ROOT / "docs" / "protocol.md").read_text()
API = (ROOT / "docs" / "api.md").read_text()
README = (ROOT / "README.md").read_text()


def _table_names(text: str) -> set[str]:
    return set(re.findall(r"^\| `([^`]+)` \|", text, flags=re.M))


def test_every_message_type_is_documented() -> None:
    """Client, direct and event types all have a row in docs/protocol.md."""
    documented = _table_names(PROTOCOL)
    for name in [*CLIENT_TYPES, *DIRECT_TYPES, *REGISTRY.events]:
        assert name in documented, f"message type {name!r} missing from docs/protocol.md"


def test_no_documented_type_is_stale() -> None:
    """Every type documented in the message tables exists in the code."""
    section = PROTOCOL.split("## Message types")[1].split("### Snapshot")[0]
    known = {*CLIENT_TYPES, *DIRECT_TYPES, *REGISTRY.events}
    for name in _table_names(section):
        assert name in known, f"docs/protocol.md documents {name!r}, which the code does not have"


def _error_codes_in_code() -> set[str]:
    codes = {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.LivewallError)
    }
    codes.discard("error")
    for path in (ROOT / "server").rglob("*.py"):
        source = path.read_text()
        codes.update(re.findall(r'code="([a-z_]+)"', source))
        codes.update(re.findall(r'error_frame\("([a-z_]+)"', source))
        codes.update(re.findall(r'_close_with\(\s*websocket, services, "([a-z_]+)"', source))
        codes.update(re.findall(r'errors_out\.labels\("([a-z_]+)"\)', source))
    return codes


def test_every_error_code_is_documented() -> None:
    """Each stable error code the server can send is explained in docs/protocol.md."""
    documented = _table_names(PROTOCOL.split("## Error codes")[1].split("## Close codes")[0])
    missing = _error_codes_in_code() - documented
    assert not missing, f"error codes missing from docs/protocol.md: {sorted(missing)}"


def test_every_close_code_is_documented() -> None:
    """Each close code the server sends has a row in docs/protocol.md."""
    section = PROTOCOL.split("## Close codes")[1]
    for code in Close:
        assert re.search(rf"^\| {int(code)} \|", section, flags=re.M), f"close code {int(code)} undocumented"


def test_every_setting_is_in_the_readme() -> None:
    """README's configuration table lists every LIVEWALL_* setting."""
    for f in fields(Settings):
        assert f"LIVEWALL_{f.name.upper()}" in README, f"LIVEWALL_{f.name.upper()} missing from README.md"


def test_every_command_is_in_the_readme() -> None:
    """Each `livewall` subcommand is mentioned in README."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in sub.choices:  # type: ignore[union-attr]
        assert f"livewall {name}" in README, f"`livewall {name}` missing from README.md"


def test_every_route_is_in_api_docs() -> None:
    """Every HTTP route of the app is listed in docs/api.md."""
    from starlette.routing import Route

    from server.api import routes as api_routes
    from server.draws.http import routes as draw_routes
    from server.followup.console import routes as followup_console_routes
    from server.followup.http import routes as followup_routes
    from server.followup.outreach import routes as followup_outreach_routes
    from server.followup.recipients import routes as followup_recipient_routes
    from server.openapi import routes as openapi_routes
    from server.pages import routes as page_routes
    from server.products.http import routes as selling_routes
    from server.rooms.http import routes as room_routes

    every = [
        *openapi_routes,
        *api_routes,
        *room_routes,
        *page_routes,
        *selling_routes,
        *draw_routes,
        *followup_routes,
        *followup_recipient_routes,
        *followup_console_routes,
        *followup_outreach_routes,
    ]
    for route in every:
        assert isinstance(route, Route)
        if route.path == "/":
            continue
        path = route.path.replace("{room_id}", "{room}").replace("{product_id}", "{product}")
        assert f"`{path}" in API, f"{path} missing from docs/api.md"
    for path in ("/healthz", "/readyz", "/metrics"):
        assert f"`{path}`" in API
