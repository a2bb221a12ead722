"""Follow-up routes for viewers and recipients: the opt-in box, web push, the in-app inbox, tracked
links, the open pixel, unsubscribe (with RFC 8058 one-click), email confirmation and SMS STOP."""

from __future__ import annotations

import base64
import hmac
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
from server.errors import InvalidInput, NotFound, Unauthorized
from server.followup import contacts, reach, rules
from server.followup.contacts import queue_confirmation
from server.followup.links import Links
from server.followup.runner import Runner
from server.httputil import bearer, check_origin, json_body
from server.i18n import template_helpers
from server.rooms.actions import load_room
from server.rooms.identity import viewer_from_cookie
from server.services import Services
from server.storage import now_ms
from server.storage.followup import Consent, Contact, ContactViewer, Message, PushSubscription
from server.storage.models import RoomViewer
from server.text import clean_phone, mask_email, mask_phone

# The opt-in box's channels, the field each needs, and the setting that configures each.
FIELDS = {"email": "email", "sms": "phone"}
CONFIGURE = {"email": "LIVEWALL_SMTP_URL", "sms": "LIVEWALL_SMS_URL"}
# The open pixel: a 1x1 transparent GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
INBOX_SHOWN = 10


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def links(services: Services) -> Links:
    return services.engines.get(Runner).links


def _viewer(request: Request) -> str:
    viewer_id = viewer_from_cookie(_services(request), request)
    if viewer_id is None:
        raise Unauthorized("join the room first")
    return viewer_id


async def _from_phone(request: Request) -> tuple[Services, str, str, dict[str, Any]]:
    """A viewer's request in a room they joined: (services, room id, viewer id, JSON body)."""
    services = _services(request)
    check_origin(request, services.settings.allowed_origins, services.settings.public_url)
    room_id = request.path_params["room_id"]
    viewer_id = _viewer(request)
    await load_room(services.db, room_id)
    async with services.db.session() as session:
        if await session.get(RoomViewer, (room_id, viewer_id)) is None:
            raise Unauthorized("join the room first")
    return services, room_id, viewer_id, await json_body(request)


