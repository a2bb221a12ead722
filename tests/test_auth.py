"""server.auth: role scopes, host key hashing, and the signed tokens of each role."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from itsdangerous.timed import TimestampSigner

from server import auth
from server.auth import (
    MEMBER_SCOPES,
    ROLE_SCOPES,
    ROOM_SCOPES,
    MemberRole,
    Principal,
    Role,
    Scope,
    SecretChecks,
    Tokens,
    hash_secret,
    new_host_key,
    require,
    token_id,
    verify_secret,
)
from server.config import HOST_SESSION_SECS, VIEWER_TOKEN_SECS
from server.errors import Forbidden, TooManyAttempts, Unauthorized

DAY_SECS = 24 * 3600


@pytest.fixture
def tokens() -> Tokens:
    return Tokens("test-secret")


@contextmanager
def clock_at(monkeypatch: pytest.MonkeyPatch, when: float) -> Iterator[None]:
    """Freeze itsdangerous' clock (signing and checking) at ``when``."""
    with monkeypatch.context() as patch:
        patch.setattr(TimestampSigner, "get_timestamp", lambda self: int(when))
        yield


def unauthorized(check: Callable[[], object]) -> Unauthorized:
    with pytest.raises(Unauthorized) as info:
        check()
    return info.value


def tamper(token: str) -> str:
    """The token with one character of its signature changed (a middle one: the last base64 character
    of a signature carries padding bits, and changing only those leaves the signature valid)."""
    head, _, sig = token.rpartition(".")
    i = len(sig) // 2
    return f"{head}.{sig[:i]}{'A' if sig[i] != 'A' else 'B'}{sig[i + 1 :]}"


# --- roles and scopes --------------------------------------------------------------------------------


def test_every_role_has_scopes() -> None:
    """Each role is listed in ROLE_SCOPES and may at least read the room."""
    assert set(ROLE_SCOPES) == set(Role)
    assert all(Scope.READ in scopes for scopes in ROLE_SCOPES.values())


def test_viewer_cannot_control() -> None:
    """A viewer may read and participate but not control the room."""
    viewer = Principal(Role.VIEWER, "r", "v1")
    assert viewer.can(Scope.READ) and viewer.can(Scope.PARTICIPATE)
    for scope in ROOM_SCOPES - {Scope.READ}:
        assert not viewer.can(scope)
        with pytest.raises(Forbidden):
            require(viewer, scope)


def test_host_controls_but_does_not_participate() -> None:
    """The host may read and control; audience actions are not the host's."""
    host = Principal(Role.HOST, "r")
    assert all(host.can(scope) for scope in ROOM_SCOPES)
    assert not host.can(Scope.PARTICIPATE) and not host.can(Scope.ORG_ADMIN)


def test_member_roles_narrow_the_console() -> None:
    """A member's console holds their role's scopes and no more; an owner's console every room scope
    (organisation administration is the studio's, not a console's)."""
    for role, scopes in MEMBER_SCOPES.items():
        console = Principal(Role.HOST, "r", account_id="a", session_id="s", member_role=role)
        assert console.scopes == scopes & ROOM_SCOPES
        assert Scope.READ in console.scopes
    moderator = Principal(Role.HOST, "r", account_id="a", session_id="s", member_role=MemberRole.MODERATOR)
    assert moderator.can(Scope.MODERATE) and not moderator.can(Scope.DEALS)
    with pytest.raises(Forbidden) as info:
        require(moderator, Scope.DEALS)
    assert "moderator" in info.value.message and "deals:run" in info.value.message
    owner = Principal(Role.HOST, "r", account_id="a", session_id="s", member_role=MemberRole.OWNER)
    assert owner.scopes == ROOM_SCOPES


def test_screen_only_reads() -> None:
    """The big screen may only read."""
    screen = Principal(Role.SCREEN, "r")
    assert ROLE_SCOPES[Role.SCREEN] == frozenset({Scope.READ})
    require(screen, Scope.READ)
    for scope in (Scope.PARTICIPATE, Scope.SHOW, Scope.DEALS):
        with pytest.raises(Forbidden) as info:
            require(screen, scope)
        assert info.value.code == "forbidden"


