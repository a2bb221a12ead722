"""Every console role against every action, generated: each WebSocket action of the registry and each
console HTTP route is allowed or refused ("forbidden") as MEMBER_SCOPES and ROOM_SCOPES say, for the
room's host key and for a member of every role (and a member whose role is overridden in one room).
A new action is covered by itself; a new console route fails ``test_every_console_route_is_in_the_table``
until it is added to ``ROUTES``."""

from __future__ import annotations

import ast
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.routing import BaseRoute, Mount, Route
from websockets.protocol import State

from server.auth import MEMBER_SCOPES, ROOM_SCOPES, MemberRole, Scope
from server.domains import default_registry
from server.rooms.actions import create_room, load_room
from server.services import Services
from server.storage import Database, now_ms
from server.storage.accounts import DEFAULT_ORG, Account, Membership, RoomRole, StudioSession
from tests.conftest import make_settings
from tests.helpers import REPO, Client, Running, serve

HANDLERS = default_registry().handlers
# The consoles: the room's host key (None: every room scope), then a member of each role.
CONSOLES: tuple[MemberRole | None, ...] = (None, *MemberRole)
# An account that is a moderator of the organisation but a seller in the matrix's room.
OVERRIDE = "override"
TIMEOUT = 10.0


def held(role: MemberRole | None) -> frozenset[Scope]:
    """What a console may do: the member role's scopes within the room's; the host key, all the room's."""
    return ROOM_SCOPES if role is None else MEMBER_SCOPES[role] & ROOM_SCOPES


def label(role: MemberRole | None) -> str:
    return "host-key" if role is None else role.value


@dataclass(frozen=True)
class Member:
    account_id: str
    session_id: str


async def add_member(
    db: Database,
    role: MemberRole,
    *,
    org_id: str = DEFAULT_ORG,
    room_role: tuple[str, MemberRole] | None = None,
    email: str | None = None,
) -> Member:
    """An account with ``role`` in the organisation (and optionally another role in one room) and a
    live studio session, written straight into the database."""
    now = now_ms()
    account_id, session_id = secrets.token_hex(8), secrets.token_hex(8)
    async with db.session() as session:
        session.add(
            Account(
                id=account_id,
                email=email or f"{account_id}@example.com",
                name=f"{role.value} {account_id[:4]}",
                created_ms=now,
            )
        )
        await session.flush()  # the account first: PostgreSQL checks the foreign keys below
        session.add(Membership(org_id=org_id, account_id=account_id, role=role.value, created_ms=now))
        if room_role is not None:
            session.add(RoomRole(room_id=room_role[0], account_id=account_id, role=room_role[1].value))
        session.add(
            StudioSession(
                id=session_id,
                account_id=account_id,
                created_ms=now,
                last_seen_ms=now,
                expires_ms=now + 3600_000,
            )
        )
        await session.commit()
    return Member(account_id, session_id)


@dataclass
class Matrix:
    """One server, the WebSocket matrix's room, the HTTP matrix's room (where the host key is rotated),
    one studio session per member role, and one console per role, opened when first asked for."""

    running: Running
    room_id: str
    http_room_id: str
    sessions: dict[str, str]  # label -> studio session id (the override account under OVERRIDE)
    consoles: dict[str, Client] = field(default_factory=dict)

    @property
    def services(self) -> Services:
        found: Services = self.running.app.state.services
        return found

    async def token(self, who: str, room_id: str) -> str:
        """A fresh console token: the host key's of the room's current generation, or the member's."""
        if who == "host-key":
            room = await load_room(self.services.db, room_id)
            return self.services.tokens.host(room.id, room.host_key_gen)
        return self.services.tokens.member_host(room_id, self.sessions[who])

    async def console(self, who: str) -> Client:
        client = self.consoles.get(who)
        if client is None or client.ws.state is not State.OPEN:
            token = await self.token(who, self.room_id)
            client = await Client.connect(
                self.running.ws, "host", self.room_id, {"token": token, "name": who}
            )
            self.consoles[who] = client
        return client


