"""create_app(settings) -> Starlette: routes, middleware, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlmodel import select
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

# Importing the domain modules registers their actions, events and snapshot parts.
import server.discounts.snapshot
import server.draws.snapshot
import server.followup.snapshot
import server.questions.actions
import server.questions.snapshot
import server.rooms.actions
from server import api, openapi, pages, sessions
from server.auth import Role, Tokens
from server.config import SHUTDOWN_STEP_SECS, Settings
from server.discounts.actions import Engine
from server.discounts.stock import make_stock
from server.draws import http as draws_http
from server.draws.actions import DrawEngine
from server.errors import LivewallError
from server.faults import internal_error_handler
from server.followup import console as followup_console
from server.followup import http as followup_http
from server.followup.channels.registry import close_all, make_channels
from server.followup.runner import Runner, host_notifier
from server.headers import HeaderPolicy, SecurityHeaders
from server.httputil import livewall_error_handler
from server.intents.log import SalesBoard
from server.metrics import Metrics
from server.products import http as products_http
from server.questions.feed import Feed
from server.realtime.backends import backend_from_url
from server.realtime.endpoint import RealtimeEndpoint
from server.realtime.gcpolicy import GC_LOOK_SECS, GcPolicy
from server.realtime.hub import Hub
from server.realtime.limits import Limiter
from server.realtime.protocol import Close, direct_frame
from server.rooms import actions, snapshot
from server.rooms import http as rooms_http
from server.rooms.access import Access
from server.sandbox import Sandbox
from server.services import Services
from server.storage import Database
from server.throttle import failures_from_url
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


_endpoint = RealtimeEndpoint(
    sessions.authenticate,
    lambda services, principal: snapshot.build(services, principal),
    sessions.welcome,
    private=snapshot.private_parts,
)


async def realtime(websocket: WebSocket) -> None:
    if websocket.path_params["role"] not in {r.value for r in Role}:
        # Accept first so the client sees the documented close code (4004), not a refused handshake.
        await websocket.accept()
        await websocket.close(Close.NOT_FOUND, "no such endpoint")
        return
    await _endpoint(websocket)


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


def create_app(settings: Settings | None = None) -> Starlette:
    """The Livewall ASGI app. Storage is migrated and the hub started in the lifespan."""
    settings = (settings or Settings.from_env()).resolved()
    assert settings.database_url is not None and settings.secret_key is not None
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
    services = Services(settings, db, hub, Tokens(settings.secret_key), metrics_)
    feed = Feed(hub, lambda room_id: server.questions.actions.top_questions(db, room_id))
    services.feed = feed
    services.limiter = Limiter(hub.backend)
    access = services.access = Access(db, hub, failures_from_url(settings.redis_url))
    engine = services.discounts = Engine(db, hub, make_stock(db, hub.backend))
    board = services.board = SalesBoard(db, hub)
    engine.board = board
    draws = services.draws = DrawEngine(db, hub)
    # Worker processes (started when first needed) for message templates and draw recomputation.
    sandbox = services.sandbox = Sandbox.from_settings(settings, preload=SANDBOX_PRELOAD)
    channels = make_channels(settings)

    async def show_inapp(room_id: str, viewer_ids: list[str], item: dict[str, object]) -> None:
        frame = direct_frame("inbox", item)
        for viewer_id in viewer_ids:
            await hub.send_private(room_id, viewer_id, frame)

    followup = services.followup = Runner(
        db,
        settings,
        channels,
        on_change=host_notifier(db, hub),
        on_inapp=show_inapp,
        rushing=engine.rushing,
        metrics=metrics_,
        sandbox=sandbox,
    )
    board.on_record = followup.wake

    async def on_presence(room_id: str, viewers: int) -> None:
        await actions.on_presence(services, room_id, viewers)

    hub.on_presence = on_presence

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
        await feed.start()
        await engine.start()
        await board.start()
        await draws.start()
        await access.start()
        if settings.followup_embedded:
            await followup.start()
        try:
            yield
        finally:
            if gc_task is not None:
                gc_task.cancel()
            steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
                ("follow-up runner", followup.stop),
                ("channels", lambda: close_all(channels)),
                ("draws", draws.stop),
                ("access", access.stop),
                ("sandbox", sandbox.close),
                ("sales board", board.stop),
                ("discount engine", engine.stop),
                ("feed", feed.stop),
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
        *products_http.routes,
        *draws_http.routes,
        *rooms_http.routes,
        *followup_http.routes,
        *followup_console.routes,
        *pages.routes,
        WebSocketRoute("/ws/{role}/{room_id}", realtime),
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
