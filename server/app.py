"""create_app(settings) -> Starlette: routes, middleware, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlmodel import select
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from server import api, openapi, pages, sessions
from server.auth import Principal, Role, Tokens
from server.config import SHUTDOWN_STEP_SECS, Settings
from server.domain import Domain, Registry
from server.domains import default_domains
from server.errors import LivewallError
from server.faults import internal_error_handler
from server.headers import HeaderPolicy, SecurityHeaders
from server.httputil import livewall_error_handler
from server.metrics import Metrics
from server.realtime.backends import backend_from_url
from server.realtime.dispatch import Handler
from server.realtime.endpoint import RealtimeEndpoint
from server.realtime.gcpolicy import GC_LOOK_SECS, GcPolicy
from server.realtime.hub import Hub
from server.realtime.limits import Limiter
from server.realtime.protocol import Close
from server.rooms import actions, snapshot
from server.sandbox import Sandbox
from server.services import Services
from server.storage import Database
from server.web import web_root


async def healthz(_request: Request) -> Response:
    """Liveness: the process answers."""
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    """Readiness: the database and the hub backend answer."""
    services: Services = request.app.state.services
    checks: dict[str, bool] = {}
    try:
        async with services.db.session() as session:
            await session.exec(select(1))
        checks["database"] = True
    except Exception:
        checks["database"] = False
    checks["hub"] = await services.hub.backend.ping()
    ok = all(checks.values())
    return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)


async def metrics(request: Request) -> Response:
    services: Services = request.app.state.services
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _after_action(
    services: Services, principal: Principal, handler: Handler, data: dict[str, Any], result: Any
) -> None:
    """A console's action succeeded: the domains that keep a record of them are told (the audit log)."""
    if principal.role is not Role.HOST:
        return
    for hook in services.registry.console_action_hooks:
        hook(services, principal, handler.kind, handler.scope, data, result)


def _realtime_route(endpoint: RealtimeEndpoint[Services]) -> Callable[[WebSocket], Awaitable[None]]:
    async def realtime(websocket: WebSocket) -> None:
        if websocket.path_params["role"] not in {r.value for r in Role}:
            # Accept first so the client sees the documented close code (4004), not a refused handshake.
            await websocket.accept()
            await websocket.close(Close.NOT_FOUND, "no such endpoint")
            return
        await endpoint(websocket)

    return realtime


log = logging.getLogger("livewall.app")
# What each sandbox worker imports before its first job (its deadline counts no import time).
SANDBOX_PRELOAD = ("server.followup.render", "server.draws.jobs")


async def _watched_step(name: str, step: Awaitable[None], secs: float) -> None:
    """One step of shutting down, awaited to its end as before, but named in the log if it is still
    running after ``secs``: a restarting process that does not exit (and holds the port its
    replacement waits for) then says where it waits."""
    task = asyncio.ensure_future(step)
    done, _pending = await asyncio.wait({task}, timeout=secs)
    if not done:
        log.error("shutdown: %s has not stopped after %.0f s; still waiting for it", name, secs)
    await task


def create_app(settings: Settings | None = None, domains: Sequence[Domain] | None = None) -> Starlette:
    """The Livewall ASGI app made of ``domains`` (``server.domains.default_domains()`` when not
    given). Storage is migrated, the hub and the domains' engines started in the lifespan."""
    settings = (settings or Settings.from_env()).resolved()
    assert settings.database_url is not None and settings.secret_key is not None
    registry = Registry(default_domains() if domains is None else domains)
    metrics_ = Metrics()
    db = Database(settings.database_url)
    hub = Hub(
        backend_from_url(settings.redis_url, history=settings.history_events),
        metrics_,
        presence_tick_secs=settings.presence_tick_secs,
        coalesce_secs=settings.fanout_coalesce_secs,
        coalesce_min_conns=settings.fanout_coalesce_min_conns,
        coalesce_busy=settings.fanout_coalesce_busy,
        coalesce_starved_secs=settings.fanout_coalesce_starved_secs,
    )
    services = Services(
        settings,
        db,
        hub,
        Tokens(settings.secret_key),
        metrics_,
        # Worker processes (started when first needed) for message templates and draw recomputation.
        sandbox=Sandbox.from_settings(settings, preload=SANDBOX_PRELOAD),
        limiter=Limiter(hub.backend),
        registry=registry,
    )
    # Each domain's engines, built in the declared order (a later one may find an earlier one).
    specs = registry.engine_specs()
    for spec in specs:
        services.engines.add(spec.name, spec.build(services))
    running = [
        (spec.name, engine)
        for spec, (_name, engine) in zip(specs, services.engines.order, strict=True)
        if spec.runs is None or spec.runs(settings)
    ]

    async def on_presence(room_id: str, viewers: int) -> None:
        await actions.on_presence(services, room_id, viewers)

    hub.on_presence = on_presence
    endpoint = RealtimeEndpoint(
        sessions.authenticate,
        lambda services, principal: snapshot.build(services, principal),
        sessions.welcome,
        private=snapshot.private_parts,
        handlers=registry.handlers,
        after_action=_after_action if registry.console_action_hooks else None,
    )

    async def gc_loop() -> None:
        policy = GcPolicy()
        try:
            while True:
                await asyncio.sleep(GC_LOOK_SECS)
                policy.look(hub.opened, hub.closed)
        finally:
            policy.release()  # cancelled during a hold: full collections must not stay off

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await asyncio.to_thread(db.migrate)
        gc_task = asyncio.create_task(gc_loop(), name="livewall-gc") if settings.gc_freeze else None
        await hub.start()
        for _name, engine in running:
            await engine.start()
        try:
            yield
        finally:
            if gc_task is not None:
                gc_task.cancel()
            steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
                *((name, engine.stop) for name, engine in reversed(services.engines.order)),
                ("sandbox", services.sandbox.close),
                ("hub", hub.stop),
                ("database", db.dispose),
            ]
            for name, stop in steps:
                await _watched_step(name, stop(), SHUTDOWN_STEP_SECS)

    root = web_root()
    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        *openapi.routes,
        *api.routes,
        *registry.routes,
        *pages.routes,
        WebSocketRoute("/ws/{role}/{room_id}", _realtime_route(endpoint)),
        Mount("/static", StaticFiles(directory=root / "static"), name="static"),
        Mount("/screen-assets", StaticFiles(directory=root / "screen"), name="screen-assets"),
        Mount("/console-assets", StaticFiles(directory=root / "host_console"), name="console-assets"),
    ]
    header_policy = HeaderPolicy(settings)
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(SecurityHeaders, policy=header_policy)],
        # Exception: anything unhandled is answered with the documented error body (server/faults.py).
        exception_handlers={LivewallError: livewall_error_handler, Exception: internal_error_handler},
    )
    app.state.header_policy = header_policy
    app.state.services = services
    app.state.templates = pages.make_templates()
    return app
