"""The shape of a domain, and the registry ``create_app`` builds from the domains it is given.

A domain (rooms, products, questions, discounts, draws, follow-up, ...) is a package that declares,
in one ``Domain`` value, everything the app wires for it: the client actions it handles (with the
scope each needs), its HTTP routes, its part of the snapshot, of the viewer's private state and of
the reducer, the direct frames it sends, its engines (built, started and stopped in the declared
order) and its reactions to other domains' moments (hooks). Nothing registers itself by being
imported: ``create_app(settings, domains=...)`` receives the list (``server.domains.default_domains``)
and builds one ``Registry`` from it, kept on ``Services``.

``Services`` lives here, with the declarations whose callables receive it: a domain is declared
against the services it is given, and the services hold the registry built from the domains, so
the two are one module (``server.services`` names it for the modules that import it from there).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol, TypeAlias, TypeVar

from sqlalchemy import Select
from starlette.routing import BaseRoute

from server.auth import Principal, Scope, Tokens
from server.config import Settings
from server.metrics import Metrics
from server.realtime import dispatch
from server.realtime.dispatch import ActionTable, Handler, HandlerFn
from server.realtime.hub import Hub
from server.realtime.limits import Limiter
from server.realtime.protocol import CLIENT_TYPES, DIRECT_TYPES, Event
from server.sandbox import Sandbox
from server.storage import Database
from server.storage.models import Claim, Discount

__all__ = [
    "ActionContext",
    "ActionTable",
    "Domain",
    "Engine",
    "EngineSpec",
    "Engines",
    "Handler",
    "HandlerFn",
    "Hooks",
    "Services",
]


# --- snapshot parts ----------------------------------------------------------------------------------

Contributor = Callable[["Services", Principal, dict[str, Any]], Awaitable[None]]
Reducer = Callable[[dict[str, Any], dict[str, Any]], None]


@dataclass(frozen=True)
class PersonalPart:
    """A domain's part of a viewer's private state, sent in every welcome.

    Most viewers of a storm have none: ``has_state(room_id, viewer_ids)`` gives statements selecting
    the ids (a superset is fine) of those who may have some in this part (both arguments are bind
    parameters: the statement is built once), and ``empty(joined_ms)`` what ``read`` would give for
    anyone else. A welcome then costs a share of one gathered query instead of a dozen of its own;
    ``read`` still serves those the statements name."""

    read: Contributor
    has_state: Callable[[Any, Any], list[Select[Any]]]
    empty: Callable[[int | None], dict[str, Any]]


# --- engines -----------------------------------------------------------------------------------------


class Engine(Protocol):
    """A domain's long-lived part (background loops, caches, connections): started after the
    database is migrated and the hub started, stopped before them, in the declared order."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


EngineFactory = Callable[["Services"], Engine]


@dataclass(frozen=True)
class EngineSpec:
    """One engine of a domain: ``build(services)`` when the app is created (earlier domains' engines
    are there to be found), started in the lifespan unless ``runs`` says this app does not run it
    (it is then built, findable and stopped all the same)."""

    name: str
    build: EngineFactory
    runs: Callable[[Settings], bool] | None = None


E = TypeVar("E")


class Engines:
    """The running engines, found by their class: ``services.engines.get(DrawEngine)``. Typed, never
    optional: asking for one the app was not given is a wiring error, raised at once."""

    def __init__(self) -> None:
        self._by_type: dict[type, Any] = {}
        self.order: list[tuple[str, Engine]] = []

    def add(self, name: str, engine: Engine) -> None:
        kind = type(engine)
        if kind in self._by_type:
            raise ValueError(f"two engines of type {kind.__name__}")
        self._by_type[kind] = engine
        self.order.append((name, engine))

    def get(self, kind: type[E]) -> E:
        try:
            found: E = self._by_type[kind]
        except KeyError:
            raise LookupError(
                f"no {kind.__name__} in this app: its domain was not given to create_app"
            ) from None
        return found

    def find(self, kind: type[E]) -> E | None:
        """The engine of ``kind``, or ``None`` when its domain is not part of this app."""
        found: E | None = self._by_type.get(kind)
        return found


# --- hooks (one domain reacting to another's moment) ----------------------------------------------------

# A viewer posted a comment or question that passed the filters: (services, room_id, viewer_id, text).
ItemHook = Callable[["Services", str, str, str], Awaitable[None]]
# An intent (purchase signal) was written to the log: (services,).
IntentHook = Callable[["Services"], None]


@dataclass(frozen=True)
class PrizeClaim:
    """A draw's winner left contact details to get the prize, and said whether follow-up messages
    may reach them (``wording``: the consent text they saw, in ``lang``)."""

    room_id: str
    viewer_id: str
    name: str
    phone: str | None
    email: str | None
    consent: bool
    wording: str | None
    lang: str


# A winner claimed a prize (stored and logged as the intent ``draw.claimed``): (services, claim).
DrawClaimHook = Callable[["Services", PrizeClaim], Awaitable[None]]
# The shop redeemed a claim's coupon (stored as redeemed): (services, claim, its discount).
ClaimHook = Callable[["Services", Claim, Discount], Awaitable[None]]
# A viewer followed or unfollowed a room (the follower count changed): (services, room_id).
FollowHook = Callable[["Services", str], None]
# A console's action succeeded: (services, principal, message type, its scope, data, result). Never
# awaited by the action (the audit log queues it).
ConsoleActionHook = Callable[["Services", Principal, str, Scope, Mapping[str, Any], Any], None]
# A room went live: (services, room_id) (go-live reminders are sent).
LiveHook = Callable[["Services", str], Awaitable[None]]


