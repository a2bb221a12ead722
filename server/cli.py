"""The ``livewall`` command: serve, demo, rooms, worker, migrate, verify-draw."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

import orjson

from server import __version__
from server.compat import UnsupportedDependency
from server.config import Settings

DEMO_PRODUCTS: list[dict[str, Any]] = [
    {
        "name": "Mulberry silk scarf 真丝围巾",
        "price_minor": 19900,
        "currency": "CNY",
        "stock": 50,
        "sku": "SCARF-01",
    },
    {
        "name": "Jasmine green tea 茉莉花茶 250g",
        "price_minor": 6800,
        "currency": "CNY",
        "stock": 200,
        "sku": "TEA-250",
    },
    {
        "name": "Hydrating serum 保湿精华 30ml",
        "price_minor": 25900,
        "currency": "CNY",
        "stock": 30,
        "sku": "SERUM-30",
    },
]


def _server_flags(parser: argparse.ArgumentParser, *, default_port: int = 8000) -> None:
    parser.add_argument("--host", help="interface to listen on (LIVEWALL_HOST; default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, help=f"port, 0 for any free one (LIVEWALL_PORT; default {default_port})"
    )
    parser.add_argument(
        "--public-url", help="base URL phones use, for links and the QR code (LIVEWALL_PUBLIC_URL)"
    )
    parser.add_argument("--log-level", help="debug, info, warning, error (LIVEWALL_LOG_LEVEL)")


def _storage_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", help="folder for the SQLite file and the secret key (LIVEWALL_DATA_DIR)"
    )
    parser.add_argument("--database-url", help="sqlite:///FILE or postgresql://... (LIVEWALL_DATABASE_URL)")
    parser.add_argument(
        "--redis-url", help="redis://HOST:PORT/DB to share rooms between processes (LIVEWALL_REDIS_URL)"
    )
    parser.add_argument(
        "--secret-key", help="signs cookies and links (LIVEWALL_SECRET_KEY; default: kept in data dir)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livewall",
        description="Livewall: live-commerce rooms shared by viewers' phones, "
        "the host console and the big screen.",
        epilog="Every flag also reads from a LIVEWALL_* environment variable; flags win.",
    )
    parser.add_argument("--version", action="version", version=f"livewall {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser("serve", help="run the server", description="Run the Livewall server.")
    _server_flags(serve)
    _storage_flags(serve)
    serve.add_argument(
        "--json",
        action="store_true",
        help='once listening, print {"url","host","port","api_base","healthz","readyz","metrics"} as one '
        "JSON line on standard output (the bound port when --port 0), then serve",
    )

    demo = sub.add_parser(
        "demo",
        help="create a demo room with sample products and serve it (embedded defaults)",
        description="Create a demo room with sample products, print its three links and serve it "
        "on embedded defaults (SQLite in the data dir, in-process hub).",
    )
    _server_flags(demo)
    _storage_flags(demo)
    demo.add_argument("--title", default="Livewall demo · 直播间演示", help="the demo room's title")
    demo.add_argument(
        "--json",
        action="store_true",
        help='print {"room","host_url","screen_url","viewer_url","api_base"} as one JSON line, then serve',
    )

    rooms = sub.add_parser(
        "rooms", help="create or list rooms, rotate a host key", description="Create or list rooms."
    )
    rooms_sub = rooms.add_subparsers(dest="rooms_command", metavar="ACTION", required=True)
    create = rooms_sub.add_parser("create", help="create a room and print its links")
    create.add_argument("--title", required=True, help="the room's title")
    create.add_argument("--public-url", help="base URL for the printed links (LIVEWALL_PUBLIC_URL)")
    create.add_argument("--json", action="store_true", help="print the links as one JSON object")
    _storage_flags(create)
    listing = rooms_sub.add_parser("list", help="list rooms")
    _storage_flags(listing)
    rotate = rooms_sub.add_parser(
        "rotate-key",
        help="replace a room's host key and print the new one",
        description="Replace the room's host key and print the new one (shown only now). Every host "
        "session signed in with the old key is logged out; running servers close their open consoles "
        "within seconds.",
    )
    rotate.add_argument("room", help="the room's id")
    rotate.add_argument("--public-url", help="base URL for the printed login link (LIVEWALL_PUBLIC_URL)")
    rotate.add_argument("--json", action="store_true", help='print {"room","host_key","host_url"} as JSON')
    _storage_flags(rotate)

    worker = sub.add_parser(
        "worker",
        help="deliver follow-up messages (journeys, campaigns) in a separate process",
        description="Run the follow-up loop without serving HTTP: route intent events into journeys, "
        "start campaigns and deliver messages. Any number of workers (and servers with "
        "LIVEWALL_FOLLOWUP_EMBEDDED=true) share the work through the database. Stops on SIGTERM/SIGINT.",
    )
    worker.add_argument("--public-url", help="base URL for links in messages (LIVEWALL_PUBLIC_URL)")
    worker.add_argument("--log-level", help="debug, info, warning, error (LIVEWALL_LOG_LEVEL)")
    _storage_flags(worker)

    migrate = sub.add_parser("migrate", help="apply database migrations and exit")
    _storage_flags(migrate)

    verify = sub.add_parser(
        "verify-draw",
        help="check a draw record: recompute its winners from the seed and the entrants",
        description="Check an exported draw record (GET /d/CODE/record.json): the seed matches its "
        "published SHA-256, the entrants match theirs, and the winners are what the seed gives. "
        "Exit status 0 if valid, 1 if not.",
    )
    verify.add_argument("file", help="the record (JSON); - for standard input")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    keys = ("host", "port", "public_url", "log_level", "data_dir", "database_url", "redis_url", "secret_key")
    return Settings.from_env(**{k: getattr(args, k, None) for k in keys}).resolved()


def room_links(base: str, room_id: str, host_key: str, screen_token: str) -> dict[str, str]:
    base = base.rstrip("/")
    return {
        "room": room_id,
        "host_url": f"{base}/host/{room_id}/login#key={host_key}",
        "screen_url": f"{base}/screen/{room_id}?k={screen_token}",
        "viewer_url": f"{base}/r/{room_id}",
        "api_base": f"{base}/api",
    }


def serve_links(base: str, host: str, port: int) -> dict[str, str | int]:
    """What `livewall serve --json` prints once it listens."""
    return {
        "url": base,
        "host": host,
        "port": port,
        "api_base": f"{base}/api",
        "healthz": f"{base}/healthz",
        "readyz": f"{base}/readyz",
        "metrics": f"{base}/metrics",
    }


async def _create_room(settings: Settings, title: str, products: Sequence[dict[str, Any]]) -> dict[str, str]:
    from server.auth import Tokens
    from server.rooms.actions import create_room
    from server.storage import Database

    assert settings.database_url and settings.secret_key
    db = Database(settings.database_url)
    await asyncio.to_thread(db.migrate)
    try:
        room, key = await create_room(db, title=title, products=products)
    finally:
        await db.dispose()
    screen = Tokens(settings.secret_key).screen(room.id, room.screen_key_gen)
    return {"host_key": key, "room": room.id, "screen": screen}


def _print_links(links: dict[str, str], host_key: str) -> None:
    print(f"Room {links['room']} is ready.")
    print(f"  Host console : {links['host_url']}")
    print(f"                 (host key: {host_key}; the link logs you in)")
    print(f"  Big screen   : {links['screen_url']}")
    print(f"  Viewers      : {links['viewer_url']}")
    print(f"  HTTP API     : {links['api_base']}")


def _uvicorn_config(app: Any, settings: Settings) -> Any:
    import uvicorn

    from server.realtime.inbound import InboundLimits
    from server.realtime.uvicorn_ws import websocket_fast_path, with_inbound_limits
    from server.uvicorn_http import http_protocol

    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        loop = "asyncio"
    inbound = InboundLimits(
        burst_frames=settings.inbound_burst,
        frames_per_sec=settings.inbound_rate_per_sec,
        burst_bytes=settings.inbound_burst_bytes,
        bytes_per_sec=settings.inbound_bytes_per_sec,
        flood_close_secs=settings.inbound_flood_close_secs,
    )
    http, http_extra = http_protocol(settings)  # head and body deadlines (server/uvicorn_http.py)
    return uvicorn.Config(
        # /ws/ connections skip Starlette's middleware and router frames (~4 KiB per connection).
        websocket_fast_path(app),
        host=settings.host,
        port=settings.port,
        loop=loop,
        http=http,
        # Inbound limits counted on raw frames, before parsing (server/realtime/inbound.py).
        ws=with_inbound_limits(inbound),
        ws_max_size=settings.max_frame_bytes,
        # Small JSON frames gain little from deflate and each compressor costs ~64 KiB per connection.
        ws_per_message_deflate=False,
        # A peer that went away is found by a ping left unanswered (20 s) after at most this long.
        ws_ping_interval=settings.ws_ping_secs,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=5,
        backlog=4096,
        **http_extra,
    )


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run the server on uvloop when it is installed (uvicorn[standard] brings it).

    uvicorn's own loop setting only applies when uvicorn creates the loop; here the loop is ours
    (the demo prints its links once the server listens), so it is chosen here. On this machine uvloop
    gives the fan-out about 1.5x the deliveries per second of the standard loop.
    """
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