async def opt_in(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/contact: the phone's opt-in box (email and/or phone, consent per
    channel with the wording shown). Email needs double opt-in: a confirmation email goes out."""
    services, room_id, viewer_id, body = await _from_phone(request)
    details = contacts.clean_details(body)
    lang = body.get("lang") if body.get("lang") in contacts.LOCALES else "zh-CN"
    wording = body.get("wording")
    if not isinstance(wording, str) or not 0 < len(wording) <= 500:
        raise InvalidInput("wording: the consent text the viewer saw (1 to 500 characters)")
    consent = body.get("consent") or {}
    if not isinstance(consent, dict) or not all(isinstance(v, bool) for v in consent.values()):
        raise InvalidInput('consent must be like {"email": true, "sms": false}')
    await _check_configured(services, consent, details)
    says = []
    for channel in ("email", "sms"):
        if consent.get(channel):
            if details[channel if channel == "email" else "phone"] is None:
                raise InvalidInput(
                    f"consent to {channel} needs the {channel if channel == 'email' else 'phone'}"
                )
            status = "pending" if channel == "email" else "granted"
            says.append(
                contacts.Say(
                    channel, status, source="opt-in box", wording=wording, lang=lang, room_id=room_id
                )
            )
    contact, pending = await contacts.identify(
        services.db,
        viewer_id=viewer_id,
        name=details["name"],
        email=details["email"],
        phone=details["phone"],
        tz=details["tz"],
        locale=lang,
        says=says,
    )
    sent = False
    if "email" in pending:
        sent = await queue_confirmation(services.db, room_id, contact, contact.pending_email or contact.email)
        if (runner := services.engines.find(Runner)) is not None:
            runner.wake()
    answer = {"ok": True, "contact": await contact_shape(services, contact), "pending": pending}
    return JSONResponse({**answer, "confirmation_sent": sent})


async def _check_configured(services: Services, consent: dict[str, Any], details: dict[str, Any]) -> None:
    """An address or a consent for a channel no delivering process can send on is refused: the
    person would believe they will hear from the shop there."""
    wanted = [c for c, field in FIELDS.items() if consent.get(c) or details[field] is not None]
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


async def contact_shape(services: Services, contact: Contact | None) -> dict[str, Any] | None:
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
    return {
        "email": mask_email(contact.email) if contact.email else None,
        "phone": mask_phone(contact.phone) if contact.phone else None,
        "tz": contact.tz,
        "consent": {k: v["status"] for k, v in said.items()},
        "push": push is not None,
    }


async def push_key(request: Request) -> JSONResponse:
    """GET /api/push/key: the VAPID public key the browser subscribes with."""
    from server.followup.channels.push import public_key_b64url

    return JSONResponse({"key": public_key_b64url(_services(request).settings)})


# The browsers' push services. The endpoint comes from the browser, and the server will POST to it:
# any other host would let a page make the server call an address of its choice.
PUSH_SERVICES = (
    ".googleapis.com",  # Chrome, Edge on Android, Samsung
    ".push.services.mozilla.com",  # Firefox
    ".notify.windows.com",  # Edge on Windows
    ".push.apple.com",  # Safari
)


def push_service(endpoint: str) -> bool:
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    return parts.scheme == "https" and any(host.endswith(s) or host == s[1:] for s in PUSH_SERVICES)


async def push_subscribe(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/push {subscription, wording, lang}: a browser's push subscription."""
    services, room_id, viewer_id, body = await _from_phone(request)
    sub = body.get("subscription")
    keys = sub.get("keys") if isinstance(sub, dict) else None
    endpoint = sub.get("endpoint") if isinstance(sub, dict) else None
    if (
        not isinstance(endpoint, str)
        or not push_service(endpoint)
        or len(endpoint) > 1000
        or not isinstance(keys, dict)
        or not all(isinstance(keys.get(k), str) and 0 < len(keys[k]) <= 200 for k in ("p256dh", "auth"))
    ):
        raise InvalidInput(
            "subscription must be a PushSubscription (an https endpoint of a browser's push service, "
            "keys p256dh and auth)"
        )
    wording = body.get("wording") if isinstance(body.get("wording"), str) else None
    lang = body.get("lang") if body.get("lang") in contacts.LOCALES else None
    tz = rules.clean_tz(body["tz"]) if body.get("tz") else None
    contact, _ = await contacts.identify(
        services.db,
        viewer_id=viewer_id,
        tz=tz,
        locale=lang,
        says=[
            contacts.Say(
                "push",
                "granted",
                source="push prompt",
                wording=(wording or "")[:500] or None,
                lang=lang,
                room_id=room_id,
            )
        ],
    )
    async with services.db.session() as session:
        found = await session.get(PushSubscription, endpoint)
        if found is None:
            session.add(
                PushSubscription(
                    endpoint=endpoint,
                    contact_id=contact.id,
                    p256dh=keys["p256dh"],
                    auth=keys["auth"],
                    created_ms=now_ms(),
                )
            )
        else:
            found.contact_id, found.p256dh, found.auth = contact.id, keys["p256dh"], keys["auth"]
            session.add(found)
        await session.commit()
    return JSONResponse({"ok": True, "contact": await contact_shape(services, contact)})


async def inbox(services: Services, viewer_id: str) -> list[dict[str, Any]]:
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
    return [{"id": m.id, "subject": m.subject, "text": m.body, "sent_ms": m.sent_ms} for m in rows]


