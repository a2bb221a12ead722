"""The host console's follow-up API: settings, journeys, templates (with preview), campaigns,
the message log, dead letters with retry, the per-step funnel and do-not-contact.

Every route needs the room's host token (``Authorization: Bearer``); docs/api.md lists them.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server import netguard, text
from server.errors import Conflict, InvalidInput, NotFound
from server.followup import contacts, reach, rules, runner, templates
from server.followup.campaigns import segment_people
from server.followup.journeys import release_held
from server.followup.links import webhook_secret
from server.followup.runner import Runner
from server.followup.store import ensure_room
from server.httputil import json_body
from server.rooms.identity import require_host
from server.services import Services
from server.storage import now_ms
from server.storage.followup import (
    Campaign,
    Contact,
    FollowupSettings,
    Journey,
    Message,
    PausedEntry,
    Template,
)
from server.storage.models import IntentEvent, Viewer

MESSAGES_SHOWN = 100
# Entries skipped while a journey was paused: the latest this many are listed with the journey.
SKIPPED_SHOWN = 10
ENTRY_STATUSES = ("held", "entered", "goal", "skipped")
# A sent message moves on to delivered, opened, clicked: counted by the times it reached each.
PROGRESS = ("sent", "delivered", "opened", "clicked")
SETTING_FIELDS = (
    "quiet_start",
    "quiet_end",
    "cap_per_day",
    "cap_per_week",
    "failure_pause_ratio",
    "webhook_url",
)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _room(request: Request) -> tuple[Services, str]:
    services = _services(request)
    principal = await require_host(request, cookie=True)  # on the session cookie: same-origin only
    return services, principal.room_id


def journey_shape(j: Journey, entries: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": j.id,
        "key": j.key,
        "name": j.name,
        "status": j.status,
        "paused_reason": j.paused_reason,
        "while_paused": j.while_paused,
        "paused_entries": entries or _no_entries(),
        "entry": j.entry,
        "key_by": j.key_by,
        "goal": j.goal,
        "conditions": orjson.loads(j.conditions),
        "steps": orjson.loads(j.steps),
    }


def _no_entries() -> dict[str, Any]:
    return {**dict.fromkeys(ENTRY_STATUSES, 0), "skipped_recent": []}


async def paused_entries(session: AsyncSession, journey_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Per journey: its entries that arrived while it was paused, counted by what became of them, and
    the latest skipped ones (when, which event, who)."""
    out = {j: _no_entries() for j in journey_ids}
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
            {
                "event": event.kind,
                "event_ms": event.created_ms,
                "product_id": event.product_id,
                "order_id": event.order_id,
                "viewer_id": entry.viewer_id,
                "name": name,
                "reason": entry.reason,
            }
            for entry, event, name in rows.all()
        ]
    return out