async def _serve(settings: Settings, on_started: Any = None) -> None:
    import uvicorn

    from server.app import create_app
    from server.logs import configure

    configure(settings.log_level, json=settings.log_json)
    server = uvicorn.Server(_uvicorn_config(create_app(settings), settings))
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.02)
    if server.started and on_started is not None:
        port = server.servers[0].sockets[0].getsockname()[1]
        on_started(port)
    await task
    if not server.started:
        raise SystemExit(1)


def _base_for(settings: Settings, port: int) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host  # noqa: S104
    return f"http://{host}:{port}"


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)

    def started(port: int) -> None:
        url = _base_for(settings, port)
        logging.getLogger("livewall").info(f"Livewall serving on {url}", extra={"url": url})
        if args.json:
            sys.stdout.write(orjson.dumps(serve_links(url, settings.host, port)).decode() + "\n")
            sys.stdout.flush()

    _run(_serve(settings, started))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    settings = _settings(args)
    created = asyncio.run(_create_room(settings, args.title, DEMO_PRODUCTS))

    def started(port: int) -> None:
        links = room_links(_base_for(settings, port), created["room"], created["host_key"], created["screen"])
        if args.json:
            sys.stdout.write(orjson.dumps(links).decode() + "\n")
        else:
            _print_links(links, created["host_key"])
            print("Press Ctrl+C to stop.")
        sys.stdout.flush()

    with contextlib.suppress(KeyboardInterrupt):
        _run(_serve(settings, started))
    return 0


