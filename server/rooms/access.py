"""Who holds a room's keys: host logins (checked off the event loop, throttled), key rotation,
screen-link revocation, logout, and closing the live connections whose credentials were revoked.

Revocation has two parts (docs/security.md):
- generations: every host token carries the room's ``host_key_gen`` and every screen link its
  ``screen_key_gen``; rotating the key (or logging out everywhere) and replacing the screen link bump
  them, and every credential of an older generation is refused (``revoked``).
- a deny list: logging out one session stores its token's hash (``RevokedToken``) until the token
  would have expired anyway; other sessions of the room stay logged in.
Both live in the database, so every process sees them. Live connections are closed at once in the
process that made the change, and by every other process's sweep within REVOCATION_SWEEP_SECS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, update
from sqlmodel import col, select

from server.accounts import store as accounts
from server.auth import Principal, Role, SecretChecks, hash_secret, new_host_key
from server.config import HOST_SESSION_SECS
from server.errors import Forbidden, NotFound, TooManyAttempts, Unauthorized
from server.realtime.connection import Connection
from server.realtime.hub import Hub
from server.realtime.protocol import Close, error_frame
from server.rooms import actions
from server.services import Services
from server.storage import Database, now_ms
from server.storage.models import RevokedToken, Room
from server.throttle import Backoff, Failures

log = logging.getLogger("livewall.access")

# Wrong host keys. An address may try 5 times, then waits 1 s, 2 s, 4 s ... up to 5 minutes between
# tries; a room (tried from many addresses) 20 times, then up to 1 minute: a host key has ~96 bits,
# so this is about CPU and noise more than guessing, and a room's lock is kept short because it also
# keeps the real host out (hosts already logged in are not affected). Forgotten after 15 quiet minutes.
LOGIN_PER_ADDRESS = Backoff(free=5, first_secs=1.0, max_secs=300.0, forget_secs=900.0)
LOGIN_PER_ROOM = Backoff(free=20, first_secs=1.0, max_secs=60.0, forget_secs=900.0)
# Every process looks for revoked credentials among its live host and screen connections this often
# (two small reads, only while it holds such connections): a change made by another process (or by
# `livewall rooms rotate-key`) closes them within this time.
REVOCATION_SWEEP_SECS = 0.5


class Access:
    """This process's share: the bounded secret checks, the failure counts, the revocation sweep."""

    def __init__(
        self, db: Database, hub: Hub, failures: Failures, checks: SecretChecks | None = None
    ) -> None:
        self.db = db
        self.hub = hub
        self.failures = failures
        self.checks = checks or SecretChecks()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._sweep_loop(), name="livewall-revocations")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.checks.close()
        await self.failures.close()

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(REVOCATION_SWEEP_SECS)
            try:
                await self.sweep()
            except Exception:
                log.warning(
                    "revocation sweep failed; next try in %.0f s", REVOCATION_SWEEP_SECS, exc_info=True
                )

    async def sweep(self, room_ids: Iterable[str] | None = None) -> int:
        """Close this process's host and screen connections whose credentials were revoked; returns
        how many. All rooms with such connections, or only ``room_ids``."""
        held: dict[str, list[Connection]] = {}
        for room_id in list(self.hub.rooms) if room_ids is None else room_ids:
            conns = self.hub.connections(room_id, "host") + self.hub.connections(room_id, "screen")
            if conns:
                held[room_id] = conns
        if not held:
            return 0
        principals = [c.principal for cs in held.values() for c in cs]
        token_ids = {p.credential for p in principals if p.credential}
        async with self.db.session() as session:
            found_rooms = await session.exec(select(Room).where(col(Room.id).in_(sorted(held))))
            rooms = {
                r.id: _RoomNow(r.host_key_gen, r.screen_key_gen, r.host_key_enabled, r.org_id)
                for r in found_rooms.all()
            }
            revoked: set[str] = set()
            if token_ids:
                found = await session.exec(
                    select(RevokedToken.id).where(col(RevokedToken.id).in_(sorted(token_ids)))
                )
                revoked = set(found.all())
        # Consoles of signed-in members: their studio session must be live and their role in the
        # room unchanged (a changed role reconnects with the new scopes; a removed member cannot).
        members = [p for p in principals if p.session_id is not None]
        ended = await accounts.ended_sessions(self.db, [p.session_id for p in members if p.session_id])
        changed: set[tuple[str, str]] = set()
        for account_id, room_id, role in {(p.account_id, p.room_id, p.member_role) for p in members}:
            now = rooms.get(room_id)
            if account_id is None or now is None:
                continue
            if await accounts.role_in_room(self.db, account_id, now.org_id, room_id) != role:
                changed.add((account_id, room_id))
        closed = 0
        for room_id, conns in held.items():
            now = rooms.get(room_id)
            for conn in conns:
                p = conn.principal
                if p.session_id is not None:
                    gone = now is None or p.session_id in ended or (p.account_id or "", room_id) in changed
                    gone = gone or p.credential in revoked
                else:
                    gone = _revoked(p, now, revoked)
                if gone:
                    _close_revoked(conn)
                    closed += 1
        return closed