# --- host key hashing --------------------------------------------------------------------------------


def test_host_key_verifies() -> None:
    """A host key verifies against its own hash."""
    key = new_host_key()
    assert verify_secret(key, hash_secret(key))


def test_wrong_host_key_refused() -> None:
    """Another key does not verify."""
    assert not verify_secret("not-the-key", hash_secret("the-key"))


def test_host_key_hash_salted() -> None:
    """Hashing the same key twice gives different strings, both valid."""
    first, second = hash_secret("same"), hash_secret("same")
    assert first != second
    assert verify_secret("same", first) and verify_secret("same", second)


def test_hash_does_not_contain_key() -> None:
    """The stored hash does not reveal the key."""
    key = new_host_key()
    assert key not in hash_secret(key)


@pytest.mark.parametrize("stored", ["", "plain", "md5$1$2$3$aa$bb", "scrypt$16384$8$1$aa"])
def test_malformed_stored_hash_refused(stored: str) -> None:
    """A stored value that is not a scrypt hash verifies nothing (and does not raise)."""
    assert not verify_secret("anything", stored)


def test_new_host_key_shape() -> None:
    """Host keys are 16 URL-safe characters and differ each time."""
    keys = {new_host_key() for _ in range(20)}
    assert len(keys) == 20
    assert all(len(k) == 16 and k.replace("-", "").replace("_", "").isalnum() for k in keys)


# --- tokens ------------------------------------------------------------------------------------------


def test_viewer_token_round_trip(tokens: Tokens) -> None:
    """A viewer token yields its viewer id."""
    assert tokens.check_viewer(tokens.viewer("v-123")) == "v-123"


def test_forged_viewer_token_refused(tokens: Tokens) -> None:
    """A token with an altered payload or signature is refused with code unauthorized."""
    token = tokens.viewer("v-123")
    payload, _, rest = token.partition(".")
    forged = Tokens("test-secret").viewer("v-999").partition(".")[0] + "." + rest
    for bad in (forged, tamper(token), payload):
        with pytest.raises(Unauthorized) as info:
            tokens.check_viewer(bad)
        assert info.value.code == "unauthorized"


def test_token_from_other_secret_refused(tokens: Tokens) -> None:
    """A token signed with another server's secret is refused."""
    other = Tokens("another-secret").viewer("v-123")
    assert unauthorized(lambda: tokens.check_viewer(other)).code == "unauthorized"


@pytest.mark.parametrize("token", ["", "x" * 513, None, 12345])
def test_missing_or_malformed_token_refused(tokens: Tokens, token: object) -> None:
    """Empty, oversized or non-string tokens are refused without reaching the signer."""
    unauthorized(lambda: tokens.check_viewer(token))  # type: ignore[arg-type]


def test_tokens_not_interchangeable_between_roles(tokens: Tokens) -> None:
    """A host token is not a screen key or viewer token, and the other way round."""
    host, screen = tokens.host("room1", 1), tokens.screen("room1", 1)
    unauthorized(lambda: tokens.check_screen(host, "room1", 1))
    unauthorized(lambda: tokens.check_host(screen, "room1", 1))
    unauthorized(lambda: tokens.check_viewer(host))
    unauthorized(lambda: tokens.check_host(tokens.viewer("v"), "room1", 1))


def test_expired_viewer_token_refused(tokens: Tokens, monkeypatch: pytest.MonkeyPatch) -> None:
    """A viewer token older than VIEWER_TOKEN_SECS is refused with code token_expired."""
    now = time.time()
    with clock_at(monkeypatch, now - VIEWER_TOKEN_SECS - 60):
        token = tokens.viewer("v-123")
    with clock_at(monkeypatch, now):
        assert unauthorized(lambda: tokens.check_viewer(token)).code == "token_expired"


def test_viewer_token_valid_before_expiry(tokens: Tokens, monkeypatch: pytest.MonkeyPatch) -> None:
    """A viewer token a day short of its lifetime still works."""
    now = time.time()
    with clock_at(monkeypatch, now - VIEWER_TOKEN_SECS + DAY_SECS):
        token = tokens.viewer("v-123")
    with clock_at(monkeypatch, now):
        assert tokens.check_viewer(token) == "v-123"