async def inbox_seen(request: Request) -> JSONResponse:
    """POST /api/inbox/{id}/opened: the viewer read an in-app message."""
    services = _services(request)
    check_origin(request, services.settings.allowed_origins, services.settings.public_url)
    viewer_id = _viewer(request)
    raw = request.path_params["message_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise NotFound("no such message")
    async with services.db.session() as session:
        message = await session.get(Message, int(raw))
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


async def click(request: Request) -> Response:
    """GET /t/{token}: count the click, then go where the message pointed (signed: no open redirect)."""
    services = _services(request)
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
            await session.commit()
    return RedirectResponse(url, status_code=302)


async def pixel(request: Request) -> Response:
    """GET /t/o/{token}: the open pixel of an HTML email."""
    services = _services(request)
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
    services = _services(request)
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
    services = _gateway(request)
    body = await json_body(request)
    sender, text = body.get("from"), body.get("text")
    if not isinstance(text, str) or len(text) > 1600:
        raise InvalidInput("text must be the message text")
    phone = clean_phone(sender)
    if phone is None:
        raise InvalidInput("from must be the sender's phone number", code="bad_phone")
    if not rules.is_stop(text):
        return JSONResponse({"ok": True, "stop": False})
    async with services.db.session() as session:
        found = (await session.exec(select(Contact).where(Contact.phone == phone))).all()
    for contact in found:
        await contacts.say(
            services.db,
            contact.id,
            contacts.Say("sms", "blocked", source="sms reply", reason="stop", wording=text),
        )
    return JSONResponse({"ok": True, "stop": True, "contacts": len(found)})


def _gateway(request: Request) -> Services:
    """The SMS gateway calling back, proven by the shared token."""
    services = _services(request)
    token = bearer(request)
    expected = services.settings.sms_token
    if not expected or token is None or not hmac.compare_digest(token, expected):
        raise Unauthorized("send the SMS gateway token as 'Authorization: Bearer ...'")
    return services


async def sms_receipt(request: Request) -> JSONResponse:
    """POST /api/sms/receipts {id, status: delivered|failed, reason?}: the gateway's delivery report
    for a message it accepted (``id`` is the id it answered with)."""
    services = _gateway(request)
    body = await json_body(request)
    provider_id, status = body.get("id"), body.get("status")
    if not isinstance(provider_id, str) or not 0 < len(provider_id) <= 200:
        raise InvalidInput("id must be the gateway's message id")
    if status not in ("delivered", "failed"):
        raise InvalidInput("status must be delivered or failed")
    reason = body.get("reason")
    reason = reason[:200] if isinstance(reason, str) else None
    async with services.db.session() as session:
        found = (
            await session.exec(
                select(Message).where(Message.provider_id == provider_id, Message.channel == "sms")
            )
        ).first()
        if found is None:
            raise NotFound("no message with that id")
        if status == "delivered":
            found.delivered_ms = found.delivered_ms or now_ms()
            if found.status == "sent":
                found.status = "delivered"
        elif found.status in ("sent", "delivered"):
            # Not delivered after all; the number is not blocked: operators see why and may retry.
            found.status, found.reason = "failed", f"gateway: {reason or 'not delivered'}"
        session.add(found)
        await session.commit()
    return JSONResponse({"ok": True, "status": found.status})


async def my_contact(services: Services, viewer_id: str) -> dict[str, Any] | None:
    async with services.db.session() as session:
        link = await session.get(ContactViewer, viewer_id)
        contact = await contacts.live(session, link.contact_id) if link is not None else None
    return await contact_shape(services, contact)


routes = [
    Route("/api/rooms/{room_id}/contact", opt_in, methods=["POST"]),
    Route("/api/rooms/{room_id}/push", push_subscribe, methods=["POST"]),
    Route("/api/push/key", push_key),
    Route("/api/inbox/{message_id}/opened", inbox_seen, methods=["POST"]),
    Route("/t/o/{token}", pixel),
    Route("/t/{token}", click),
    Route("/u/{token}", unsubscribe, methods=["GET", "POST"]),
    Route("/optin/{token}", confirm, methods=["GET", "POST"]),
    Route("/api/sms/inbound", sms_inbound, methods=["POST"]),
    Route("/api/sms/receipts", sms_receipt, methods=["POST"]),
]
