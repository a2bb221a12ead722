"""Follow-up routes for the viewer's phone: the opt-in box, web push, the in-app inbox (and the
viewer's own contact and inbox for the welcome)."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.errors import InvalidInput, NotFound
from server.followup import contacts, reach, wire
from server.followup.contacts import queue_confirmation
from server.followup.edge import from_phone, int_param, services_of, viewer
from server.followup.runner import Runner
from server.httputil import check_origin, json_body
from server.services import Services
from server.storage import now_ms
from server.storage.followup import Contact, ContactViewer, Message, PushSubscription

# The opt-in box's channels, the field each needs, and the setting that configures each.
FIELDS = {"email": "email", "sms": "phone"}
CONFIGURE = {"email": "LIVEWALL_SMTP_URL", "sms": "LIVEWALL_SMS_URL"}
INBOX_SHOWN = 10


async def opt_in(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/contact: the phone's opt-in box (email and/or phone, consent per
    channel with the wording shown). Email needs double opt-in: a confirmation email goes out."""
    services, room_id, viewer_id = await from_phone(request)
    box = wire.parse_opt_in(await json_body(request))
    await _check_configured(services, box)
    says = []
    for channel in ("email", "sms"):
        if box.consent.get(channel):
            if box.address(channel) is None:
                raise InvalidInput(
                    f"consent to {channel} needs the {channel if channel == 'email' else 'phone'}"
                )
            status = "pending" if channel == "email" else "granted"
            says.append(
                contacts.Say(
                    channel, status, source="opt-in box", wording=box.wording, lang=box.lang, room_id=room_id
                )
            )
    contact, pending = await contacts.identify(
        services.db,
        viewer_id=viewer_id,
        name=box.name,
        email=box.email,
        phone=box.phone,
        tz=box.tz,
        locale=box.lang,
        says=says,
    )
    sent = False
    if "email" in pending:
        sent = await queue_confirmation(services.db, room_id, contact, contact.pending_email or contact.email)
        if (runner := services.engines.find(Runner)) is not None:
            runner.wake()
    answer = {"ok": True, "contact": await contact_view(services, contact), "pending": pending}
    return JSONResponse({**answer, "confirmation_sent": sent})


async def _check_configured(services: Services, box: wire.OptIn) -> None:
    """An address or a consent for a channel no delivering process can send on is refused: the
    person would believe they will hear from the shop there."""
    wanted = [c for c in FIELDS if box.consent.get(c) or box.address(c) is not None]
    if not wanted or set(wanted) <= await reach.configured(services.db):
        return
    # Read afresh before refusing: a worker may have started since the cached read.
    off = [c for c in wanted if c not in await reach.configured(services.db, fresh=True)]
    if off:
        raise InvalidInput(
            f"{off[0]} is not configured on this server ({CONFIGURE[off[0]]} is not set): the opt-in "
            f"box takes no {FIELDS[off[0]]} and no consent for it",
            code="channel_not_configured",
        )


async def contact_view(services: Services, contact: Contact | None) -> wire.Json | None:
    """What the phone knows of its own contact: masked addresses and the consent per channel."""
    if contact is None:
        return None
    said = await contacts.consents(services.db, contact.id)
    async with services.db.session() as session:
        push = (
            await session.exec(
                select(PushSubscription.endpoint).where(PushSubscription.contact_id == contact.id)
            )
        ).first()
    return wire.contact_shape(contact, {k: v["status"] for k, v in said.items()}, push is not None)


async def push_key(request: Request) -> JSONResponse:
    """GET /api/push/key: the VAPID public key the browser subscribes with."""
    from server.followup.channels.push import public_key_b64url

    return JSONResponse({"key": public_key_b64url(services_of(request).settings)})


async def push_subscribe(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/push {subscription, wording, lang}: a browser's push subscription."""
    services, room_id, viewer_id = await from_phone(request)
    sub = wire.parse_push(await json_body(request))
    contact, _ = await contacts.identify(
        services.db,
        viewer_id=viewer_id,
        tz=sub.tz,
        locale=sub.lang,
        says=[
            contacts.Say(
                "push",
                "granted",
                source="push prompt",
                wording=(sub.wording or "")[:500] or None,
                lang=sub.lang,
                room_id=room_id,
            )
        ],
    )
    async with services.db.session() as session:
        found = await session.get(PushSubscription, sub.endpoint)
        if found is None:
            session.add(
                PushSubscription(
                    endpoint=sub.endpoint,
                    contact_id=contact.id,
                    p256dh=sub.p256dh,
                    auth=sub.auth,
                    created_ms=now_ms(),
                )
            )
        else:
            found.contact_id, found.p256dh, found.auth = contact.id, sub.p256dh, sub.auth
            session.add(found)
        await session.commit()
    return JSONResponse({"ok": True, "contact": await contact_view(services, contact)})


async def inbox(services: Services, viewer_id: str) -> list[wire.Json]:
    """In-app messages for this person (any of their viewer ids) not yet opened, newest first."""
    async with services.db.session() as session:
        contact = await contacts.contact_of_viewer(session, viewer_id)
        who = col(Message.viewer_id) == viewer_id
        if contact is not None:
            who = who | (col(Message.contact_id) == contact.id)
        rows = (
            await session.exec(
                select(Message)
                .where(who, Message.channel == "inapp", col(Message.status).in_(["sent", "delivered"]))
                .order_by(col(Message.id).desc())
                .limit(INBOX_SHOWN)
            )
        ).all()
    return [wire.inbox_shape(m) for m in rows]


async def inbox_seen(request: Request) -> JSONResponse:
    """POST /api/inbox/{id}/opened: the viewer read an in-app message."""
    services = services_of(request)
    check_origin(request, services.settings.allowed_origins, services.settings.public_url)
    viewer_id = viewer(request)
    message_id = int_param(request, "message_id")
    async with services.db.session() as session:
        message = await session.get(Message, message_id)
        contact = await contacts.contact_of_viewer(session, viewer_id)
        mine = message is not None and (
            message.viewer_id == viewer_id or (contact is not None and message.contact_id == contact.id)
        )
        if message is None or message.channel != "inapp" or not mine:
            raise NotFound("no such message")
        await session.exec(
            update(Message)
            .where(col(Message.id) == message.id, col(Message.opened_ms).is_(None))
            .values(opened_ms=now_ms(), status="opened")
        )
        await session.commit()
    return JSONResponse({"ok": True})


async def my_contact(services: Services, viewer_id: str) -> wire.Json | None:
    async with services.db.session() as session:
        link = await session.get(ContactViewer, viewer_id)
        contact = await contacts.live(session, link.contact_id) if link is not None else None
    return await contact_view(services, contact)


routes = [
    Route("/api/rooms/{room_id}/contact", opt_in, methods=["POST"]),
    Route("/api/rooms/{room_id}/push", push_subscribe, methods=["POST"]),
    Route("/api/push/key", push_key),
    Route("/api/inbox/{message_id}/opened", inbox_seen, methods=["POST"]),
]