@pytest.fixture(scope="module")
async def matrix(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Matrix]:
    # Hundreds of actions on a handful of connections: no inbound throttling in the way.
    settings = make_settings(
        tmp_path_factory.mktemp("matrix"), inbound_burst=10_000, inbound_rate_per_sec=10_000.0
    )
    async with serve(settings) as running:
        services: Services = running.app.state.services
        room, _key = await create_room(services.db, title="Matrix room")
        http_room, _key = await create_room(services.db, title="Matrix HTTP room")
        sessions = {}
        for role in MemberRole:
            sessions[role.value] = (await add_member(services.db, role)).session_id
        override = await add_member(services.db, MemberRole.MODERATOR, room_role=(room.id, MemberRole.SELLER))
        sessions[OVERRIDE] = override.session_id
        found = Matrix(running, room.id, http_room.id, sessions)
        yield found
        for client in found.consoles.values():
            await client.close()


# Answers that would mean the action never reached its scope check, or failed it.
NOT_THROUGH = frozenset({"forbidden", "unauthorized", "revoked"})


def outcome(answer: dict[str, Any]) -> str:
    """``forbidden``, another error's code, or ``ack``."""
    return str(answer["data"]["code"]) if answer["type"] == "error" else answer["type"]


# --- WebSocket actions ------------------------------------------------------------------------------------


def test_no_console_may_act_as_a_viewer() -> None:
    """Audience actions (room:participate) are in no console's scopes, whatever its role."""
    assert all(Scope.PARTICIPATE not in held(role) for role in CONSOLES)
    assert any(h.scope is Scope.PARTICIPATE for h in HANDLERS.values())


@pytest.mark.parametrize(
    ("role", "kind"),
    [(role, kind) for role in CONSOLES for kind in HANDLERS],
    ids=[f"{label(role)}-{kind}" for role in CONSOLES for kind in HANDLERS],
)
async def test_console_action(matrix: Matrix, role: MemberRole | None, kind: str) -> None:
    """The action, sent with empty data, is refused ("forbidden") exactly when the role lacks its scope."""
    client = await matrix.console(label(role))
    got = outcome(await client.request(kind, {}))
    if HANDLERS[kind].scope in held(role):
        assert got not in NOT_THROUGH, f"{label(role)} may {kind} ({HANDLERS[kind].scope}), got {got}"
    else:
        assert got == "forbidden", f"{label(role)} may not {kind} ({HANDLERS[kind].scope}), got {got}"


@pytest.mark.parametrize("kind", list(HANDLERS))
async def test_a_room_override_replaces_the_organisation_role(matrix: Matrix, kind: str) -> None:
    """A moderator of the organisation who is a seller in this room gets the seller's outcomes here."""
    client = await matrix.console(OVERRIDE)
    got = outcome(await client.request(kind, {}))
    allowed = HANDLERS[kind].scope in held(MemberRole.SELLER)
    assert (got not in NOT_THROUGH) if allowed else (got == "forbidden"), f"{kind}: {got}"


async def test_the_override_holds_only_in_its_room(matrix: Matrix) -> None:
    """In another room of the organisation the same account is a moderator again."""
    token = matrix.services.tokens.member_host(matrix.http_room_id, matrix.sessions[OVERRIDE])
    client = await Client.connect(matrix.running.ws, "host", matrix.http_room_id, {"token": token})
    try:
        assert outcome(await client.request("item.approve", {})) not in NOT_THROUGH
        assert outcome(await client.request("product.save", {})) == "forbidden"
    finally:
        await client.close()


# --- HTTP routes ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Console:
    """A console HTTP route and the scope it needs (``body``: what is sent, JSON)."""

    method: str
    path: str
    scope: Scope
    body: dict[str, Any] | None = None

    def url(self, room_id: str) -> str:
        return self.path.format(room_id=room_id, **PATH_PARAMS)

    @property
    def name(self) -> str:
        extra = "+" + ",".join(self.body) if self.body else ""
        return f"{self.method} {self.path.removeprefix('/api/rooms/{room_id}')}{extra}"


