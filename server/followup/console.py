"""The host console's follow-up API, its journeys and templates: the overview the Follow-up tab shows,
settings, journeys (with pause and resume), templates (with preview); campaigns, the message log and
do-not-contact are in outreach.py.

Every route needs the room's host token (``Authorization: Bearer``) or the console's session;
docs/api.md lists them.
"""

from __future__ import annotations

import orjson
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server import netguard
from server.errors import NotFound
from server.followup import reach, rules, runner, templates, wire
from server.followup.campaigns import segment_people
from server.followup.edge import audit, host_room
from server.followup.journeys import release_held
from server.followup.links import webhook_secret
from server.followup.runner import Runner
from server.followup.store import ensure_room
from server.httputil import json_body
from server.services import Services
from server.storage import now_ms
from server.storage.followup import Journey, Message, PausedEntry, Template
from server.storage.models import IntentEvent, Viewer

# Entries skipped while a journey was paused: the latest this many are listed with the journey.
SKIPPED_SHOWN = 10
# A sent message moves on to delivered, opened, clicked: counted by the times it reached each.
PROGRESS = ("sent", "delivered", "opened", "clicked")


async def paused_entries(session: AsyncSession, journey_ids: list[int]) -> dict[int, wire.Json]:
    """Per journey: its entries that arrived while it was paused, counted by what became of them, and
    the latest skipped ones (when, which event, who)."""
    out = {j: wire.no_entries() for j in journey_ids}
    if not journey_ids:
        return out
    counts = await session.exec(
        select(PausedEntry.journey_id, PausedEntry.status, func.count())
        .where(col(PausedEntry.journey_id).in_(journey_ids))
        .group_by(col(PausedEntry.journey_id), col(PausedEntry.status))
    )
    for journey_id, status, n in counts.all():
        out[journey_id][status] = int(n)
    for journey_id in journey_ids:
        if not out[journey_id]["skipped"]:
            continue
        rows = await session.exec(
            select(PausedEntry, IntentEvent, Viewer.display_name)
            .join(IntentEvent, col(IntentEvent.id) == col(PausedEntry.event_id))
            .join(Viewer, col(Viewer.id) == col(PausedEntry.viewer_id), isouter=True)
            .where(PausedEntry.journey_id == journey_id, PausedEntry.status == "skipped")
            .order_by(col(PausedEntry.id).desc())
            .limit(SKIPPED_SHOWN)
        )
        out[journey_id]["skipped_recent"] = [
            wire.skipped_shape(entry, event, name) for entry, event, name in rows.all()
        ]
    return out


async def funnel(services: Services, room_id: str) -> dict[str, dict[str, dict[str, int]]]:
    """Per journey and step: messages by status, plus opened, clicked and converted counts."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    async with services.db.session() as session:
        rows = await session.exec(
            select(  # type: ignore[call-overload]
                Message.journey_id,
                Message.step,
                Message.status,
                func.count(),
                func.count(col(Message.sent_ms)),
                func.count(col(Message.delivered_ms)),
                func.count(col(Message.opened_ms)),
                func.count(col(Message.clicked_ms)),
                func.count(col(Message.converted_ms)),
            )
            .where(Message.room_id == room_id, col(Message.journey_id).is_not(None))
            .group_by(col(Message.journey_id), col(Message.step), col(Message.status))
        )
        for journey_id, step, status, n, sent, delivered, opened, clicked, converted in rows.all():
            cell = out.setdefault(str(journey_id), {}).setdefault(
                str(step), {"sent": 0, "delivered": 0, "opened": 0, "clicked": 0, "converted": 0}
            )
            if status not in PROGRESS:  # those are counted by their timestamps below
                cell[status] = cell.get(status, 0) + int(n)
            cell["sent"] += int(sent)
            cell["delivered"] += int(delivered)
            cell["opened"] += int(opened)
            cell["clicked"] += int(clicked)
            cell["converted"] += int(converted)
    return out


async def overview(request: Request) -> JSONResponse:
    """GET /api/rooms/{room}/followup: everything the Follow-up tab shows."""
    services, room_id = await host_room(request)
    async with services.db.session() as session:
        settings = await ensure_room(session, room_id)
        await session.commit()
        journeys = (
            await session.exec(select(Journey).where(Journey.room_id == room_id).order_by(col(Journey.id)))
        ).all()
        tpls = (
            await session.exec(
                select(Template)
                .where(Template.room_id == room_id)
                .order_by(col(Template.key), col(Template.locale))
            )
        ).all()
        segments = {s: len(await segment_people(session, room_id, s)) for s in rules.SEGMENTS}
        entries = await paused_entries(session, [j.id for j in journeys if j.id is not None])
    return JSONResponse(
        {
            "settings": wire.settings_shape(settings),
            "journeys": [wire.journey_shape(j, entries.get(j.id or 0)) for j in journeys],
            "templates": [wire.template_shape(t) for t in tpls],
            "funnel": await funnel(services, room_id),
            "segments": segments,
            # What the delivering processes (this one, workers) have configured: reach.py.
            "channels": sorted(await reach.configured(services.db, fresh=True)),
            "events": list(rules.EVENT_KINDS),
            "webhook_secret": webhook_secret(services.settings.secret_key or "", room_id),
            **await runner.summary(services.db, room_id),
        }
    )


async def save_settings(request: Request) -> JSONResponse:
    """PUT /api/rooms/{room}/followup/settings: quiet hours, caps, breaker, outbound webhook."""
    services, room_id = await host_room(request)
    change = wire.parse_settings(await json_body(request))
    if change.webhook_url is not None:  # checked again, on the address connected to, at every send
        allow = netguard.allow_list(services.settings.outbound_allow)
        await netguard.check_url(change.webhook_url, allow, what="webhook_url")
    async with services.db.session() as session:
        settings = await ensure_room(session, room_id)
        for key, value in change.values.items():
            setattr(settings, key, value)
        session.add(settings)
        await session.commit()
        audit(request, "followup.settings", change.values)
        return JSONResponse(wire.settings_shape(settings))


async def save_journey(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/followup/journeys: create or replace a journey (by key)."""
    services, room_id = await host_room(request)
    spec = rules.clean_journey(await json_body(request))
    t = now_ms()
    async with services.db.session() as session:
        await ensure_room(session, room_id)
        journey = (
            await session.exec(select(Journey).where(Journey.room_id == room_id, Journey.key == spec["key"]))
        ).first()
        if journey is None:
            journey = Journey(
                room_id=room_id, key=spec["key"], name="", entry="", steps="[]", created_ms=t, updated_ms=t
            )
        journey.name, journey.entry, journey.goal, journey.key_by = (
            spec["name"],
            spec["entry"],
            spec["goal"],
            spec["key_by"],
        )
        journey.conditions = orjson.dumps(spec["conditions"]).decode()
        journey.steps = orjson.dumps(spec["steps"]).decode()
        if spec["while_paused"] is not None:
            journey.while_paused = spec["while_paused"]
        journey.updated_ms = t
        session.add(journey)
        await session.commit()
        audit(
            request, "followup.journey", {"name": spec["name"], "entry": spec["entry"]}, f"key={spec['key']}"
        )
        return JSONResponse(await _journey_answer(session, journey))


