"""The accounts domain: studio sign-in, sessions, organisations and roles, and the audit log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.accounts.audit import AuditLog
from server.auth import Principal, Scope
from server.domain import Domain, EngineSpec, Hooks
from server.services import Services


def _audit(services: Services) -> AuditLog:
    return AuditLog(services.db)


def _console_action(
    services: Services, principal: Principal, kind: str, scope: Scope, data: Mapping[str, Any], result: Any
) -> None:
    services.engines.get(AuditLog).console_action(principal, kind, scope, data, result)


DOMAIN = Domain(
    name="accounts",
    engines=(EngineSpec("audit", _audit),),
    hooks=Hooks(on_console_action=_console_action),
)