@dataclass(frozen=True)
class Hooks:
    on_item: ItemHook | None = None
    on_intent: IntentHook | None = None
    on_draw_claim: DrawClaimHook | None = None
    on_claim_redeemed: ClaimHook | None = None
    on_follow: FollowHook | None = None
    on_console_action: ConsoleActionHook | None = None
    on_live: LiveHook | None = None


# --- the declaration -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Domain:
    name: str
    actions: ActionTable | None = None
    routes: Sequence[BaseRoute] = ()
    snapshot: Contributor | None = None  # its part of the snapshot every connection of a role shares
    personal: PersonalPart | None = None  # its part of a viewer's private state
    reducers: Mapping[str, Reducer] = field(default_factory=dict)  # event type -> reference reducer
    direct_types: Mapping[str, str] = field(default_factory=dict)  # unsequenced frames it sends: doc
    engines: Sequence[EngineSpec] = ()  # built and started in this order, stopped in reverse
    hooks: Hooks = Hooks()
    events: Sequence[type[Event]] = ()  # the room events it publishes (docs/protocol.md)


def events_of(*modules: ModuleType) -> tuple[type[Event], ...]:
    """The Event types defined in ``modules`` (a domain's events.py), in definition order."""
    found: list[type[Event]] = []
    for module in modules:
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Event)
                and value.__module__ == module.__name__
                and "type" in value.__dict__
            ):
                found.append(value)
    return tuple(found)


class Registry:
    """Everything the domains declared, merged: what the endpoint dispatches, what the snapshot and
    the reducer are made of, which hooks run. Two domains declaring the same action, reducer or
    name is refused here, when the app is built."""

    def __init__(self, domains: Iterable[Domain]) -> None:
        self.domains: tuple[Domain, ...] = tuple(domains)
        names = [d.name for d in self.domains]
        if len(set(names)) != len(names):
            raise ValueError(f"a domain is given twice: {names}")
        self.handlers: dict[str, Handler] = {}
        self.contributors: list[Contributor] = []
        self.personal: tuple[PersonalPart, ...] = tuple(d.personal for d in self.domains if d.personal)
        self.reducers: dict[str, Reducer] = {}
        self.events: dict[str, type[Event]] = {}  # room event types by name (the wire contract)
        self.direct_types: dict[str, str] = dict(DIRECT_TYPES)
        self.item_hooks: tuple[ItemHook, ...] = tuple(
            d.hooks.on_item for d in self.domains if d.hooks.on_item
        )
        self.intent_hooks: tuple[IntentHook, ...] = tuple(
            d.hooks.on_intent for d in self.domains if d.hooks.on_intent
        )
        self.draw_claim_hooks: tuple[DrawClaimHook, ...] = tuple(
            d.hooks.on_draw_claim for d in self.domains if d.hooks.on_draw_claim
        )
        self.claim_redeemed_hooks: tuple[ClaimHook, ...] = tuple(
            d.hooks.on_claim_redeemed for d in self.domains if d.hooks.on_claim_redeemed
        )
        self.console_action_hooks: tuple[ConsoleActionHook, ...] = tuple(
            d.hooks.on_console_action for d in self.domains if d.hooks.on_console_action
        )
        self.live_hooks: tuple[LiveHook, ...] = tuple(
            d.hooks.on_live for d in self.domains if d.hooks.on_live
        )
        self.follow_hooks: tuple[FollowHook, ...] = tuple(
            d.hooks.on_follow for d in self.domains if d.hooks.on_follow
        )
        for domain in self.domains:
            for handler in domain.actions.handlers if domain.actions else ():
                if handler.kind in self.handlers or handler.kind in CLIENT_TYPES:
                    raise ValueError(f"two handlers for {handler.kind!r}")
                self.handlers[handler.kind] = handler
            if domain.snapshot is not None:
                self.contributors.append(domain.snapshot)
            for kind, reducer in domain.reducers.items():
                if kind in self.reducers:
                    raise ValueError(f"two reducers for event {kind!r}")
                self.reducers[kind] = reducer
            self.direct_types.update(domain.direct_types)
            for event in domain.events:
                if event.type in self.events:
                    raise ValueError(f"event type {event.type!r} declared twice")
                self.events[event.type] = event

    @property
    def client_types(self) -> dict[str, str]:
        """Every client message type with its one-line doc (the core's, then the domains')."""
        return {**CLIENT_TYPES, **{kind: h.doc for kind, h in self.handlers.items()}}

    @property
    def routes(self) -> list[BaseRoute]:
        return [route for d in self.domains for route in d.routes]

    def engine_specs(self) -> list[EngineSpec]:
        return [spec for d in self.domains for spec in d.engines]


# --- what every handler, engine and hook is given ------------------------------------------------------


@dataclass
class Services:
    """The core (settings, storage, hub, tokens, metrics, sandbox, limiter), what the domains
    declared (``registry``) and their running engines, found by class (``engines.get(DrawEngine)``)."""

    settings: Settings
    db: Database
    hub: Hub
    tokens: Tokens
    metrics: Metrics
    sandbox: Sandbox  # worker processes for untrusted and CPU-heavy jobs
    limiter: Limiter
    registry: Registry
    engines: Engines = field(default_factory=Engines)


# A domain's client actions take this context: the endpoint's, with the app's services typed.
ActionContext: TypeAlias = dispatch.ActionContext[Services]
