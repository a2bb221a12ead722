"""Follow-up routes for the recipients of messages and the SMS gateway: tracked links, the open pixel,
unsubscribe (with RFC 8058 one-click), email confirmation, SMS STOP replies and delivery reports."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature
from sqlalchemy import update
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from server import netguard
from server.errors import NotFound
from server.followup import contacts, rules, wire
from server.followup.edge import gateway, links, services_of
from server.httputil import json_body
from server.i18n import template_helpers
from server.services import Services
from server.storage import now_ms
from server.storage.followup import Consent, Contact, Message
from server.storage.models import RoomViewer

# The open pixel: a 1x1 transparent GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


async def click(request: Request) -> Response:
    """GET /t/{token}: count the click, then go where the message pointed (signed: no open redirect)."""
    services = services_of(request)
    try:
        value = links(services).read_track(request.path_params["token"])
    except (BadSignature, ValueError):
        raise NotFound("this link is not valid") from None
    if len(value) != 2 or not isinstance(value[1], str):
        raise NotFound("this link is not valid")
    message_id, url = value
    # Signed by us, but a shop link may predate the outbound check (server/products/http.py); links
    # to this server itself are its own pages.
    if urlsplit(url).netloc != urlsplit(links(services).base_url).netloc:
        try:
            netguard.check_shape(url, netguard.allow_list(services.settings.outbound_allow), what="link")
        except netguard.Refused:
            raise NotFound("this link is not valid") from None
    prefetch = "prefetch" in (request.headers.get("sec-purpose", "") + request.headers.get("purpose", ""))
    if not prefetch:
        t = now_ms()
        async with services.db.session() as session:
            await session.exec(
                update(Message)
                .where(col(Message.id) == message_id, col(Message.clicked_ms).is_(None))
                .values(clicked_ms=t)
            )
            await session.exec(
                update(Message)
                .where(col(Message.id) == message_id, col(Message.opened_ms).is_(None))
                .values(opened_ms=t)
            )
            await session.exec(
                update(Message)
                .where(
                    col(Message.id) == message_id, col(Message.status).in_(["sent", "delivered", "opened"])
                )
                .values(status="clicked")
            )
            # Last touch for revenue (docs/revenue.md): the viewer's next order names this message.
            message = await session.get(Message, message_id)
            if message is not None and message.viewer_id is not None:
                await session.exec(
                    update(RoomViewer)
                    .where(
                        col(RoomViewer.room_id) == message.room_id,
                        col(RoomViewer.viewer_id) == message.viewer_id,
                    )
                    .values(last_message_id=message_id)
                )
            await session.commit()
    return RedirectResponse(url, status_code=302)


async def pixel(request: Request) -> Response:
    """GET /t/o/{token}: the open pixel of an HTML email."""
    services = services_of(request)
    try:
        message_id = links(services).read_track(request.path_params["token"])[0]
    except (BadSignature, ValueError):
        return Response(PIXEL, media_type="image/gif")
    async with services.db.session() as session:
        await session.exec(
            update(Message)
            .where(col(Message.id) == message_id, col(Message.opened_ms).is_(None))
            .values(opened_ms=now_ms())
        )
        await session.exec(
            update(Message)
            .where(col(Message.id) == message_id, col(Message.status).in_(["sent", "delivered"]))
            .values(status="opened")
        )
        await session.commit()
    return Response(PIXEL, media_type="image/gif", headers={"cache-control": "no-store"})


def _page(request: Request, locale: str, key: str, *, form: bool = False, **values: Any) -> Response:
    """A small page for a recipient, in the contact's own language."""
    ctx = template_helpers(locale)
    ctx.update(key=key, form=form, values=values)
    templates: Jinja2Templates = request.app.state.templates
    response = templates.TemplateResponse(request, "recipient.html", ctx)
    response.headers["cache-control"] = "no-store"
    return response


