"""``livewall serve`` and ``livewall demo``: the server on uvicorn (Livewall's WebSocket and HTTP
protocols, its limits) and uvloop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Coroutine
from typing import Any

import orjson

from server.cli.parser import settings_from
from server.cli.rooms import create_room, print_links, room_links
from server.config import Settings
from server.rooms.wire import ProductSeed

DEMO_PRODUCTS: list[ProductSeed] = [
    ProductSeed(
        name="Mulberry silk scarf 真丝围巾", price_minor=19900, currency="CNY", stock=50, sku="SCARF-01"
    ),
    ProductSeed(
        name="Jasmine green tea 茉莉花茶 250g", price_minor=6800, currency="CNY", stock=200, sku="TEA-250"
    ),
    ProductSeed(
        name="Hydrating serum 保湿精华 30ml", price_minor=25900, currency="CNY", stock=30, sku="SERUM-30"
    ),
]


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


def uvicorn_config(app: Any, settings: Settings) -> Any:
    """uvicorn's configuration with Livewall's WebSocket and HTTP protocols and limits."""
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


def run(main: Coroutine[Any, Any, None]) -> None:
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


async def serve(settings: Settings, on_started: Any = None) -> None:
    """Serve the app until stopped; ``on_started(port)`` once it listens."""
    import uvicorn

    from server.app import create_app
    from server.logs import configure

    configure(settings.log_level, json=settings.log_json)
    server = uvicorn.Server(uvicorn_config(create_app(settings), settings))
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.02)
    if server.started and on_started is not None:
        port = server.servers[0].sockets[0].getsockname()[1]
        on_started(port)
    await task
    if not server.started:
        raise SystemExit(1)


def base_for(settings: Settings, port: int) -> str:
    """The base URL phones use: the public URL, else this host and port."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host  # noqa: S104
    return f"http://{host}:{port}"


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_from(args)

    def started(port: int) -> None:
        url = base_for(settings, port)
        logging.getLogger("livewall").info(f"Livewall serving on {url}", extra={"url": url})
        if args.json:
            sys.stdout.write(orjson.dumps(serve_links(url, settings.host, port)).decode() + "\n")
            sys.stdout.flush()

    run(serve(settings, started))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    created = asyncio.run(create_room(settings, args.title, DEMO_PRODUCTS))

    def started(port: int) -> None:
        links = room_links(base_for(settings, port), created["room"], created["host_key"], created["screen"])
        if args.json:
            sys.stdout.write(orjson.dumps(links).decode() + "\n")
        else:
            print_links(links, created["host_key"])
            print("Press Ctrl+C to stop.")
        sys.stdout.flush()

    with contextlib.suppress(KeyboardInterrupt):
        run(serve(settings, started))
    return 0
