"""Contacts: one person across devices and rooms, merged with their history; consent merges safely."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlmodel import select

from server.followup import contacts
from server.followup.contacts import Say
from server.rooms.actions import create_room
from server.storage import Database, now_ms
from server.storage.followup import Consent, ContactViewer, JourneyInstance, Message
from server.storage.models import Viewer


async def _db(tmp: Path) -> Database:
    db = Database(f"sqlite:///{tmp / 'c.db'}")
    await asyncio.to_thread(db.migrate)
    return db


async def test_a_typed_address_never_takes_over_someone_else(tmp_path: Path) -> None:
    """Another device typing a known email or phone gets nothing of that contact: the email waits for
    its confirmation, the phone is not attached and its SMS consent is not recorded."""
    db = await _db(tmp_path)
    victim, _ = await contacts.identify(
        db,
        viewer_id="va",
        email="li@example.com",
        phone="+8613800138000",
        says=[Say("sms", "granted", source="box")],
    )
    other, pending = await contacts.identify(
        db,
        viewer_id="vb",
        email="li@example.com",
        phone="+8613800138000",
        says=[Say("email", "pending", source="box"), Say("sms", "granted", source="box")],
    )
    assert other.id != victim.id
    assert pending == ["email"]  # a confirmation goes to the mailbox, which decides
    assert (other.email, other.pending_email, other.phone) == (None, "li@example.com", None)
    assert await contacts.consents(db, other.id) == {}
    async with db.session() as session:
        unchanged = await contacts.live(session, victim.id)
    assert unchanged is not None and unchanged.phone == "+8613800138000"
    await db.dispose()


async def test_confirmed_email_merges_devices_into_one_contact(tmp_path: Path) -> None:
    """Both devices confirmed the same mailbox: the second device's contact merges into the first."""
    db = await _db(tmp_path)
    first, pending = await contacts.identify(
        db, viewer_id="va", email="li@example.com", says=[Say("email", "pending", source="box", wording="A")]
    )
    assert pending == ["email"] and first.email == "li@example.com"
    assert await contacts.confirm_email(db, first.id, "li@example.com") is not None
    second, pending = await contacts.identify(
        db, viewer_id="vb", email="li@example.com", says=[Say("email", "pending", source="box", wording="B")]
    )
    assert pending == ["email"] and second.id != first.id
    merged = await contacts.confirm_email(db, second.id, "li@example.com")
    assert merged is not None and merged.id == first.id
    assert await contacts.confirm_email(db, second.id, "other@example.com") is None
    async with db.session() as session:
        links = {
            link.viewer_id: link.contact_id for link in (await session.exec(select(ContactViewer))).all()
        }
        gone = await contacts.live(session, second.id)
    assert links == {"va": first.id, "vb": first.id}
    assert gone is not None and gone.id == first.id
    said = await contacts.consents(db, first.id)
    assert said["email"]["status"] == "granted" and said["email"]["source"] == "double opt-in"
    await db.dispose()


async def test_a_new_number_does_not_inherit_sms_consent(tmp_path: Path) -> None:
    """Changing one's own number withdraws SMS consent unless the same form grants it again."""
    db = await _db(tmp_path)
    c, _ = await contacts.identify(
        db, viewer_id="va", phone="+8613800138000", says=[Say("sms", "granted", source="box")]
    )
    await contacts.identify(db, viewer_id="va", phone="+8613900139000")
    said = await contacts.consents(db, c.id)
    assert said["sms"]["status"] == "withdrawn"
    await db.dispose()


async def test_anonymous_history_follows_the_person(tmp_path: Path) -> None:
    """Journeys and in-app messages started while anonymous become the contact's; a duplicate
    instance of the same journey and key is cancelled, not run twice."""
    db = await _db(tmp_path)
    room, _ = await create_room(db, title="r")
    t = now_ms()
    async with db.session() as session:
        for vid in ("va", "vb"):
            session.add(Viewer(id=vid, created_ms=t))
        await session.flush()
        from server.followup.store import ensure_room

        await ensure_room(session, room.id)
        await session.commit()
    first, _ = await contacts.identify(db, viewer_id="va", email="li@example.com")
    assert await contacts.confirm_email(db, first.id, "li@example.com") is not None
    async with db.session() as session:
        for subject in (f"c:{first.id}", "v:vb"):
            session.add(
                JourneyInstance(
                    journey_id=1, room_id=room.id, subject=subject, viewer_id=None, entry_key="7",
                    wake_ms=t, created_ms=t,
                )
            )  # fmt: skip
        session.add(
            Message(
                idem_key="m1",
                room_id=room.id,
                viewer_id="vb",
                channel="inapp",
                template="x",
                next_ms=t,
                created_ms=t,
            )
        )
        await session.commit()
    again, _ = await contacts.identify(db, viewer_id="vb", email="li@example.com")
    assert again.id != first.id  # not merged until the address is confirmed from vb's form
    merged = await contacts.confirm_email(db, again.id, "li@example.com")
    assert merged is not None and merged.id == first.id
    async with db.session() as session:
        rows = (await session.exec(select(JourneyInstance).order_by(JourneyInstance.id))).all()
        message = (await session.exec(select(Message))).one()
    assert (rows[0].subject, rows[0].status) == (f"c:{first.id}", "active")
    assert rows[1].status == "cancelled" and rows[1].end_reason == "merged"
    assert message.contact_id == first.id
    await db.dispose()


async def test_do_not_contact_survives_merges_and_pending(tmp_path: Path) -> None:
    """Blocked on either side stays blocked after a merge; a new opt-in box cannot silently lift it."""
    db = await _db(tmp_path)
    a, _ = await contacts.identify(db, viewer_id="va", email="li@example.com")
    assert await contacts.confirm_email(db, a.id, "li@example.com") is not None
    await contacts.say(db, a.id, Say("email", "blocked", source="host console", reason="complaint"))
    b, _ = await contacts.identify(
        db, viewer_id="vb", phone="+8613800138000", says=[Say("email", "granted", source="later box")]
    )
    _, pending = await contacts.identify(
        db, viewer_id="vb", email="li@example.com", says=[Say("email", "pending", source="opt-in box")]
    )
    assert pending == ["email"]
    merged = await contacts.confirm_email(db, b.id, "li@example.com")
    assert merged is not None and merged.id == a.id
    said = await contacts.consents(db, merged.id)
    assert said["email"]["status"] == "blocked" and said["email"]["reason"] == "complaint"
    async with db.session() as session:
        assert (await session.exec(select(Consent).where(Consent.contact_id == b.id))).all() == []
    await db.dispose()