PATH_PARAMS = {"fmt": "csv", "key": "welcome", "campaign_id": "1", "message_id": "1"}
ROUTES: tuple[Console, ...] = (
    Console("POST", "/api/rooms/{room_id}/announcements", Scope.SHOW, {}),
    Console("POST", "/api/rooms/{room_id}/start", Scope.SHOW),
    Console("POST", "/api/rooms/{room_id}/end", Scope.SHOW),
    Console("GET", "/api/rooms/{room_id}/export.{fmt}", Scope.REPORTS),
    Console("GET", "/api/rooms/{room_id}/draws.csv", Scope.REPORTS),
    Console("POST", "/api/rooms/{room_id}/products/import", Scope.PRODUCTS, {}),
    Console("POST", "/api/rooms/{room_id}/host-key/rotate", Scope.ROOM_ADMIN),
    Console("POST", "/api/rooms/{room_id}/screen-link/rotate", Scope.ROOM_ADMIN),
    Console("POST", "/api/rooms/{room_id}/logout", Scope.READ, {}),  # one's own session: every console
    Console("POST", "/api/rooms/{room_id}/logout", Scope.ROOM_ADMIN, {"everywhere": True}),
    Console("GET", "/api/rooms/{room_id}/followup", Scope.FOLLOWUP),
    Console("PUT", "/api/rooms/{room_id}/followup/settings", Scope.FOLLOWUP, {}),
    Console("POST", "/api/rooms/{room_id}/followup/journeys", Scope.FOLLOWUP, {}),
    Console("POST", "/api/rooms/{room_id}/followup/journeys/{key}/status", Scope.FOLLOWUP, {}),
    Console("POST", "/api/rooms/{room_id}/followup/templates", Scope.FOLLOWUP, {}),
    Console("POST", "/api/rooms/{room_id}/followup/preview", Scope.FOLLOWUP, {}),
    Console("POST", "/api/rooms/{room_id}/followup/campaigns", Scope.FOLLOWUP, {}),
    Console("POST", "/api/rooms/{room_id}/followup/campaigns/{campaign_id}/cancel", Scope.FOLLOWUP, {}),
    Console("GET", "/api/rooms/{room_id}/followup/messages", Scope.FOLLOWUP),
    Console("POST", "/api/rooms/{room_id}/followup/messages/{message_id}/retry", Scope.FOLLOWUP, {}),
    Console("POST", "/api/rooms/{room_id}/followup/dnc", Scope.FOLLOWUP, {}),
    Console("GET", "/api/rooms/{room_id}/presets", Scope.READ),
)
# What reads a console's credential: a function that calls it (or calls a function that does) guards
# a console route.
CREDENTIAL_READER = ("server.rooms.identity", "host_token")
Qualified = tuple[str, str]  # (module, function)


class _Module(ast.NodeVisitor):
    """A module's functions and the functions each one calls, resolved through the module's imports."""

    def __init__(self, module: str, tree: ast.Module) -> None:
        self.module = module
        self.names: dict[str, Qualified] = {}  # a name in the module -> what it stands for
        self.modules: dict[str, str] = {}  # a name in the module -> the module it stands for
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    self.names[alias.asname or alias.name] = (node.module, alias.name)
                    self.modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    self.modules[alias.asname or alias.name] = alias.name
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.names[node.name] = (module, node.name)
        self.calls: dict[Qualified, set[Qualified]] = {}
        for each in ast.walk(tree):
            if isinstance(each, ast.FunctionDef | ast.AsyncFunctionDef):
                found = self.calls.setdefault((module, each.name), set())
                found |= {c for c in map(self._callee, ast.walk(each)) if c is not None}

    def _callee(self, node: ast.AST) -> Qualified | None:
        if not isinstance(node, ast.Call):
            return None
        func = node.func
        if isinstance(func, ast.Name):
            return self.names.get(func.id)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            module = self.modules.get(func.value.id)
            return (module, func.attr) if module is not None else None
        return None


