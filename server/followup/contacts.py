"""Contacts, identity merge and consent.

Merge rules (docs/followup.md#contacts):
- a viewer id belongs to at most one contact; typing an address never attaches someone else's: an
  email that another contact has (or a changed email) waits as ``pending_email`` until its
  confirmation link is confirmed; then, if the other contact had confirmed it too, both are one
  person, merged into the oldest; if not, the other contact (which only typed it) loses it;
  a phone number that another contact has is not attached at all (numbers are not verified);
- the merged contact keeps nothing of its own: its viewer ids, push subscriptions, messages and
  journey instances move to the survivor (an instance that would duplicate one the survivor already
  runs is cancelled as ``merged``), and it points at the survivor;
- consent merges per channel: do-not-contact on either side wins; otherwise the newer say wins;
- journey instances started while the person was anonymous (``v:<viewer>``) become theirs.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.errors import InvalidInput
from server.followup.store import insert_ignore, new_message
from server.storage import Database, now_ms
from server.storage.followup import (
    Consent,
    ConsentLog,
    Contact,
    ContactViewer,
    JourneyInstance,
    Message,
    PushSubscription,
)
from server.storage.models import Viewer

CONSENT_CHANNELS = ("email", "sms", "push", "inapp")
LOCALES = ("en", "zh-CN")


@dataclass
class Say:
    """One consent statement: what the person agreed to (or refused), where, in which words."""

    channel: str
    status: str  # pending | granted | withdrawn | blocked
    source: str
    wording: str | None = None
    lang: str | None = None
    reason: str | None = None
    room_id: str | None = None


async def contact_of_viewer(session: AsyncSession, viewer_id: str) -> Contact | None:
    link = await session.get(ContactViewer, viewer_id)
    return None if link is None else await live(session, link.contact_id)


async def live(session: AsyncSession, contact_id: str) -> Contact | None:
    """The contact, following merges to the one that absorbed it."""
    contact = await session.get(Contact, contact_id)
    for _ in range(10):  # merges chain at most a few times; the bound guards against a cycle
        if contact is None or contact.merged_into is None:
            return contact
        contact = await session.get(Contact, contact.merged_into)
    return contact


async def _by(session: AsyncSession, field: str, value: str | None) -> Contact | None:
    if value is None:
        return None
    column = col(Contact.email) if field == "email" else col(Contact.phone)
    return (
        await session.exec(
            select(Contact)
            .where(column == value, col(Contact.merged_into).is_(None))
            .order_by(col(Contact.created_ms))
        )
    ).first()


async def set_consent(session: AsyncSession, contact_id: str, say: Say) -> bool:
    """Record a say (and its log line); False when it changes nothing. Do-not-contact is only lifted
    by a new explicit grant, never by a merge or a pending double opt-in."""
    current = await session.get(Consent, (contact_id, say.channel))
    t = now_ms()
    if current is not None:
        if current.status == say.status and current.reason == say.reason:
            return False
        if current.status == "blocked" and say.status != "granted":
            return False  # do-not-contact stays until a new explicit grant
        if current.status == "granted" and say.status == "pending":
            return False  # already confirmed: a repeated opt-in needs no second confirmation
        current.status, current.reason, current.source = say.status, say.reason, say.source
        current.wording, current.lang, current.updated_ms = say.wording, say.lang, t
        session.add(current)
    else:
        session.add(
            Consent(
                contact_id=contact_id,
                channel=say.channel,
                status=say.status,
                reason=say.reason,
                source=say.source,
                wording=say.wording,
                lang=say.lang,
                updated_ms=t,
            )
        )
    _log(session, contact_id, say, t)
    return True


def _log(session: AsyncSession, contact_id: str, say: Say, t: int) -> None:
    session.add(
        ConsentLog(
            contact_id=contact_id,
            channel=say.channel,
            status=say.status,
            reason=say.reason,
            source=say.source,
            wording=say.wording,
            lang=say.lang,
            room_id=say.room_id,
            created_ms=t,
        )
    )


async def _merge(session: AsyncSession, survivor: Contact, other: Contact) -> None:
    t = now_ms()
    await session.exec(
        update(ContactViewer).where(col(ContactViewer.contact_id) == other.id).values(contact_id=survivor.id)
    )
    await session.exec(
        update(PushSubscription)
        .where(col(PushSubscription.contact_id) == other.id)
        .values(contact_id=survivor.id)
    )
    await session.exec(
        update(Message).where(col(Message.contact_id) == other.id).values(contact_id=survivor.id)
    )
    await _move_instances(session, f"c:{other.id}", f"c:{survivor.id}")
    theirs = (await session.exec(select(Consent).where(Consent.contact_id == other.id))).all()
    for consent in theirs:
        mine = await session.get(Consent, (survivor.id, consent.channel))
        if mine is None or (
            mine.status != "blocked" and (consent.status == "blocked" or consent.updated_ms > mine.updated_ms)
        ):
            await set_consent(
                session,
                survivor.id,
                Say(
                    consent.channel,
                    consent.status,
                    source=f"merge:{other.id}",
                    wording=consent.wording,
                    lang=consent.lang,
                    reason=consent.reason,
                ),
            )
        await session.delete(consent)
    survivor.name = survivor.name or other.name
    if survivor.email is None and other.email is not None:
        survivor.email, survivor.email_verified_ms = other.email, other.email_verified_ms
    survivor.phone = survivor.phone or other.phone
    other.email = other.phone = other.pending_email = None
    other.merged_into, other.updated_ms = survivor.id, t
    session.add(other)


async def _move_instances(session: AsyncSession, old: str, new: str) -> None:
    """Journey instances of ``old`` become ``new``'s; where ``new`` already runs the same journey for
    the same key, the moved one is cancelled (one instance per person, journey and key)."""
    moving = (await session.exec(select(JourneyInstance).where(JourneyInstance.subject == old))).all()
    for inst in moving:
        twin = (
            await session.exec(
                select(JourneyInstance.id).where(
                    JourneyInstance.journey_id == inst.journey_id,
                    JourneyInstance.subject == new,
                    JourneyInstance.entry_key == inst.entry_key,
                )
            )
        ).first()
        if twin is not None:
            inst.subject = f"x:{inst.id}"  # frees the unique key; the row stays for the record
            if inst.status == "active":
                inst.status, inst.end_reason, inst.ended_ms = "cancelled", "merged", now_ms()
        else:
            inst.subject = new
        session.add(inst)


async def identify(
    db: Database,
    *,
    viewer_id: str,
    name: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    tz: str | None = None,
    locale: str | None = None,
    says: list[Say] | None = None,
) -> tuple[Contact, list[str]]:
    """The contact of this viewer after they left these details (created, found or merged), and the
    channels whose consent became pending (email double opt-in to send)."""
    if locale is not None and locale not in LOCALES:
        raise InvalidInput(f"locale must be one of {', '.join(LOCALES)}")
    for attempt in range(3):
        try:
            return await _identify(db, viewer_id, name, email, phone, tz, locale, says or [])
        except IntegrityError:  # two tabs of one viewer at once: the other one created the link
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _identify(
    db: Database,
    viewer_id: str,
    name: str | None,
    email: str | None,
    phone: str | None,
    tz: str | None,
    locale: str | None,
    says: list[Say],
) -> tuple[Contact, list[str]]:
    t = now_ms()
    async with db.session() as session:
        contact = await contact_of_viewer(session, viewer_id)
        if contact is None:
            # Left by a form that does not say its language (a prize claim): the phone's language.
            viewer = await session.get(Viewer, viewer_id)
            first = locale or (viewer.locale if viewer is not None else None)
            contact = Contact(id=uuid.uuid4().hex, created_ms=t, updated_ms=t)
            contact.locale = first or contact.locale
            session.add(contact)
            await session.flush()
            session.add(ContactViewer(viewer_id=viewer_id, contact_id=contact.id, created_ms=t))
        says = list(says)
        confirm_new = False
        if email is not None and email != contact.email:
            if contact.email is None and await _by(session, "email", email) is None:
                contact.email = email  # a first address nobody has: marketing still waits for the opt-in
            else:
                # Someone else's address, or a change of address: only the confirmation link, which
                # goes to that mailbox, attaches it (and merges with its owner).
                contact.pending_email = email
                confirm_new = True
        if phone is not None and phone != contact.phone:
            if await _by(session, "phone", phone) is None:
                if contact.phone is not None:  # a new number does not inherit the old one's consent
                    await set_consent(session, contact.id, Say("sms", "withdrawn", "number changed"))
                contact.phone = phone
            else:
                # Another contact's number: never attached unverified (it would hand their texts
                # to whoever typed it); this form's SMS consent is not recorded.
                says = [x for x in says if x.channel != "sms"]
        contact.name = name or contact.name
        contact.tz = tz or contact.tz
        contact.locale = locale or contact.locale
        contact.updated_ms = t
        session.add(contact)
        await _move_instances(session, f"v:{viewer_id}", f"c:{contact.id}")
        await session.exec(
            update(Message)
            .where(col(Message.viewer_id) == viewer_id, col(Message.contact_id).is_(None))
            .values(contact_id=contact.id)
        )
        pending: list[str] = []
        for statement in says:
            if statement.channel == "email" and confirm_new:
                _log(session, contact.id, statement, t)  # kept for the confirmation; nothing granted yet
                pending.append("email")
                continue
            changed = await set_consent(session, contact.id, statement)
            if changed and statement.status == "pending":
                pending.append(statement.channel)
        await session.commit()
    return contact, pending


async def confirm_email(db: Database, contact_id: str, address: str) -> Contact | None:
    """The double opt-in link was opened: ``address`` is proven to be this person's. It becomes the
    contact's email (merging with the contact that already had it, the older surviving) and email
    consent is granted with the wording they agreed to. None if the link no longer applies."""
    async with db.session() as session:
        contact = await live(session, contact_id)
        if contact is None or address not in (contact.email, contact.pending_email):
            return None
        owner = await _by(session, "email", address)
        if owner is not None and owner.id != contact.id:
            if owner.email_verified_ms is None:
                # The other contact only typed this address (perhaps someone else's): it loses it.
                owner.email = None
                session.add(owner)
            else:
                # Both proved the mailbox: one person on two devices.
                survivor, other = sorted((contact, owner), key=lambda c: (c.created_ms, c.id))
                await _merge(session, survivor, other)
                contact = survivor
        contact.email, contact.pending_email = address, None
        contact.email_verified_ms = now_ms()
        session.add(contact)
        consent = await session.get(Consent, (contact.id, "email"))
        if consent is not None and consent.status == "blocked":  # only a new explicit grant lifts it
            await session.commit()
            return contact
        agreed = (
            await session.exec(
                select(ConsentLog)
                .where(
                    col(ConsentLog.contact_id).in_([contact_id, contact.id]),
                    ConsentLog.channel == "email",
                    ConsentLog.status == "pending",
                )
                .order_by(col(ConsentLog.id).desc())
            )
        ).first()
        await set_consent(
            session,
            contact.id,
            Say(
                "email",
                "granted",
                source="double opt-in",
                wording=agreed.wording if agreed else None,
                lang=agreed.lang if agreed else None,
                room_id=agreed.room_id if agreed else None,
            ),
        )
        await session.commit()
    return contact


async def consents(db: Database, contact_id: str) -> dict[str, dict[str, Any]]:
    async with db.session() as session:
        rows = (await session.exec(select(Consent).where(Consent.contact_id == contact_id))).all()
    return {
        r.channel: {"status": r.status, "reason": r.reason, "source": r.source, "updated_ms": r.updated_ms}
        for r in rows
    }


async def say(db: Database, contact_id: str, statement: Say) -> bool:
    """Record one consent statement for a contact (unsubscribe, STOP, do-not-contact, confirm)."""
    async with db.session() as session:
        contact = await live(session, contact_id)
        if contact is None:
            raise InvalidInput("no such contact", code="unknown_contact")
        changed = await set_consent(session, contact.id, statement)
        await session.commit()
    return changed


async def subject_contact(session: AsyncSession, subject: str) -> Contact | None:
    """The contact a journey instance's subject names now (an anonymous viewer may have become one)."""
    kind, _, ident = subject.partition(":")
    if kind == "c":
        return await live(session, ident)
    if kind == "v":
        return await contact_of_viewer(session, ident)
    return None