async def _contact_token(request: Request) -> tuple[Services, list[Any], Contact]:
    services = services_of(request)
    try:
        value = links(services).read_contact(request.path_params["token"])
    except (BadSignature, ValueError):
        raise NotFound("this link is not valid") from None
    async with services.db.session() as session:
        contact = await contacts.live(session, value[0])
    if contact is None:
        raise NotFound("this link is not valid")
    return services, value, contact


async def unsubscribe(request: Request) -> Response:
    """GET shows a confirm button (link scanners must not unsubscribe anyone); POST unsubscribes,
    including the mail client's RFC 8058 one-click POST."""
    services, value, contact = await _contact_token(request)
    channel = value[1]
    if channel not in contacts.CONSENT_CHANNELS:
        raise NotFound("this link is not valid")
    if request.method == "POST":
        await contacts.say(
            services.db,
            contact.id,
            contacts.Say(
                channel, "withdrawn", source="unsubscribe link", reason="unsubscribed", lang=contact.locale
            ),
        )
        return _page(request, contact.locale, "followup.unsub.done", channel=channel)
    return _page(request, contact.locale, "followup.unsub", form=True, channel=channel)


async def confirm(request: Request) -> Response:
    """/optin/{token}: the double opt-in link. GET asks (a mail scanner opening links confirms
    nothing); POST proves the address and grants email consent."""
    services, value, contact = await _contact_token(request)
    if len(value) != 3 or value[1] != "confirm":
        raise NotFound("this link is not valid")
    if request.method != "POST":
        return _page(request, contact.locale, "followup.optin.ask", form=True)
    confirmed = await contacts.confirm_email(services.db, contact.id, value[2])
    if confirmed is None:
        raise NotFound("this link is not valid (the address changed since)")
    async with services.db.session() as session:
        current = await session.get(Consent, (confirmed.id, "email"))
    if current is not None and current.status == "blocked":
        return _page(request, confirmed.locale, "followup.optin.blocked")
    return _page(request, confirmed.locale, "followup.optin")


async def sms_inbound(request: Request) -> JSONResponse:
    """POST /api/sms/inbound {from, text}: replies from the SMS gateway; STOP / TD / 退订 opt out."""
    services = gateway(request)
    reply = wire.parse_sms_reply(await json_body(request))
    if not rules.is_stop(reply.text):
        return JSONResponse({"ok": True, "stop": False})
    async with services.db.session() as session:
        found = (await session.exec(select(Contact).where(Contact.phone == reply.phone))).all()
    for contact in found:
        await contacts.say(
            services.db,
            contact.id,
            contacts.Say("sms", "blocked", source="sms reply", reason="stop", wording=reply.text),
        )
    return JSONResponse({"ok": True, "stop": True, "contacts": len(found)})


async def sms_receipt(request: Request) -> JSONResponse:
    """POST /api/sms/receipts {id, status: delivered|failed, reason?}: the gateway's delivery report
    for a message it accepted (``id`` is the id it answered with)."""
    services = gateway(request)
    receipt = wire.parse_sms_receipt(await json_body(request))
    async with services.db.session() as session:
        found = (
            await session.exec(
                select(Message).where(Message.provider_id == receipt.provider_id, Message.channel == "sms")
            )
        ).first()
        if found is None:
            raise NotFound("no message with that id")
        if receipt.delivered:
            found.delivered_ms = found.delivered_ms or now_ms()
            if found.status == "sent":
                found.status = "delivered"
        elif found.status in ("sent", "delivered"):
            # Not delivered after all; the number is not blocked: operators see why and may retry.
            found.status, found.reason = "failed", f"gateway: {receipt.reason or 'not delivered'}"
        session.add(found)
        await session.commit()
    return JSONResponse({"ok": True, "status": found.status})


routes = [
    Route("/t/o/{token}", pixel),
    Route("/t/{token}", click),
    Route("/u/{token}", unsubscribe, methods=["GET", "POST"]),
    Route("/optin/{token}", confirm, methods=["GET", "POST"]),
    Route("/api/sms/inbound", sms_inbound, methods=["POST"]),
    Route("/api/sms/receipts", sms_receipt, methods=["POST"]),
]
