"""Connection caps of one process: WebSocket connections per client address and per identity.

Per address, counted from the handshake (before any credential is read), a new connection over the
cap is refused. Per identity (a viewer, a host login, a room's screen link), counted once
authenticated, the oldest connection is closed to make room for the new one: a phone that reconnects
after a network change is not locked out by its old connection, which the server may not yet know is
dead. Several processes behind a load balancer each count their own connections.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

from server.auth import Principal

C = TypeVar("C")


def identity(principal: Principal) -> Hashable:
    """What one set of credentials is: the viewer (across rooms), the host login, the screen link.
    A viewer is its id, the string the principal already holds: 10,000 phones add no key objects."""
    if principal.viewer_id is not None:
        return principal.viewer_id
    return (principal.role, principal.room_id, principal.credential, principal.generation)


class ConnectionCaps(Generic[C]):
    """Counts per address and lists per identity (oldest first); the caller passes the caps."""

    def __init__(self) -> None:
        self._addresses: dict[str, int] = {}
        self._identities: dict[Hashable, C | _Several[C]] = {}

    def enter_address(self, address: str, cap: int) -> bool:
        """Count a connection from ``address``; False (and not counted) when it would pass ``cap``."""
        n = self._addresses.get(address, 0)
        if n >= cap:
            return False
        self._addresses[address] = n + 1
        return True

    def leave_address(self, address: str) -> None:
        n = self._addresses.get(address, 0) - 1
        if n > 0:
            self._addresses[address] = n
        else:
            self._addresses.pop(address, None)

    def enter_identity(self, key: Hashable, conn: C, cap: int) -> list[C]:
        """Add ``conn`` under ``key``; returns the oldest connections it displaces (to be closed)."""
        held = self._identities.get(key)
        if held is None:
            self._identities[key] = conn  # a lone connection needs no list (most identities)
            return []
        conns = held if isinstance(held, _Several) else _Several((held,))
        conns.append(conn)
        excess = len(conns) - max(1, cap)
        displaced = conns[:excess] if excess > 0 else []
        del conns[: max(0, excess)]
        self._identities[key] = conns if len(conns) > 1 else conns[0]
        return displaced

    def leave_identity(self, key: Hashable, conn: C) -> None:
        held = self._identities.get(key)
        if held is None:
            return
        if not isinstance(held, _Several):
            if held is conn:
                del self._identities[key]
            return
        try:
            held.remove(conn)
        except ValueError:
            return  # displaced earlier
        self._identities[key] = held if len(held) > 1 else held[0]

    def address_count(self, address: str) -> int:
        return self._addresses.get(address, 0)

    def identity_count(self, key: Hashable) -> int:
        held = self._identities.get(key)
        return 0 if held is None else len(held) if isinstance(held, _Several) else 1


class _Several(list[C]):
    """The connections of an identity that has more than one, oldest first (a type of its own, so
    that a connection object that happens to be a list is never mistaken for one)."""
