"""Client actions: a domain declares a handler per message type, with the scope it needs, in its own
``ActionTable``; the app merges the tables of the domains it is given (server/domain.py) and the
endpoint dispatches through the merged map."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from server.auth import Principal, Scope

if TYPE_CHECKING:
    from server.realtime.connection import Connection

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class ActionContext(Generic[S]):
    """What a handler gets besides the message data. ``services`` is whatever the app gave the
    endpoint: realtime knows nothing of it, the domains see it typed (``server.domain.ActionContext``
    is ``ActionContext[Services]``)."""

    principal: Principal
    services: S
    connection: Connection | None = None


# The table holds handlers of any app; each is typed against its own app's services.
HandlerFn = Callable[[ActionContext[Any], dict[str, Any]], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True, slots=True)
class Handler:
    kind: str
    fn: HandlerFn
    scope: Scope
    doc: str


class ActionTable:
    """A domain's client actions: ``@ACTIONS.action("draw.run", scope=..., doc=...)`` adds one to
    this table (and nowhere else); the domain's declaration hands the table to the app."""

    def __init__(self) -> None:
        self.handlers: list[Handler] = []

    def action(self, kind: str, *, scope: Scope, doc: str) -> Callable[[HandlerFn], HandlerFn]:
        """Declare ``fn`` as the handler of client message ``kind``, allowed to roles with ``scope``."""

        def declare(fn: HandlerFn) -> HandlerFn:
            if any(h.kind == kind for h in self.handlers):
                raise ValueError(f"two handlers for {kind!r}")
            self.handlers.append(Handler(kind, fn, scope, doc))
            return fn

        return declare
