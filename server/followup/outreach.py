"""The host console's follow-up API for reaching people: campaigns (create, cancel), the message log,
dead letters with retry, and do-not-contact. Every route needs the room's host (docs/api.md)."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.errors import Conflict, InvalidInput, NotFound
from server.followup import contacts, wire
from server.followup.edge import audit, host_room, int_param
from server.followup.runner import Runner
from server.followup.store import ensure_room
from server.httputil import json_body
from server.services import Services
from server.storage import now_ms
from server.storage.followup import Campaign, Contact, Message, Template

MESSAGES_SHOWN = 100


async def create_campaign(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/followup/campaigns {name, segment, channel, template, send_ms?}."""
    services, room_id = await host_room(request)
    body = await json_body(request)
    t = now_ms()
    new = wire.parse_campaign(body, t)
    template, send_ms = new.template, new.send_ms
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
            name=new.name,
            segment=new.segment,
            channel=new.channel,
            template=template,
            send_ms=send_ms,
            created_ms=t,
        )
        session.add(campaign)
        await session.commit()
    if (runner := services.engines.find(Runner)) is not None:
        runner.wake()
    audit(request, "campaign.create", body, f"id={campaign.id}")
    await _tell_hosts(services, room_id)  # a campaign for later is listed at once too
    return JSONResponse({"id": campaign.id, "status": campaign.status, "send_ms": send_ms})


async def cancel_campaign(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/followup/campaigns/{id}/cancel: nothing more of it goes out."""
    services, room_id = await host_room(request)
    campaign_id = int_param(request, "campaign_id")
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
    audit(request, "campaign.cancel", None, f"id={campaign_id}")
    await _tell_hosts(services, room_id)
    return JSONResponse({"id": campaign_id, "status": "cancelled"})


async def _tell_hosts(services: Services, room_id: str) -> None:
    if (runner := services.engines.find(Runner)) is not None:
        await runner.changed(room_id)


async def messages(request: Request) -> JSONResponse:
    """GET /api/rooms/{room}/followup/messages?status=dead: the latest messages (the log)."""
    services, room_id = await host_room(request)
    status = request.query_params.get("status")
    query = select(Message).where(Message.room_id == room_id)
    if status:
        query = query.where(Message.status == status)
    async with services.db.session() as session:
        rows = (await session.exec(query.order_by(col(Message.id).desc()).limit(MESSAGES_SHOWN))).all()
    return JSONResponse({"messages": [wire.message_shape(m) for m in rows]})


async def retry(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/followup/messages/{id}/retry: a dead or failed message goes again."""
    services, room_id = await host_room(request)
    message_id = int_param(request, "message_id")
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
    audit(request, "message.retry", None, f"id={message_id}")
    await _tell_hosts(services, room_id)
    if (runner := services.engines.find(Runner)) is not None:
        runner.wake()
    return JSONResponse({"id": message_id, "status": "scheduled"})


async def do_not_contact(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/followup/dnc {email | phone, channel, reason}: stop messaging a person
    on a channel (or all of them), for a stated reason. Recorded in the consent history."""
    services, room_id = await host_room(request)
    dnc = wire.parse_do_not_contact(await json_body(request))
    async with services.db.session() as session:
        where = Contact.email == dnc.email if dnc.email is not None else Contact.phone == dnc.phone
        found = (await session.exec(select(Contact).where(where, col(Contact.merged_into).is_(None)))).all()
    if not found:
        raise NotFound("no contact with that address")
    for contact in found:
        for ch in dnc.channels:
            await contacts.say(
                services.db,
                contact.id,
                contacts.Say(ch, "blocked", source="host console", reason=dnc.reason, room_id=room_id),
            )
    audit(
        request,
        "contact.dnc",
        {"channels": list(dnc.channels), "reason": dnc.reason},
        f"contacts={len(found)}",
    )
    return JSONResponse({"ok": True, "contacts": len(found), "channels": list(dnc.channels)})


routes = [
    Route("/api/rooms/{room_id}/followup/campaigns", create_campaign, methods=["POST"]),
    Route("/api/rooms/{room_id}/followup/campaigns/{campaign_id}/cancel", cancel_campaign, methods=["POST"]),
    Route("/api/rooms/{room_id}/followup/messages", messages),
    Route("/api/rooms/{room_id}/followup/messages/{message_id}/retry", retry, methods=["POST"]),
    Route("/api/rooms/{room_id}/followup/dnc", do_not_contact, methods=["POST"]),
]
