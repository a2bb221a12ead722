"""Go-live reminders (预约直播): a viewer taps "remind me" on a scheduled room's page; when the room
goes live each of them gets one message on the best follow-up channel they consented to, else an
in-app message that waits for them (docs/followup.md, "Go-live reminders").

The host's start is never held up: ``on_live`` hands the room to the ``Reminders`` engine, whose
task writes the messages in chunks. Each message's key is ``live:{room}:{viewer}``, and a reminder is
marked sent in the same transaction that queues it, so a second start (or two processes) never
sends twice. The messages are transactional (the viewer asked for exactly this one): quiet hours and
the frequency cap do not hold them, but only a channel with a granted consent is chosen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.errors import Conflict
from server.followup import checks, contacts, defaults, reach
from server.followup.edge import from_phone, services_of
from server.followup.runner import Runner
from server.followup.store import ensure_room, insert_ignore, new_message
from server.rooms.actions import load_room
from server.rooms.identity import viewer_from_cookie
from server.services import Services
from server.storage import Database, now_ms
from server.storage.accounts import Reminder
from server.storage.followup import Consent, Message, Template

log = logging.getLogger("livewall.studio.reminders")

TEMPLATE = "room-live"
# Reminders are queued this many to a transaction (a crash resumes at the next unsent one).
CHUNK = 200
# Consented channels, best first (follow-up's own order for ``auto`` messages, in-app last).
ORDER = ("push", "email", "sms")


# --- the phone's routes --------------------------------------------------------------------------------


async def reminder_state(request: Request) -> JSONResponse:
    """GET /api/rooms/{room}/reminder: whether this phone asked to be reminded, and the room's status."""
    services = services_of(request)
    room = await load_room(services.db, request.path_params["room_id"])
    viewer_id = viewer_from_cookie(services, request)
    found = None
    if viewer_id is not None:
        async with services.db.session() as session:
            found = await session.get(Reminder, (room.id, viewer_id))
    return JSONResponse({"set": found is not None, "status": room.status, "scheduled_ms": room.scheduled_ms})


async def set_reminder(request: Request) -> JSONResponse:
    """POST /api/rooms/{room}/reminder: remind this viewer when the room goes live (idempotent);
    409 unless the room is scheduled."""
    services, room_id, viewer_id = await from_phone(request)
    room = await load_room(services.db, room_id)
    if room.status != "scheduled":
        raise Conflict(f"the room is {room.status}: reminders are for scheduled rooms", code="not_scheduled")
    async with services.db.session() as session:
        await insert_ignore(
            session, Reminder, {"room_id": room_id, "viewer_id": viewer_id, "created_ms": now_ms()}
        )
        await session.commit()
        contact = await contacts.contact_of_viewer(session, viewer_id)
        granted = await _granted(session, contact.id) if contact is not None else set()
    return JSONResponse({"ok": True, "set": True, "consented": sorted(granted)})


async def cancel_reminder(request: Request) -> JSONResponse:
    """DELETE /api/rooms/{room}/reminder: no reminder after all (one already sent stays sent)."""
    services, room_id, viewer_id = await from_phone(request)
    async with services.db.session() as session:
        await session.exec(
            delete(Reminder).where(
                col(Reminder.room_id) == room_id,
                col(Reminder.viewer_id) == viewer_id,
                col(Reminder.sent_ms).is_(None),
            )
        )
        await session.commit()
    return JSONResponse({"ok": True, "set": False})


routes = [
    Route("/api/rooms/{room_id}/reminder", reminder_state, methods=["GET"]),
    Route("/api/rooms/{room_id}/reminder", set_reminder, methods=["POST"]),
    Route("/api/rooms/{room_id}/reminder", cancel_reminder, methods=["DELETE"]),
]


# --- going live ----------------------------------------------------------------------------------------


async def _granted(session: AsyncSession, contact_id: str) -> set[str]:
    rows = await session.exec(
        select(Consent.channel).where(Consent.contact_id == contact_id, Consent.status == "granted")
    )
    return set(rows.all())


async def pick(session: AsyncSession, viewer_id: str, configured: Collection[str]) -> tuple[str, str | None]:
    """(channel, contact id): the best configured channel this viewer granted consent to and has an
    address on, else in-app (which needs neither)."""
    contact = await contacts.contact_of_viewer(session, viewer_id)
    if contact is None:
        return "inapp", None
    granted = await _granted(session, contact.id)
    for channel in ORDER:
        if channel not in configured or channel not in granted:
            continue
        if channel == "push":
            if await checks.push_subs(session, contact.id):
                return channel, contact.id
        elif checks.address_of(contact, channel, viewer_id) is not None:
            return channel, contact.id
    return "inapp", contact.id


async def _ensure_template(session: AsyncSession, room_id: str) -> None:
    """The room's ready-made templates, and "room-live" for rooms set up before it existed."""
    await ensure_room(session, room_id)
    t = now_ms()
    for (key, locale), (subject, body) in defaults.TEMPLATES.items():
        if key == TEMPLATE:
            values = {"room_id": room_id, "key": key, "channel": "*", "locale": locale}
            await insert_ignore(
                session, Template, {**values, "subject": subject, "body": body, "updated_ms": t}
            )


async def send_reminders(db: Database, room_id: str) -> int:
    """Queue one message per unsent reminder of the room and mark it sent; the number queued."""
    configured = await reach.configured(db, fresh=True)
    async with db.session() as session:
        await _ensure_template(session, room_id)
        await session.commit()
    queued = 0
    while True:
        t = now_ms()
        async with db.session() as session:
            viewers = (
                await session.exec(
                    select(Reminder.viewer_id)
                    .where(Reminder.room_id == room_id, col(Reminder.sent_ms).is_(None))
                    .order_by(col(Reminder.viewer_id))
                    .limit(CHUNK)
                )
            ).all()
            if not viewers:
                return queued
            for viewer_id in viewers:
                channel, contact_id = await pick(session, viewer_id, configured)
                fields = new_message(
                    t,
                    idem_key=f"live:{room_id}:{viewer_id}",
                    room_id=room_id,
                    contact_id=contact_id,
                    viewer_id=viewer_id,
                    channel=channel,
                    template=TEMPLATE,
                    transactional=True,
                )
                queued += await insert_ignore(session, Message, fields)
            await session.exec(
                update(Reminder)
                .where(col(Reminder.room_id) == room_id, col(Reminder.viewer_id).in_(list(viewers)))
                .values(sent_ms=t)
            )
            await session.commit()


class Reminders:
    """The tasks sending a room's reminders after it went live (the start does not wait for them)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def spawn(self, room_id: str) -> asyncio.Task[None]:
        task = asyncio.create_task(self._send(room_id), name=f"livewall-reminders-{room_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _send(self, room_id: str) -> None:
        try:
            queued = await send_reminders(self.services.db, room_id)
        except Exception:
            # The reminders stay unsent: the next start of the room tries them again.
            log.exception("go-live reminders of room %s could not be queued", room_id)
            return
        if queued and (runner := self.services.engines.find(Runner)) is not None:
            runner.wake()


def build(services: Services) -> Reminders:
    return Reminders(services)


async def on_live(services: Services, room_id: str) -> None:
    """The room went live: its reminders go out (in the background)."""
    services.engines.get(Reminders).spawn(room_id)