# Confirmation emails per contact and address a day, and per address across contacts: the opt-in
# box must not become a way to mail-bomb someone from the shop's domain.
CONFIRMATIONS_PER_DAY = 3


async def queue_confirmation(db: Database, room_id: str, contact: Contact, address: str | None) -> bool:
    """The double opt-in email to ``address``: at most one per contact, address and day (whatever the
    retries), and a few per address a day in all. False when the limit held it back."""
    if address is None:
        return False
    t = now_ms()
    digest = hashlib.sha256(address.encode()).hexdigest()[:16]
    day = t // 86_400_000
    async with db.session() as session:
        recent = (
            await session.exec(
                select(func.count())
                .select_from(Message)
                .where(
                    col(Message.idem_key).like(f"optin:%:{digest}:%"),
                    col(Message.created_ms) >= t - 86_400_000,
                )
            )
        ).one()
        if recent >= CONFIRMATIONS_PER_DAY:
            return False
        await insert_ignore(
            session,
            Message,
            new_message(
                t,
                idem_key=f"optin:{contact.id}:{digest}:{day}",
                room_id=room_id,
                contact_id=contact.id,
                channel="email",
                template="confirm-email",
                transactional=True,
                context=orjson.dumps({"address": address}).decode(),
            ),
        )
        await session.commit()
    return True
