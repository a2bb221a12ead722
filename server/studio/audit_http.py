"""The audit log's pages (docs/accounts.md, "Audit log"): who did what, when, from which session.

An owner (``org:admin``) reads the entries of their organisations, newest first, a page at a time
("older" pages by id), filtered by organisation, room, actor, category, action text and dates; the
same filters export the whole matching range as CSV, streamed a page of rows at a time. Anyone
else is refused (403): the log says who did what in every room.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from server.accounts.audit import CATEGORIES, AuditLog
from server.accounts.identity import StudioUser, studio_user
from server.auth import MEMBER_SCOPES, Scope
from server.errors import Forbidden, Unauthorized
from server.services import Services
from server.storage.accounts import Account, AuditEntry, Membership, Organisation
from server.storage.models import Room
from server.templating import render

PAGE_ROWS = 100
CSV_PAGE_ROWS = 1000
# The export waits this long at most for entries still queued (a busy server is never idle).
FLUSH_WAIT_SECS = 1.0
SUMMARY_CHARS = 120
# A cell a spreadsheet would run as a formula starts with one of these: it is written as text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
KEY_ACTORS = ("host key", "cli")


@dataclass(frozen=True, slots=True)
class Filters:
    """What the reader asked for (each None: any)."""

    org: str | None = None
    room: str | None = None
    actor: str | None = None  # an account id, or a label of KEY_ACTORS
    category: str | None = None
    action: str | None = None  # text the action's name contains
    start: str | None = None  # YYYY-MM-DD (from, in the reader's time zone)
    end: str | None = None  # YYYY-MM-DD (to, inclusive)
    tz_minutes: int = 0  # the reader's offset east of UTC (the page's script fills it in)
    before: int | None = None  # entries older than this id

    def query(self, **changes: Any) -> str:
        """The query string of these filters (with ``changes``), for links and the export."""
        values = {
            "org": self.org,
            "room": self.room,
            "actor": self.actor,
            "category": self.category,
            "action": self.action,
            "from": self.start,
            "to": self.end,
            "tz": str(self.tz_minutes) if self.tz_minutes else None,
            "before": str(self.before) if self.before else None,
            **changes,
        }
        return urlencode({k: v for k, v in values.items() if v})


def _text(params: Mapping[str, str], key: str, limit: int = 64) -> str | None:
    value = params.get(key, "").strip()
    return value[:limit] or None


def _day(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        return None


def parse_filters(params: Mapping[str, str]) -> Filters:
    """The filters of a query string; what does not parse is left out, never an error."""
    tz = params.get("tz", "0")
    before = params.get("before", "")
    category = _text(params, "category")
    return Filters(
        org=_text(params, "org", 32),
        room=_text(params, "room", 32),
        actor=_text(params, "actor", 32),
        category=category if category in CATEGORIES else None,
        action=_text(params, "action"),
        start=_day(_text(params, "from", 10)),
        end=_day(_text(params, "to", 10)),
        tz_minutes=max(-16 * 60, min(16 * 60, int(tz))) if tz.lstrip("-").isdigit() else 0,
        before=int(before) if before.isdigit() and len(before) < 19 else None,
    )


def _day_ms(day: str, tz_minutes: int) -> int:
    midnight = datetime.fromisoformat(day).replace(tzinfo=UTC) - timedelta(minutes=tz_minutes)
    return int(midnight.timestamp() * 1000)


def owned_orgs(user: StudioUser) -> list[str]:
    """The organisations whose log this person may read (where their role holds ``org:admin``)."""
    return sorted(org for org, role in user.roles.items() if Scope.ORG_ADMIN in MEMBER_SCOPES[role])


def conditions(filters: Filters, orgs: Sequence[str]) -> list[Any]:
    """The WHERE of a filtered read, always within ``orgs``."""
    wanted = [filters.org] if filters.org in orgs else list(orgs)
    where: list[Any] = [col(AuditEntry.org_id).in_(wanted)]
    if filters.room:
        where.append(col(AuditEntry.room_id) == filters.room)
    if filters.actor in KEY_ACTORS:
        where += [col(AuditEntry.account_id).is_(None), col(AuditEntry.actor) == filters.actor]
    elif filters.actor:
        where.append(col(AuditEntry.account_id) == filters.actor)
    if filters.category:
        where.append(col(AuditEntry.category) == filters.category)
    if filters.action:
        escaped = filters.action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(col(AuditEntry.action).ilike(f"%{escaped}%", escape="\\"))
    if filters.start:
        where.append(col(AuditEntry.at_ms) >= _day_ms(filters.start, filters.tz_minutes))
    if filters.end:
        next_day = (date.fromisoformat(filters.end) + timedelta(days=1)).isoformat()
        where.append(col(AuditEntry.at_ms) < _day_ms(next_day, filters.tz_minutes))
    return where


async def read_page(
    services: Services, orgs: Sequence[str], filters: Filters, limit: int = PAGE_ROWS
) -> list[AuditEntry]:
    """Up to ``limit`` matching entries older than ``filters.before``, newest first."""
    where = conditions(filters, orgs)
    if filters.before is not None:
        where.append(col(AuditEntry.id) < filters.before)
    async with services.db.session() as session:
        rows = await session.exec(
            select(AuditEntry).where(*where).order_by(col(AuditEntry.id).desc()).limit(limit)
        )
        return list(rows.all())


async def _reader(request: Request) -> tuple[Services, StudioUser, list[str]]:
    services: Services = request.app.state.services
    user = await studio_user(services, request)
    orgs = owned_orgs(user)
    if user.account.admin:  # a server admin is treated as an owner everywhere
        async with services.db.session() as session:
            orgs = sorted((await session.exec(select(Organisation.id))).all())
    if not orgs:
        raise Forbidden("only an organisation's owner may read its audit log")
    return services, user, orgs


async def _flushed(services: Services) -> None:
    """What was done a moment ago is on the page (the log is written in batches)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(services.engines.get(AuditLog).flushed(), FLUSH_WAIT_SECS)


