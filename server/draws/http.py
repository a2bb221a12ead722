"""HTTP routes of draws: the public verification page and record, the host's CSV export."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from sqlmodel import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.auth import Scope
from server.draws import jobs, rules, store, wire
from server.errors import NotFound
from server.rooms.identity import require_host
from server.sandbox import SandboxError
from server.services import Services
from server.storage import Database
from server.storage.batch import per_database
from server.storage.models import Draw
from server.templating import render
from server.ttlcache import TtlCache

log = logging.getLogger("livewall.draws")


async def _by_code(request: Request) -> Draw:
    services: Services = request.app.state.services
    code = request.path_params["code"]
    if not isinstance(code, str) or len(code) > 16:
        raise NotFound("no such draw")
    async with services.db.session() as session:
        d = (await session.exec(select(Draw).where(Draw.code == code))).first()
    if d is None:
        raise NotFound("no such draw")
    return d


async def record_json(request: Request) -> Response:
    """GET /d/{code}/record.json: the draw record anyone can check with `livewall verify-draw`."""
    d = await _by_code(request)
    data = await _record(request.app.state.services, d)
    filename = f"livewall-draw-{d.code}.json"
    headers = {"content-disposition": f'inline; filename="{filename}"', "cache-control": "no-store"}
    # orjson: a tenth of json.dumps's time for a big record (both hold the GIL: no thread would help).
    return Response(orjson.dumps(data), media_type="application/json", headers=headers)


# The page and the record are public and every phone links to them: a crowd opening them at once
# shares one read (every entrant, masked and sorted: a fifth of a second of Python for 100,000) and
# one recomputation (in a sandbox worker process) per this period.
PAGE_CACHE_SECS = 5.0
PageKey = tuple[str, str, str]  # (code, status, absent places)
Page = tuple[dict[str, Any], rules.Verdict | None, bool]


def _records(db: Database) -> TtlCache[PageKey, dict[str, Any]]:
    return per_database(db, "draw-records", lambda: TtlCache(PAGE_CACHE_SECS, max_entries=1000))


def _pages(db: Database) -> TtlCache[PageKey, Page]:
    return per_database(db, "draw-pages", lambda: TtlCache(PAGE_CACHE_SECS, max_entries=1000))


async def verify_page(request: Request) -> Response:
    """GET /d/{code}: the public verification page; the server recomputes the winners from the record."""
    d = await _by_code(request)
    services: Services = request.app.state.services

    async def load() -> Page:
        data = await _record(services, d)
        if d.status != "drawn":
            return data, None, True
        # Every chance of every entrant is hashed again: in a worker process, never on the event
        # loop (nor in a thread holding its GIL). Should that fail, the page says the record was not
        # checked (never "not valid"), and a crowd does not retry it before the cache period ends.
        try:
            return data, await jobs.verify(services.sandbox, data), True
        except SandboxError:
            log.warning("draw %s: the record could not be recomputed", d.code, exc_info=True)
            return data, None, False

    data, verdict, checked = await _pages(services.db).get((d.code, d.status, d.absent), load)
    return render(request, "verify.html", record=data, verdict=verdict, unchecked=not checked)


async def _record(services: Services, d: Draw) -> dict[str, Any]:
    async def load() -> dict[str, Any]:
        return (await store.record(services.db, d)).shape()

    return await _records(services.db).get((d.code, d.status, d.absent), load)


async def export_csv(request: Request) -> Response:
    """GET /api/rooms/{room}/draws.csv (host): every winner of every draw with claim status."""
    principal = await require_host(request, Scope.REPORTS, cookie=True, csrf=False)
    views = await store.history(request.app.state.services.db, principal.room_id)
    draws = [view.shape(host=True) for view in views]
    # Up to 50 draws of 500 winners: built in a thread, which lets the event loop in every few ms.
    body = "\ufeff" + await asyncio.to_thread(wire.export_csv, draws)
    headers = {
        "content-disposition": f'attachment; filename="livewall-{principal.room_id}-draws.csv"',
        "cache-control": "no-store",
    }
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)


routes = [
    Route("/d/{code}", verify_page, methods=["GET"]),
    Route("/d/{code}/record.json", record_json, methods=["GET"]),
    Route("/api/rooms/{room_id}/draws.csv", export_csv, methods=["GET"]),
]