def test_expired_host_token_refused(tokens: Tokens, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host token older than HOST_SESSION_SECS is refused with code token_expired."""
    now = time.time()
    with clock_at(monkeypatch, now - HOST_SESSION_SECS - 60):
        token = tokens.host("room1", 1)
    with clock_at(monkeypatch, now):
        assert unauthorized(lambda: tokens.check_host(token, "room1", 1)).code == "token_expired"


def test_screen_key_does_not_expire(tokens: Tokens, monkeypatch: pytest.MonkeyPatch) -> None:
    """A screen link key stays valid however old it is (it is revoked by generation instead)."""
    now = time.time()
    with clock_at(monkeypatch, now - 3 * 365 * DAY_SECS):
        key = tokens.screen("room1", 1)
    with clock_at(monkeypatch, now):
        tokens.check_screen(key, "room1", 1)


def test_host_token_for_other_room_refused(tokens: Tokens) -> None:
    """A host token for room A does not open room B."""
    token = tokens.host("roomA", 1)
    assert tokens.check_host(token, "roomA", 1).session_id is None
    assert unauthorized(lambda: tokens.check_host(token, "roomB", 1)).code == "unauthorized"


def test_host_token_of_replaced_key_refused(tokens: Tokens) -> None:
    """A host token issued before the host key was replaced (older generation) is refused."""
    token = tokens.host("room1", 1)
    assert unauthorized(lambda: tokens.check_host(token, "room1", 2)).code == "revoked"


def test_revoked_screen_key_refused(tokens: Tokens) -> None:
    """A screen key of a revoked generation, or for another room, is refused."""
    key = tokens.screen("room1", 1)
    assert unauthorized(lambda: tokens.check_screen(key, "room1", 2)).code == "revoked"
    assert unauthorized(lambda: tokens.check_screen(key, "room2", 1)).code == "unauthorized"


def test_host_tokens_are_unique_and_named_by_their_hash(tokens: Tokens) -> None:
    """Two logins of the same second get different tokens (one can be logged out alone); the check
    answers the token's deny-list name, a hash that is not the token."""
    first, second = tokens.host("room1", 1), tokens.host("room1", 1)
    assert first != second
    assert tokens.check_host(first, "room1", 1).token_id == token_id(first) != token_id(second)
    assert first not in token_id(first) and len(token_id(first)) == 32


def test_member_console_tokens_are_bound_to_the_studio_session(tokens: Tokens) -> None:
    """A member's console token names their studio session and outlives a host key rotation (the
    session, not the key generation, decides); it is still bound to its room."""
    token = tokens.member_host("room1", "sess1")
    checked = tokens.check_host(token, "room1", 7)
    assert checked.session_id == "sess1" and checked.token_id == token_id(token)
    assert unauthorized(lambda: tokens.check_host(token, "room2", 1)).code == "unauthorized"
    assert tokens.check_studio(tokens.studio("sess1")) == "sess1"
    assert unauthorized(lambda: tokens.check_studio(token)).code == "unauthorized"


async def test_secret_checks_refuse_past_their_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every thread busy and the waiting room full, a check is refused at once (too_many_attempts,
    retry after 1 s), and the event loop stays free while checks run."""
    release = threading.Event()

    def blocked(secret: str, stored: str) -> bool:
        release.wait(5)
        return True

    monkeypatch.setattr(auth, "verify_secret", blocked)
    checks = SecretChecks(at_once=1, waiting=1)
    running = [asyncio.ensure_future(checks.verify("k", "h")) for _ in range(2)]
    await asyncio.sleep(0.01)  # the loop runs while both wait on the blocked thread
    with pytest.raises(TooManyAttempts) as refused:
        await checks.verify("k", "h")
    assert refused.value.code == "too_many_attempts" and refused.value.retry_after_secs == 1
    release.set()
    assert await asyncio.gather(*running) == [True, True]
    assert checks.busy == 0
    checks.close()
