"""Client actions: domain modules register a handler per message type, with the scope it needs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from server.auth import Principal, Scope
from server.realtime.protocol import register_client_type

if TYPE_CHECKING:
    from server.realtime.connection import Connection
    from server.services import Services


@dataclass(frozen=True, slots=True)
class ActionContext:
    """What a handler gets besides the message data."""

    principal: Principal
    services: Services
    connection: Connection | None = None


HandlerFn = Callable[[ActionContext, dict[str, Any]], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class Handler:
    fn: HandlerFn
    scope: Scope


HANDLERS: dict[str, Handler] = {}


def action(kind: str, *, scope: Scope, doc: str) -> Callable[[HandlerFn], HandlerFn]:
    """Register ``fn`` as the handler of client message ``kind``, allowed to roles with ``scope``."""

    def register(fn: HandlerFn) -> HandlerFn:
        if kind in HANDLERS:
            raise ValueError(f"two handlers for {kind!r}")
        HANDLERS[kind] = Handler(fn, scope)
        register_client_type(kind, doc)
        return fn

    return register