async def _journey_answer(session: AsyncSession, journey: Journey) -> wire.Json:
    assert journey.id is not None
    return wire.journey_shape(journey, (await paused_entries(session, [journey.id]))[journey.id])


async def journey_status(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/followup/journeys/{key}/status {status?: active|paused, while_paused?:
    hold|skip}: pause or resume, and what entries do while it is paused."""
    services, room_id = await host_room(request)
    change = wire.parse_journey_status(await json_body(request))
    status, while_paused = change.status, change.while_paused
    async with services.db.session() as session:
        journey = (
            await session.exec(
                select(Journey).where(Journey.room_id == room_id, Journey.key == request.path_params["key"])
            )
        ).first()
        if journey is None:
            raise NotFound("no such journey")
        resumed = status == "active" and journey.status != "active"
        if resumed:
            journey.resumed_ms = now_ms()  # the breaker starts counting afresh
        if status is not None:
            journey.status = status
            journey.paused_reason = None if status == "active" else "paused by the host"
        if while_paused is not None:
            journey.while_paused = while_paused
        session.add(journey)
        await session.commit()
    audit(
        request,
        "followup.journey.status",
        {"status": status, "while_paused": while_paused},
        f"key={journey.key}",
    )
    if resumed and journey.id is not None:
        # The entries it held go in now (a first batch; the follow-up loop takes any rest), so the
        # answer already says what became of them.
        await release_held(services.db, journey.id)
        if (runner := services.engines.find(Runner)) is not None:
            runner.wake()
    async with services.db.session() as session:
        answer = await _journey_answer(session, journey)
    return JSONResponse(answer)


async def save_template(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/followup/templates {key, channel, locale, subject, body}."""
    services, room_id = await host_room(request)
    spec = wire.parse_template(await json_body(request))
    key, channel, locale = spec.key, spec.channel, spec.locale
    subject, text = spec.text.subject, spec.text.body
    # Rendered once with the sample data under the limits it will be sent under: a template that
    # passes one (time, memory, size) is refused now, not at every send.
    await templates.render_isolated(services.sandbox, subject, text, templates.SAMPLE)
    async with services.db.session() as session:
        await ensure_room(session, room_id)
        found = (
            await session.exec(
                select(Template).where(
                    Template.room_id == room_id,
                    Template.key == key,
                    Template.channel == channel,
                    Template.locale == locale,
                )
            )
        ).first()
        tpl = found or Template(
            room_id=room_id, key=key, channel=channel, locale=locale, body="", updated_ms=0
        )
        tpl.subject, tpl.body, tpl.updated_ms = subject, text, now_ms()
        session.add(tpl)
        await session.commit()
        audit(
            request,
            "followup.template",
            {"channel": channel, "locale": locale, "subject": subject},
            f"key={key}",
        )
        return JSONResponse(wire.template_shape(tpl))


async def preview(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/followup/preview {subject, body}: rendered with sample data (strict:
    an unknown variable is an error here, so typos show before anything is sent)."""
    services, _room_id = await host_room(request)
    given = wire.parse_template_text(await json_body(request))
    rendered = await templates.render_isolated(
        services.sandbox, given.subject, given.body, templates.SAMPLE, strict=True
    )
    return JSONResponse({"subject": rendered.subject, "text": rendered.text})


routes = [
    Route("/api/rooms/{room_id}/followup", overview),
    Route("/api/rooms/{room_id}/followup/settings", save_settings, methods=["PUT"]),
    Route("/api/rooms/{room_id}/followup/journeys", save_journey, methods=["POST"]),
    Route("/api/rooms/{room_id}/followup/journeys/{key}/status", journey_status, methods=["POST"]),
    Route("/api/rooms/{room_id}/followup/templates", save_template, methods=["POST"]),
    Route("/api/rooms/{room_id}/followup/preview", preview, methods=["POST"]),
]
