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

from server.config import HOST_SESSION_SECS, STUDIO_SESSION_SECS, VIEWER_TOKEN_SECS
from server.errors import Forbidden, TooManyAttempts, Unauthorized


class Role(enum.StrEnum):
    VIEWER = "viewer"
    HOST = "host"
    SCREEN = "screen"


class Scope(enum.StrEnum):
    """What an action needs. A viewer participates; the screen reads; the people who run a show
    hold the scopes of their member role (``MEMBER_SCOPES``); the room's host key holds every room
    scope (one person running their own show)."""

    READ = "room:read"  # receive the room's events
    PARTICIPATE = "room:participate"  # act as an audience member (rename, ask, claim, ...)
    SHOW = "show:run"  # go live, end, announce
    MODERATE = "questions:moderate"  # questions, the wall, sanctions, moderation settings
    PRODUCTS = "products:manage"  # the shelf, pinning, importing
    DEALS = "deals:run"  # discounts: launch, change, stop
    DRAWS = "draws:run"  # draws: set up, close, draw, confirm, cancel
    FOLLOWUP = "followup:manage"  # journeys, templates, campaigns, contacts
    REPORTS = "reports:read"  # exports and reports (read only)
    ROOM_ADMIN = "room:admin"  # keys, the screen link, scheduling and the room's settings in the studio
    ORG_ADMIN = "org:admin"  # members, roles, sessions of others, the audit log


# Every scope a room's console can use: what the room's host key grants (single-person use).
ROOM_SCOPES: frozenset[Scope] = frozenset(
    {
        Scope.READ,
        Scope.SHOW,
        Scope.MODERATE,
        Scope.PRODUCTS,
        Scope.DEALS,
        Scope.DRAWS,
        Scope.FOLLOWUP,
        Scope.REPORTS,
        Scope.ROOM_ADMIN,
    }
)

ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.VIEWER: frozenset({Scope.READ, Scope.PARTICIPATE}),
    Role.HOST: ROOM_SCOPES,  # a console: narrowed by the member role of whoever signed in
    Role.SCREEN: frozenset({Scope.READ}),  # the big screen is read-only
}


class MemberRole(enum.StrEnum):
    """An organisation member's role (docs/accounts.md), overridable per room."""

    OWNER = "owner"
    HOST = "host"
    MODERATOR = "moderator"
    SELLER = "seller"
    MARKETER = "marketer"
    ANALYST = "analyst"


MEMBER_SCOPES: dict[MemberRole, frozenset[Scope]] = {
    MemberRole.OWNER: ROOM_SCOPES | {Scope.ORG_ADMIN},
    MemberRole.HOST: frozenset(
        {
            Scope.READ,
            Scope.SHOW,
            Scope.MODERATE,
            Scope.PRODUCTS,
            Scope.DEALS,
            Scope.DRAWS,
            Scope.REPORTS,
            Scope.ROOM_ADMIN,
        }
    ),
    MemberRole.MODERATOR: frozenset({Scope.READ, Scope.MODERATE}),
    MemberRole.SELLER: frozenset({Scope.READ, Scope.PRODUCTS, Scope.DEALS}),
    MemberRole.MARKETER: frozenset({Scope.READ, Scope.FOLLOWUP, Scope.REPORTS}),
    MemberRole.ANALYST: frozenset({Scope.READ, Scope.REPORTS}),
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
    # A console opened by a signed-in member: their account, studio session and member role, whose
    # scopes replace the role's. None: the room's host key (every room scope).
    account_id: str | None = None
    session_id: str | None = None
    member_role: MemberRole | None = None

    @property
    def scopes(self) -> frozenset[Scope]:
        if self.member_role is not None:
            return MEMBER_SCOPES[self.member_role] & ROLE_SCOPES[self.role]
        return ROLE_SCOPES[self.role]

    def can(self, scope: Scope) -> bool:
        return scope in self.scopes


def require(principal: Principal, scope: Scope) -> None:
    """Raise Forbidden unless the principal holds the scope."""
    if not principal.can(scope):
        who = principal.member_role or principal.role
        raise Forbidden(f"the {who} role may not do this (needs {scope})")


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


@dataclass(frozen=True, slots=True)
class HostCredential:
    """A checked console token: its id (for the deny list) and, for a member's console, the studio
    session it is bound to (None: issued for the room's host key)."""

    token_id: str
    session_id: str | None


class Tokens:
    """Signs and checks the tokens for each role. Tokens are signed, never stored."""

    def __init__(self, secret_key: str) -> None:
        self._viewer = URLSafeTimedSerializer(secret_key, salt="livewall.viewer")
        self._host = URLSafeTimedSerializer(secret_key, salt="livewall.host")
        # Screen links do not expire (they are revoked by bumping the room's screen generation), so they
        # carry no timestamp: the same room and generation always give the same link.
        self._screen = URLSafeSerializer(secret_key, salt="livewall.screen")
        self._studio = URLSafeTimedSerializer(secret_key, salt="livewall.studio")

    def viewer(self, viewer_id: str) -> str:
        return self._viewer.dumps({"v": viewer_id})

    def host(self, room_id: str, generation: int) -> str:
        # "j" makes every token unique: two co-hosts logging in within a second get different
        # tokens, and logging one out (a deny-list entry by token_id) leaves the other's.
        return self._host.dumps({"r": room_id, "g": generation, "j": secrets.token_urlsafe(6)})

    def member_host(self, room_id: str, session_id: str) -> str:
        """A console token for a signed-in member: bound to their studio session (revoking it ends
        the console), not to the room's host key generation."""
        return self._host.dumps({"r": room_id, "s": session_id, "j": secrets.token_urlsafe(6)})

    def studio(self, session_id: str) -> str:
        """The studio's session cookie: the signed id of a stored, revocable StudioSession."""
        return self._studio.dumps({"s": session_id})

    def check_studio(self, token: str) -> str:
        """The session id in a valid studio cookie (whether the session is still live is the
        store's question: server/accounts/store.py)."""
        data = _loads(self._studio, token, STUDIO_SESSION_SECS)
        session_id = data.get("s")
        if not isinstance(session_id, str):
            raise Unauthorized("malformed studio session")
        return session_id

    def screen(self, room_id: str, generation: int) -> str:
        return self._screen.dumps({"r": room_id, "g": generation})

    def check_viewer(self, token: str) -> str:
        """The viewer id in a valid viewer token."""
        data = _loads(self._viewer, token, VIEWER_TOKEN_SECS)
        viewer_id = data.get("v")
        if not isinstance(viewer_id, str):
            raise Unauthorized("malformed viewer token")
        return viewer_id

    def check_host(self, token: str, room_id: str, generation: int) -> HostCredential:
        """Accept a console token for this room: one issued for the room's host key of this
        generation, or one bound to a member's studio session (checked live by the caller). Returns
        its ``token_id`` (and the session), or raises Unauthorized. The deny list of logged-out tokens
        is checked by the caller (server/rooms/identity.py)."""
        data = _loads(self._host, token, HOST_SESSION_SECS)
        if data.get("r") != room_id:
            raise Unauthorized("this host token is for another room")
        session_id = data.get("s")
        if isinstance(session_id, str):
            return HostCredential(token_id(token), session_id)
        if data.get("g") != generation:
            raise Unauthorized("the host key was replaced: log in with the new key", code="revoked")
        return HostCredential(token_id(token), None)

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
