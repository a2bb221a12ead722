"""The products domain: the room's shelf, the pinned product, product views and buy clicks."""

from __future__ import annotations

from server.domain import Domain
from server.products import handlers, http, snapshot

DOMAIN = Domain(
    name="products",
    actions=handlers.ACTIONS,
    routes=http.routes,
    snapshot=snapshot.contribute,
    reducers=snapshot.REDUCERS,
)