@dataclass(frozen=True, slots=True)
class _RoomNow:
    host_gen: int
    screen_gen: int
    host_key_enabled: bool
    org_id: str


def _revoked(principal: Principal, now: _RoomNow | None, deny: set[str]) -> bool:
    if principal.generation is None:  # not issued by server/rooms/identity.py (tests): nothing to check
        return False
    if now is None:
        return True  # the room is gone
    if principal.role is Role.HOST:
        return (
            principal.generation != now.host_gen or not now.host_key_enabled or principal.credential in deny
        )
    return principal.generation != now.screen_gen


def _close_revoked(conn: Connection) -> None:
    what = "host session" if conn.principal.role is Role.HOST else "screen link"
    conn.send(error_frame("revoked", f"this {what} was revoked"))
    conn.close(Close.UNAUTHORIZED, "revoked")


def _access(services: Services) -> Access:
    return services.engines.get(Access)


# --- logging in -------------------------------------------------------------------------------------


async def check_host_key(services: Services, room_id: str, key: object, address: str | None) -> str:
    """Exchange the room's host key for a host session token. Refused unchecked (TooManyAttempts)
    while the address or the room is locked by earlier failures; the scrypt check runs off the loop."""
    access = _access(services)
    room = await actions.load_room(services.db, room_id)
    if not room.host_key_enabled:
        raise Forbidden("signing in with the host key is turned off for this room: sign in at /studio")
    keys = [(f"room:{room.id}", LOGIN_PER_ROOM)]
    if address:
        keys.insert(0, (f"addr:{address}", LOGIN_PER_ADDRESS))
    wait = max([await access.failures.locked(k) for k, _policy in keys])
    if wait > 0:
        raise TooManyAttempts(f"too many wrong keys: try again in {wait:.0f} s", retry_after_secs=wait)
    if (
        not isinstance(key, str)
        or not key
        or len(key) > 200
        or not await access.checks.verify(key, room.host_key_hash)
    ):
        for k, policy in keys:
            await access.failures.fail(k, policy)
        raise Unauthorized("wrong host key", code="bad_key")
    if address:
        await access.failures.clear(f"addr:{address}")
    return services.tokens.host(room.id, room.host_key_gen)


async def is_revoked(db: Database, token_id: str) -> bool:
    """Whether the token of this id was logged out (asked by server/rooms/identity.py)."""
    async with db.session() as session:
        return await session.get(RevokedToken, token_id) is not None


# --- revoking ---------------------------------------------------------------------------------------


async def do_logout(services: Services, room_id: str, token: str | None, *, everywhere: bool = False) -> None:
    """End a host session: its token is refused from now on (and its live connections closed). With
    ``everywhere``, every host session of the room (the host key stays the same)."""
    room = await actions.load_room(services.db, room_id)
    if everywhere:
        await _bump(services.db, room.id, "host")
    elif token:
        try:
            credential = services.tokens.check_host(token, room.id, room.host_key_gen).token_id
        except Unauthorized:
            return  # forged, expired or already revoked: it logs nobody in
        now = now_ms()
        async with services.db.session() as session:
            await session.exec(delete(RevokedToken).where(col(RevokedToken.expires_ms) < now))
            if await session.get(RevokedToken, credential) is None:
                session.add(
                    RevokedToken(id=credential, room_id=room.id, expires_ms=now + HOST_SESSION_SECS * 1000)
                )
            await session.commit()
    await _access(services).sweep([room.id])


async def do_rotate_key(db: Database, room_id: str, checks: SecretChecks | None = None) -> tuple[Room, str]:
    """Replace the room's host key; every host session issued with the old one is revoked. Returns the
    room (with its new generation) and the new key, shown only now. (Live connections: ``sweep``.)"""
    room = await actions.load_room(db, room_id)
    key = new_host_key()
    hashed = await (checks.hash(key) if checks is not None else asyncio.to_thread(hash_secret, key))
    return await _bump(db, room.id, "host", host_key_hash=hashed), key


async def do_new_screen_link(services: Services, room_id: str) -> str:
    """Revoke the big screen's link and return the new key (screens on the old one are closed)."""
    room = await actions.load_room(services.db, room_id)
    room = await _bump(services.db, room.id, "screen")
    await _access(services).sweep([room.id])
    return services.tokens.screen(room.id, room.screen_key_gen)


async def rotate_key(services: Services, room_id: str) -> tuple[str, str]:
    """``do_rotate_key`` for a running server: returns (the new key, a host token issued with it),
    and closes the live connections of the old key's sessions at once."""
    room, key = await do_rotate_key(services.db, room_id, _access(services).checks)
    await _access(services).sweep([room.id])
    return key, services.tokens.host(room.id, room.host_key_gen)


async def _bump(db: Database, room_id: str, which: str, **values: object) -> Room:
    name = f"{which}_key_gen"
    async with db.session() as session:
        result = await session.exec(
            update(Room).where(col(Room.id) == room_id).values({name: getattr(Room, name) + 1, **values})
        )
        await session.commit()
    if result.rowcount != 1:
        raise NotFound("no such room")
    actions.forget_room_cached(
        db, room_id
    )  # this process's WebSocket connects see the new generation at once
    return await actions.load_room(db, room_id)