def cmd_rooms(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.rooms_command == "create":
        created = asyncio.run(_create_room(settings, args.title, ()))
        links = room_links(settings.base_url, created["room"], created["host_key"], created["screen"])
        if args.json:
            print(orjson.dumps(dict(links, host_key=created["host_key"])).decode())
        else:
            _print_links(links, created["host_key"])
        return 0
    if args.rooms_command == "rotate-key":
        return asyncio.run(_rotate_key(settings, args.room, as_json=args.json))
    return asyncio.run(_list_rooms(settings))


async def _rotate_key(settings: Settings, room_id: str, *, as_json: bool) -> int:
    from server.errors import NotFound
    from server.rooms.access import do_rotate_key
    from server.storage import Database

    assert settings.database_url
    db = Database(settings.database_url)
    await asyncio.to_thread(db.migrate)
    try:
        room, key = await do_rotate_key(db, room_id)
    except NotFound:
        print(f"livewall: no room {room_id!r} (see `livewall rooms list`)", file=sys.stderr)
        return 2
    finally:
        await db.dispose()
    url = f"{settings.base_url.rstrip('/')}/host/{room.id}/login#key={key}"
    if as_json:
        print(orjson.dumps({"room": room.id, "host_key": key, "host_url": url}).decode())
    else:
        print(f"Room {room.id} has a new host key: {key}")
        print(f"  Host console : {url}")
        print("Host sessions signed in with the old key are logged out.")
    return 0


async def _list_rooms(settings: Settings) -> int:
    from sqlmodel import col, select

    from server.storage import Database
    from server.storage.models import Room

    assert settings.database_url
    db = Database(settings.database_url)
    await asyncio.to_thread(db.migrate)
    async with db.session() as session:
        rooms = (await session.exec(select(Room).order_by(col(Room.created_ms)))).all()
    await db.dispose()
    for room in rooms:
        print(f"{room.id}\t{room.status}\tpeak {room.peak_viewers}\t{room.title}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _run(_work(settings))
    return 0


async def _work(settings: Settings) -> None:
    import gc
    import signal

    from server.followup.channels.registry import close_all, make_channels
    from server.followup.runner import SANDBOX_PRELOAD, Runner, host_notifier
    from server.logs import configure
    from server.metrics import Metrics
    from server.realtime.backends import backend_from_url
    from server.realtime.hub import Hub
    from server.realtime.protocol import direct_frame
    from server.sandbox import Sandbox
    from server.storage import Database

    configure(settings.log_level, json=settings.log_json)
    assert settings.database_url
    db = Database(settings.database_url)
    await asyncio.to_thread(db.migrate)
    # With Redis, campaign progress reaches the hosts' consoles through the servers' shared hub.
    hub = Hub(backend_from_url(settings.redis_url, history=settings.history_events), Metrics())
    await hub.start()

    channels = make_channels(settings)

    async def show_inapp(room_id: str, viewer_ids: list[str], item: dict[str, Any]) -> None:
        for viewer_id in viewer_ids:  # reaches the servers' phones through Redis
            await hub.send_private(room_id, viewer_id, direct_frame("inbox", item))

    metrics = Metrics()
    # Templates render in worker processes under the same limits as in the server.
    sandbox = Sandbox.from_settings(settings, preload=SANDBOX_PRELOAD)
    runner = Runner(
        db,
        settings,
        channels,
        on_change=host_notifier(db, hub),
        on_inapp=show_inapp,
        metrics=metrics,
        sandbox=sandbox,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await runner.start()
    # What importing and starting made lives as long as the process: out of the collector's sight,
    # a full collection no longer stops the loop for tens of milliseconds (in the middle of sends).
    gc.freeze()
    logging.getLogger("livewall").info("follow-up worker running")
    try:
        await stop.wait()
    finally:
        await runner.stop()
        await sandbox.close()
        await close_all(channels)
        await hub.stop()
        await db.dispose()


def cmd_migrate(args: argparse.Namespace) -> int:
    from server.storage.db import migrate

    settings = _settings(args)
    assert settings.database_url
    migrate(settings.database_url)
    print("database is at the newest schema")
    return 0


def cmd_verify_draw(args: argparse.Namespace) -> int:
    import json

    from server.draws.rules import verify_record

    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
        record = json.loads(text)
    except (OSError, ValueError) as exc:
        print(f"livewall: cannot read the record: {exc}", file=sys.stderr)
        return 2
    if not isinstance(record, dict):
        print("livewall: a draw record is a JSON object", file=sys.stderr)
        return 2
    verdict = verify_record(record)
    name = record.get("draw", "?")
    if verdict.valid:
        print(f"draw {name}: VALID. The seed matches its commitment, the entrants match theirs, and")
        print(f"the {len(verdict.winners)} winner(s) are exactly what the seed gives:")
        for place in sorted(verdict.winners, key=lambda p: p.place):
            print(f"  place {place.place} (tier {place.tier}): entrant {place.entrant}")
        return 0
    print(f"draw {name}: NOT VALID")
    for problem in verdict.problems:
        print(f"  - {problem}")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        handler = {
            "serve": cmd_serve,
            "demo": cmd_demo,
            "rooms": cmd_rooms,
            "migrate": cmd_migrate,
            "worker": cmd_worker,
            "verify-draw": cmd_verify_draw,
        }[args.command]
        return handler(args)
    except (ValueError, UnsupportedDependency) as exc:
        print(f"livewall: {exc}", file=sys.stderr)
        return 2
