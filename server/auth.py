"""Who may do what: roles, their scopes, and the signed tokens that prove a role.

This module is the one place that maps a role to what it may do. Every action handler names the
scope it needs, and ``require`` checks it on the server, whatever the client claims.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from server.config import HOST_SESSION_SECS, VIEWER_TOKEN_SECS
from server.errors import Forbidden, TooManyAttempts, Unauthorized


class Role(enum.StrEnum):
    VIEWER = "viewer"
    HOST = "host"
    SCREEN = "screen"


class Scope(enum.StrEnum):
    READ = "room:read"  # receive the room's events
    PARTICIPATE = "room:participate"  # act as an audience member (rename, ask, claim, ...)
    CONTROL = "room:control"  # start/end the session, announce, moderate: the host's powers


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.VIEWER: frozenset({Scope.READ, Scope.PARTICIPATE}),
    Role.HOST: frozenset({Scope.READ, Scope.CONTROL}),
    Role.SCREEN: frozenset({Scope.READ}),  # the big screen is read-only
}


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated party in one room."""

    role: Role
    room_id: str
    viewer_id: str | None = None
    name: str | None = None  # a host's label among co-hosts ("Host", "Operator 2")
    # What the credential was, so that a revoked one can be found among live connections: the
    # host token's id (``token_id``), and the key generation a host token or screen link was issued for.
    credential: str | None = None
    generation: int | None = None

    def can(self, scope: Scope) -> bool:
        return scope in ROLE_SCOPES[self.role]


def require(principal: Principal, scope: Scope) -> None:
    """Raise Forbidden unless the principal's role grants the scope."""
    if not principal.can(scope):
        raise Forbidden(f"the {principal.role} role may not do this")


# scrypt parameters: n=2**14, r=8 is the interactive-login setting recommended in the scrypt paper
# and by OWASP; ~16 MiB and tens of ms per check, fine for a login that happens once per session.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_secret(secret: str) -> str:
    """A salted scrypt hash of a host key, for storage."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_secret(secret: str, stored: str) -> bool:
    """Constant-time check of a host key against its stored hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(candidate.hex(), digest)


def new_host_key() -> str:
    """A host login key: 16 URL-safe characters (~96 bits), easy to paste."""
    return secrets.token_urlsafe(12)


# scrypt takes a core for tens of milliseconds: checks run in threads (hashlib releases the GIL), at
# most half the cores at once so that the event loop keeps one, and at most SECRET_CHECKS_WAITING
# more wait; beyond that a login is refused at once (429) instead of queueing without bound.
SECRET_CHECKS_AT_ONCE = max(1, (os.cpu_count() or 2) // 2)
SECRET_CHECKS_WAITING = 16
_T = TypeVar("_T")


class SecretChecks:
    """Hashing and checking host keys off the event loop, a bounded number at a time."""

    def __init__(self, at_once: int = SECRET_CHECKS_AT_ONCE, waiting: int = SECRET_CHECKS_WAITING) -> None:
        self.at_once = at_once
        self.limit = at_once + waiting
        self.busy = 0  # checks running or waiting for a thread
        self._pool: ThreadPoolExecutor | None = None

    async def verify(self, secret: str, stored: str) -> bool:
        """``verify_secret`` in a worker thread; TooManyAttempts when too many are waiting."""
        return await self._run(lambda: verify_secret(secret, stored))

    async def hash(self, secret: str) -> str:
        """``hash_secret`` in a worker thread."""
        return await self._run(lambda: hash_secret(secret))

    async def _run(self, work: Callable[[], _T]) -> _T:
        if self.busy >= self.limit:
            raise TooManyAttempts("the server is checking too many keys at once; retry", retry_after_secs=1)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.at_once, thread_name_prefix="livewall-secrets")
        self.busy += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, work)
        finally:
            self.busy -= 1

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def token_id(token: str) -> str:
    """A revoked token's name in the deny list: a hash, so the list holds nothing that logs in."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


class Tokens:
    """Signs and checks the tokens for each role. Tokens are signed, never stored."""

    def __init__(self, secret_key: str) -> None:
        self._viewer = URLSafeTimedSerializer(secret_key, salt="livewall.viewer")
        self._host = URLSafeTimedSerializer(secret_key, salt="livewall.host")
        # Screen links do not expire (they are revoked by bumping the room's screen generation), so they
        # carry no timestamp: the same room and generation always give the same link.
        self._screen = URLSafeSerializer(secret_key, salt="livewall.screen")

    def viewer(self, viewer_id: str) -> str:
        return self._viewer.dumps({"v": viewer_id})

    def host(self, room_id: str, generation: int) -> str:
        # "j" makes every token unique: two co-hosts logging in within a second get different
        # tokens, and logging one out (a deny-list entry by token_id) leaves the other's.
        return self._host.dumps({"r": room_id, "g": generation, "j": secrets.token_urlsafe(6)})

    def screen(self, room_id: str, generation: int) -> str:
        return self._screen.dumps({"r": room_id, "g": generation})

    def check_viewer(self, token: str) -> str:
        """The viewer id in a valid viewer token."""
        data = _loads(self._viewer, token, VIEWER_TOKEN_SECS)
        viewer_id = data.get("v")
        if not isinstance(viewer_id, str):
            raise Unauthorized("malformed viewer token")
        return viewer_id

    def check_host(self, token: str, room_id: str, generation: int) -> str:
        """Accept a host token for this room and key generation (returns its ``token_id``), or raise
        Unauthorized. The deny list of logged-out tokens is checked by the caller (server/rooms/access.py)."""
        data = _loads(self._host, token, HOST_SESSION_SECS)
        if data.get("r") != room_id:
            raise Unauthorized("this host token is for another room")
        if data.get("g") != generation:
            raise Unauthorized("the host key was replaced: log in with the new key", code="revoked")
        return token_id(token)

    def check_screen(self, token: str, room_id: str, generation: int) -> None:
        """Accept a screen link key for this room and generation, or raise Unauthorized."""
        data = _loads(self._screen, token, None)
        if data.get("r") != room_id:
            raise Unauthorized("this screen link is for another room")
        if data.get("g") != generation:
            raise Unauthorized("this screen link was revoked: ask the host for the new one", code="revoked")


def _loads(
    serializer: URLSafeTimedSerializer | URLSafeSerializer, token: str, max_age: int | None
) -> dict[str, Any]:
    if not isinstance(token, str) or not token or len(token) > 512:
        raise Unauthorized("missing or malformed token")
    try:
        if isinstance(serializer, URLSafeTimedSerializer):
            data = serializer.loads(token, max_age=max_age)
        else:
            data = serializer.loads(token)
    except SignatureExpired:
        raise Unauthorized("token expired", code="token_expired") from None
    except BadSignature:
        raise Unauthorized("invalid token") from None
    if not isinstance(data, dict):
        raise Unauthorized("malformed token")
    return data