def settings_shape(s: FollowupSettings) -> dict[str, Any]:
    return {f: getattr(s, f) for f in SETTING_FIELDS}


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
    services, room_id = await _room(request)
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
            "settings": settings_shape(settings),
            "journeys": [journey_shape(j, entries.get(j.id or 0)) for j in journeys],
            "templates": [
                {
                    "id": t.id,
                    "key": t.key,
                    "channel": t.channel,
                    "locale": t.locale,
                    "subject": t.subject,
                    "body": t.body,
                }
                for t in tpls
            ],
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
    services, room_id = await _room(request)
    body = await json_body(request)
    unknown = set(body) - set(SETTING_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown settings: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for key in ("quiet_start", "quiet_end"):
        if key in body:
            values[key] = rules.clean_hhmm(body[key], key)
    for key in ("cap_per_day", "cap_per_week"):
        if key in body:
            v = body[key]
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 100:
                raise InvalidInput(f"{key} must be a whole number from 0 to 100")
            values[key] = v
    if "failure_pause_ratio" in body:
        v = body["failure_pause_ratio"]
        if not isinstance(v, int | float) or isinstance(v, bool) or not 0 < v <= 1:
            raise InvalidInput("failure_pause_ratio must be a number above 0 and at most 1")
        values["failure_pause_ratio"] = float(v)
    if "webhook_url" in body:
        url = body["webhook_url"] or None
        if url is not None and (
            not isinstance(url, str) or not url.startswith(("https://", "http://")) or len(url) > 1000
        ):
            raise InvalidInput("webhook_url must be an http(s) URL")
        if url is not None:  # checked again, on the address connected to, at every send
            allow = netguard.allow_list(services.settings.outbound_allow)
            await netguard.check_url(url, allow, what="webhook_url")
        values["webhook_url"] = url
    async with services.db.session() as session:
        settings = await ensure_room(session, room_id)
        for key, value in values.items():
            setattr(settings, key, value)
        session.add(settings)
        await session.commit()
        return JSONResponse(settings_shape(settings))


async def save_journey(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/followup/journeys: create or replace a journey (by key)."""
    services, room_id = await _room(request)
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
        return JSONResponse(await _journey_answer(session, journey))


async def _journey_answer(session: AsyncSession, journey: Journey) -> dict[str, Any]:
    assert journey.id is not None
    return journey_shape(journey, (await paused_entries(session, [journey.id]))[journey.id])


async def journey_status(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/followup/journeys/{key}/status {status?: active|paused, while_paused?:
    hold|skip}: pause or resume, and what entries do while it is paused."""
    services, room_id = await _room(request)
    body = await json_body(request)
    status, while_paused = body.get("status"), body.get("while_paused")
    if status is None and while_paused is None:
        raise InvalidInput("give status (active or paused), while_paused (hold or skip), or both")
    if status is not None and status not in ("active", "paused"):
        raise InvalidInput("status must be active or paused")
    if while_paused is not None:
        while_paused = rules.clean_while_paused(while_paused)
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
    if resumed and journey.id is not None:
        # The entries it held go in now (a first batch; the follow-up loop takes any rest), so the
        # answer already says what became of them.
        await release_held(services.db, journey.id)
        if (runner := services.engines.find(Runner)) is not None:
            runner.wake()
    async with services.db.session() as session:
        answer = await _journey_answer(session, journey)
    return JSONResponse(answer)


def _template_fields(body: dict[str, Any]) -> tuple[str | None, str]:
    subject, text = body.get("subject") or None, body.get("body")
    if subject is not None and not isinstance(subject, str):
        raise InvalidInput("subject must be text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("body must be the message text")
    templates.check_size(subject, text)  # the rest is checked by rendering it, in a worker process
    return subject, text


async def save_template(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/followup/templates {key, channel, locale, subject, body}."""
    services, room_id = await _room(request)
    body = await json_body(request)
    key = rules.clean_slug(body.get("key"), "key")
    channel = body.get("channel") or "*"
    if channel not in (*rules.CHANNELS, "*"):
        raise InvalidInput("channel must be * (any) or one of " + ", ".join(rules.CHANNELS))
    locale = body.get("locale")
    if locale not in contacts.LOCALES:
        raise InvalidInput(f"locale must be one of {', '.join(contacts.LOCALES)}")
    subject, text = _template_fields(body)
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
        return JSONResponse(
            {"id": tpl.id, "key": key, "channel": channel, "locale": locale, "subject": subject, "body": text}
        )


async def preview(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/followup/preview {subject, body}: rendered with sample data (strict:
    an unknown variable is an error here, so typos show before anything is sent)."""
    services, _room_id = await _room(request)
    subject, text = _template_fields(await json_body(request))
    rendered = await templates.render_isolated(services.sandbox, subject, text, templates.SAMPLE, strict=True)
    return JSONResponse({"subject": rendered.subject, "text": rendered.text})


async def create_campaign(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/followup/campaigns {name, segment, channel, template, send_ms?}."""
    services, room_id = await _room(request)
    body = await json_body(request)
    name = body.get("name")
    if not isinstance(name, str) or not 0 < len(name.strip()) <= 120:
        raise InvalidInput("name must be 1 to 120 characters")
    if body.get("segment") not in rules.SEGMENTS:
        raise InvalidInput(f"segment must be one of {', '.join(rules.SEGMENTS)}")
    if body.get("channel") not in (*rules.CHANNELS, "auto"):
        raise InvalidInput("channel must be auto or one of " + ", ".join(rules.CHANNELS))
    template = rules.clean_slug(body.get("template"), "template")
    t = now_ms()
    send_ms = body.get("send_ms") or t
    if (
        not isinstance(send_ms, int)
        or isinstance(send_ms, bool)
        or not t - 60_000 <= send_ms <= t + 90 * 86_400_000
    ):
        raise InvalidInput("send_ms must be a time from now to 90 days ahead (epoch ms)")
    async with services.db.session() as session:
        await ensure_room(session, room_id)
        known = (
            await session.exec(
                select(Template.id).where(Template.room_id == room_id, Template.key == template)
            )
        ).first()
        if known is None:
            raise InvalidInput(f"no template {template!r} in this room", code="unknown_template")
        campaign = Campaign(
            room_id=room_id,
            name=name.strip(),
            segment=body["segment"],
            channel=body["channel"],
            template=template,
            send_ms=send_ms,
            created_ms=t,
        )
        session.add(campaign)
        await session.commit()
    if (runner := services.engines.find(Runner)) is not None:
        runner.wake()
    await _tell_hosts(services, room_id)  # a campaign for later is listed at once too
    return JSONResponse({"id": campaign.id, "status": campaign.status, "send_ms": send_ms})


async def cancel_campaign(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/followup/campaigns/{id}/cancel: nothing more of it goes out."""
    services, room_id = await _room(request)
    campaign_id = _int_param(request, "campaign_id")
    async with services.db.session() as session:
        campaign = await session.get(Campaign, campaign_id)
        if campaign is None or campaign.room_id != room_id:
            raise NotFound("no such campaign")
        if campaign.status in ("done", "cancelled"):
            raise Conflict(f"the campaign is already {campaign.status}")
        campaign.status = "cancelled"
        session.add(campaign)
        await session.exec(
            update(Message)
            .where(col(Message.campaign_id) == campaign_id, col(Message.status) == "scheduled")
            .values(status="cancelled", reason="campaign cancelled")
        )
        await session.commit()
    await _tell_hosts(services, room_id)
    return JSONResponse({"id": campaign_id, "status": "cancelled"})


async def _tell_hosts(services: Services, room_id: str) -> None:
    if (runner := services.engines.find(Runner)) is not None:
        await runner.changed(room_id)


def _int_param(request: Request, name: str) -> int:
    raw = request.path_params[name]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise NotFound(f"no such {name.removesuffix('_id')}")
    return int(raw)


def message_shape(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "journey_id": m.journey_id,
        "step": m.step,
        "campaign_id": m.campaign_id,
        "channel": m.channel,
        "template": m.template,
        "transactional": m.transactional,
        "status": m.status,
        "reason": m.reason,
        "attempts": m.attempts,
        "next_ms": m.next_ms,
        "created_ms": m.created_ms,
        "sent_ms": m.sent_ms,
        "subject": m.subject,
    }


async def messages(request: Request) -> JSONResponse:
    """GET /api/rooms/{room}/followup/messages?status=dead: the latest messages (the log)."""
    services, room_id = await _room(request)
    status = request.query_params.get("status")
    query = select(Message).where(Message.room_id == room_id)
    if status:
        query = query.where(Message.status == status)
    async with services.db.session() as session:
        rows = (await session.exec(query.order_by(col(Message.id).desc()).limit(MESSAGES_SHOWN))).all()
    return JSONResponse({"messages": [message_shape(m) for m in rows]})


async def retry(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/followup/messages/{id}/retry: a dead or failed message goes again."""
    services, room_id = await _room(request)
    message_id = _int_param(request, "message_id")
    async with services.db.session() as session:
        result = await session.exec(
            update(Message)
            .where(
                col(Message.id) == message_id,
                col(Message.room_id) == room_id,
                col(Message.status).in_(["dead", "failed"]),
            )
            .values(status="scheduled", attempts=0, next_ms=now_ms(), reason="retried by the host")
        )
        await session.commit()
    if not result.rowcount:
        raise Conflict("only a dead or failed message of this room can be retried")
    await _tell_hosts(services, room_id)
    if (runner := services.engines.find(Runner)) is not None:
        runner.wake()
    return JSONResponse({"id": message_id, "status": "scheduled"})


async def do_not_contact(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/followup/dnc {email | phone, channel, reason}: stop messaging a person
    on a channel (or all of them), for a stated reason. Recorded in the consent history."""
    services, room_id = await _room(request)
    body = await json_body(request)
    email = text.clean_email(body.get("email"))
    phone = text.clean_phone(body.get("phone"))
    if email is None and phone is None:
        raise InvalidInput("give the email or the phone of the person")
    channel = body.get("channel") or "all"
    if channel not in (*contacts.CONSENT_CHANNELS, "all"):
        raise InvalidInput("channel must be all or one of " + ", ".join(contacts.CONSENT_CHANNELS))
    reason = body.get("reason")
    if not isinstance(reason, str) or not 0 < len(reason.strip()) <= 32:
        raise InvalidInput("reason must be 1 to 32 characters (complaint, asked by phone, ...)")
    async with services.db.session() as session:
        where = Contact.email == email if email is not None else Contact.phone == phone
        found = (await session.exec(select(Contact).where(where, col(Contact.merged_into).is_(None)))).all()
    if not found:
        raise NotFound("no contact with that address")
    channels = contacts.CONSENT_CHANNELS if channel == "all" else (channel,)
    for contact in found:
        for ch in channels:
            await contacts.say(
                services.db,
                contact.id,
                contacts.Say(ch, "blocked", source="host console", reason=reason.strip(), room_id=room_id),
            )
    return JSONResponse({"ok": True, "contacts": len(found), "channels": list(channels)})


routes = [
    Route("/api/rooms/{room_id}/followup", overview),
    Route("/api/rooms/{room_id}/followup/settings", save_settings, methods=["PUT"]),
    Route("/api/rooms/{room_id}/followup/journeys", save_journey, methods=["POST"]),
    Route("/api/rooms/{room_id}/followup/journeys/{key}/status", journey_status, methods=["POST"]),
    Route("/api/rooms/{room_id}/followup/templates", save_template, methods=["POST"]),
    Route("/api/rooms/{room_id}/followup/preview", preview, methods=["POST"]),
    Route("/api/rooms/{room_id}/followup/campaigns", create_campaign, methods=["POST"]),
    Route("/api/rooms/{room_id}/followup/campaigns/{campaign_id}/cancel", cancel_campaign, methods=["POST"]),
    Route("/api/rooms/{room_id}/followup/messages", messages),
    Route("/api/rooms/{room_id}/followup/messages/{message_id}/retry", retry, methods=["POST"]),
    Route("/api/rooms/{room_id}/followup/dnc", do_not_contact, methods=["POST"]),
]
