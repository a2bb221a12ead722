"""HTTP routes of draws: the public verification page and record, the host's CSV export."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlmodel import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.api import host_principal
from server.draws import actions, rules
from server.errors import NotFound
from server.pages import render
from server.services import Services
from server.storage.models import Draw
from server.ttlcache import TtlCache


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


async def record_json(request: Request) -> JSONResponse:
    """GET /d/{code}/record.json: the draw record anyone can check with `livewall verify-draw`."""
    d = await _by_code(request)
    data = await actions.record(request.app.state.services.db, d)
    filename = f"livewall-draw-{d.code}.json"
    return JSONResponse(
        data, headers={"content-disposition": f'inline; filename="{filename}"', "cache-control": "no-store"}
    )


# The page is public and every phone links to it: a crowd opening it at once shares one read and one
# recomputation (off the event loop) per this period.
PAGE_CACHE_SECS = 5.0
_pages: TtlCache[tuple[int, str, str, str], tuple[dict[str, Any], rules.Verdict | None]] = TtlCache(
    PAGE_CACHE_SECS, max_entries=1000
)


async def verify_page(request: Request) -> Response:
    """GET /d/{code}: the public verification page; the server recomputes the winners from the record."""
    d = await _by_code(request)
    db = request.app.state.services.db

    async def load() -> tuple[dict[str, Any], rules.Verdict | None]:
        data = await actions.record(db, d)
        verdict = await asyncio.to_thread(rules.verify_record, data) if d.status == "drawn" else None
        return data, verdict

    data, verdict = await _pages.get((id(db), d.code, d.status, d.absent), load)
    return render(request, "verify.html", record=data, verdict=verdict)


async def export_csv(request: Request) -> Response:
    """GET /api/rooms/{room}/draws.csv (host): every winner of every draw with claim status."""
    principal = await host_principal(request, cookie=True)
    draws = await actions.history(request.app.state.services.db, principal.room_id)
    body = "\ufeff" + actions.export_csv(draws)
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