def summary(detail: str) -> str:
    """The detail's JSON as one short line: ``key=value`` pairs."""
    try:
        data = orjson.loads(detail)
    except orjson.JSONDecodeError:
        return detail[:SUMMARY_CHARS]
    if not isinstance(data, dict):
        return str(data)[:SUMMARY_CHARS]
    parts = []
    for key, value in data.items():
        shown = value if isinstance(value, str) else orjson.dumps(value).decode()
        parts.append(f"{key}={shown}")
    text = ", ".join(parts)
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


async def _names(services: Services, orgs: Sequence[str], entries: Sequence[AuditEntry]) -> dict[str, Any]:
    """Room titles of the entries, and the organisations' names, rooms and members for the filters."""
    async with services.db.session() as session:
        org_rows = (await session.exec(select(Organisation).where(col(Organisation.id).in_(orgs)))).all()
        rooms = (
            await session.exec(
                select(Room.id, Room.title).where(col(Room.org_id).in_(orgs)).order_by(col(Room.title))
            )
        ).all()
        members = (
            await session.exec(
                select(Account.id, Account.email)
                .join(Membership, col(Membership.account_id) == col(Account.id))
                .where(col(Membership.org_id).in_(orgs))
                .distinct()
                .order_by(col(Account.email))
            )
        ).all()
        titles = dict(rooms)
        missing = sorted({e.room_id for e in entries if e.room_id and e.room_id not in titles})
        if missing:  # a room of another organisation once (moved) keeps its title here
            titles.update(
                (await session.exec(select(Room.id, Room.title).where(col(Room.id).in_(missing)))).all()
            )
    return {
        "orgs": [(o.id, o.name) for o in org_rows],
        "rooms": list(rooms),
        "members": list(members),
        "titles": titles,
    }


async def audit_page(request: Request) -> Response:
    """GET /studio/audit: the log of the reader's organisations, 100 entries a page."""
    try:
        services, user, orgs = await _reader(request)
    except Unauthorized:
        target = "/studio/signin?next=/studio/audit"
        body = f'<!doctype html><a href="{target}">/studio/signin</a>\n'
        return HTMLResponse(body, status_code=303, headers={"location": target})
    except Forbidden as exc:
        return render(request, "error.html", status_code=403, code=exc.code, message=exc.message)
    filters = parse_filters(request.query_params)
    await _flushed(services)
    entries = await read_page(services, orgs, filters, PAGE_ROWS + 1)
    older = entries[PAGE_ROWS - 1].id if len(entries) > PAGE_ROWS else None
    entries = entries[:PAGE_ROWS]
    names = await _names(services, orgs, entries)
    rows = [
        {
            "id": e.id,
            "at": datetime.fromtimestamp(e.at_ms / 1000, UTC).isoformat(timespec="seconds"),
            "at_ms": e.at_ms,
            "actor": e.actor,
            "session": (e.session_id or "")[:8],
            "room": names["titles"].get(e.room_id or "", e.room_id or ""),
            "room_id": e.room_id,
            "category": e.category,
            "action": e.action,
            "target": e.target or "",
            "detail": summary(e.detail),
        }
        for e in entries
    ]
    return render(
        request,
        "studio/audit.html",
        user=user,
        filters=filters,
        rows=rows,
        categories=CATEGORIES,
        key_actors=KEY_ACTORS,
        older=filters.query(before=str(older)) if older is not None else None,
        newest=filters.query(before=None) if filters.before else None,
        export=filters.query(before=None),
        **names,
    )


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


CSV_HEADER = (
    "id",
    "time_utc",
    "organisation",
    "room_id",
    "room",
    "actor",
    "account_id",
    "session_id",
    "category",
    "action",
    "target",
    "detail",
)


async def _csv_rows(services: Services, orgs: Sequence[str], filters: Filters) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")  # the BOM: spreadsheet programs then read the file as UTF-8
    writer.writerow(CSV_HEADER)
    titles: dict[str, str] = {}
    page = replace(filters, before=None)
    while True:
        entries = await read_page(services, orgs, page, CSV_PAGE_ROWS)
        wanted = sorted({e.room_id for e in entries if e.room_id and e.room_id not in titles})
        if wanted:
            async with services.db.session() as session:
                titles.update(
                    (await session.exec(select(Room.id, Room.title).where(col(Room.id).in_(wanted)))).all()
                )
        for e in entries:
            at = datetime.fromtimestamp(e.at_ms / 1000, UTC).isoformat(timespec="milliseconds")
            writer.writerow(
                [
                    _cell(v)
                    for v in (
                        e.id,
                        at,
                        e.org_id,
                        e.room_id,
                        titles.get(e.room_id or ""),
                        e.actor,
                        e.account_id,
                        e.session_id,
                        e.category,
                        e.action,
                        e.target,
                        e.detail,
                    )
                ]
            )
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
        if len(entries) < CSV_PAGE_ROWS:
            return
        page = replace(page, before=entries[-1].id)


async def audit_csv(request: Request) -> Response:
    """GET /studio/audit.csv: every entry the filters match, as CSV (with a BOM), newest first."""
    services, _user, orgs = await _reader(request)
    filters = parse_filters(request.query_params)
    await _flushed(services)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    return StreamingResponse(
        _csv_rows(services, orgs, filters),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="livewall-audit-{stamp}.csv"',
            "cache-control": "no-store",
        },
    )


routes = [
    Route("/studio/audit", audit_page, methods=["GET"]),
    Route("/studio/audit.csv", audit_csv, methods=["GET"]),
]