def console_guards() -> set[Qualified]:
    """Every function in server/ that reads a console credential, directly or through another such
    function (require_host, follow-up's host_room, rooms/http.py's _host, and the routes themselves)."""
    calls: dict[Qualified, set[Qualified]] = {}
    for path in sorted((REPO / "server").rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        calls |= _Module(module, ast.parse(path.read_text(), str(path))).calls
    guards = {CREDENTIAL_READER}
    while True:
        found = {f for f, callees in calls.items() if callees & guards} - guards
        if not found:
            return guards - {CREDENTIAL_READER}
        guards |= found


def _routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, Route]]:
    for route in routes:
        if isinstance(route, Mount):
            yield from _routes(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            yield prefix + route.path, route


def test_every_console_route_is_in_the_table(matrix: Matrix) -> None:
    """Every route of the app whose endpoint reads a console credential is in ROUTES, and only those."""
    guards = console_guards()
    assert ("server.rooms.identity", "require_host") in guards
    assert ("server.followup.edge", "host_room") in guards
    guarded = {
        (method, path)
        for path, route in _routes(matrix.running.app.routes)
        if (route.endpoint.__module__, route.endpoint.__name__) in guards
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert guarded == {(c.method, c.path) for c in ROUTES}


def _http_cases() -> Iterator[Any]:
    for role in CONSOLES:
        for console in ROUTES:
            yield pytest.param(role, console, id=f"{label(role)}-{console.name}")


@pytest.fixture
async def http(matrix: Matrix) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=matrix.running.base, timeout=TIMEOUT) as client:
        yield client


async def _send(
    http: httpx.AsyncClient, console: Console, room_id: str, headers: dict[str, str]
) -> httpx.Response:
    if console.body is None:
        return await http.request(console.method, console.url(room_id), headers=headers)
    return await http.request(console.method, console.url(room_id), headers=headers, json=console.body)


def _refused(response: httpx.Response) -> bool:
    """403 "forbidden": True; any answer past the credential and scope checks: False."""
    assert response.status_code != 401, response.text
    if response.status_code != 403:
        return False
    code: str = response.json()["error"]["code"]
    assert code == "forbidden", response.text
    return True


@pytest.mark.parametrize(("role", "console"), list(_http_cases()))
async def test_console_route(
    matrix: Matrix, http: httpx.AsyncClient, role: MemberRole | None, console: Console
) -> None:
    """With the console's bearer token, the route answers 403 "forbidden" exactly when the role lacks
    its scope (200, 400, 404, 409, 422 prove the scope check passed)."""
    token = await matrix.token(label(role), matrix.http_room_id)
    response = await _send(http, console, matrix.http_room_id, {"authorization": f"Bearer {token}"})
    if console.scope in held(role):
        assert not _refused(response), f"{label(role)} may {console.name}: {response.text}"
    else:
        assert _refused(response), (
            f"{label(role)} may not {console.name}: {response.status_code} {response.text}"
        )


@pytest.mark.parametrize(("who", "allowed"), [(MemberRole.MARKETER, True), (MemberRole.ANALYST, False)])
async def test_a_cookie_console_is_held_to_its_scopes_too(
    matrix: Matrix, who: MemberRole, allowed: bool
) -> None:
    """On the console's session cookie (same origin) a route is refused by role just as on the bearer."""
    token = await matrix.token(who.value, matrix.http_room_id)
    cookies = {f"lw_host_{matrix.http_room_id}": token}
    async with httpx.AsyncClient(base_url=matrix.running.base, timeout=TIMEOUT, cookies=cookies) as client:
        response = await client.put(
            f"/api/rooms/{matrix.http_room_id}/followup/settings",
            json={},
            headers={"origin": matrix.running.base},
        )
    assert _refused(response) is not allowed, response.text


def test_the_route_table_has_no_stale_scope() -> None:
    """Each table entry names a scope some console may hold (a typo would pass as refused everywhere)."""
    assert all(any(c.scope in held(role) for role in CONSOLES) for c in ROUTES)
