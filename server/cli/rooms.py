"""``livewall rooms create|list|rotate-key``, and the room links that ``demo`` prints too."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

import orjson

from server.cli.parser import settings_from
from server.config import Settings
from server.rooms.wire import ProductSeed


def room_links(base: str, room_id: str, host_key: str, screen_token: str) -> dict[str, str]:
    """The room's three links (host console, big screen, viewers) and the API's base."""
    base = base.rstrip("/")
    return {
        "room": room_id,
        "host_url": f"{base}/host/{room_id}/login#key={host_key}",
        "screen_url": f"{base}/screen/{room_id}?k={screen_token}",
        "viewer_url": f"{base}/r/{room_id}",
        "api_base": f"{base}/api",
    }


async def create_room(settings: Settings, title: str, products: Sequence[ProductSeed]) -> dict[str, str]:
    """Create a room (migrating the database first); its id, host key and screen token."""
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


def print_links(links: dict[str, str], host_key: str) -> None:
    """The links for a person to read."""
    print(f"Room {links['room']} is ready.")
    print(f"  Host console : {links['host_url']}")
    print(f"                 (host key: {host_key}; the link logs you in)")
    print(f"  Big screen   : {links['screen_url']}")
    print(f"  Viewers      : {links['viewer_url']}")
    print(f"  HTTP API     : {links['api_base']}")


def cmd_rooms(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if args.rooms_command == "create":
        created = asyncio.run(create_room(settings, args.title, ()))
        links = room_links(settings.base_url, created["room"], created["host_key"], created["screen"])
        if args.json:
            print(orjson.dumps(dict(links, host_key=created["host_key"])).decode())
        else:
            print_links(links, created["host_key"])
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
