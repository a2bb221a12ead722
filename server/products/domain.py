"""The products domain: the room's shelf, the pinned product, product views and buy clicks."""

from __future__ import annotations

from server.domain import Domain, events_of
from server.products import events as products_events
from server.products import handlers, http, snapshot

DOMAIN = Domain(
    name="products",
    events=events_of(products_events),
    actions=handlers.ACTIONS,
    routes=http.routes,
    snapshot=snapshot.contribute,
    reducers=snapshot.REDUCERS,
)
