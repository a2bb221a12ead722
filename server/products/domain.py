"""The products domain: the room's shelf, the pinned product, product views, following the room."""

from __future__ import annotations

from server.domain import Domain
from server.products import actions, http

DOMAIN = Domain(name="products", actions=actions.ACTIONS, routes=http.routes)
