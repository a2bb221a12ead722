"""The accounts domain: studio sign-in, sessions, organisations and roles, and the audit log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.accounts import http, team_http
from server.accounts.audit import AuditLog
from server.accounts.engine import Accounts
from server.auth import Principal, Scope
from server.domain import Domain, EngineSpec, Hooks
from server.services import Services
from server.throttle import failures_from_url


def _audit(services: Services) -> AuditLog:
    return AuditLog(services.db)


def _accounts(services: Services) -> Accounts:
    return Accounts(services.settings, failures_from_url(services.settings.redis_url))


def _console_action(
    services: Services, principal: Principal, kind: str, scope: Scope, data: Mapping[str, Any], result: Any
) -> None:
    services.engines.get(AuditLog).console_action(principal, kind, scope, data, result)


DOMAIN = Domain(
    name="accounts",
    routes=[*http.routes, *team_http.routes],
    engines=(EngineSpec("audit", _audit), EngineSpec("accounts", _accounts)),
    hooks=Hooks(on_console_action=_console_action),
)
