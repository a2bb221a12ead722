"""Campaigns: a segment of a room's audience becomes messages, one per person, in chunks.

Messages are created by the worker holding the campaign's lease, with the key ``campaign + person``,
so a filler that crashed is resumed by another without duplicates.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.followup.store import insert_ignore, new_message
from server.storage import Database, now_ms
from server.storage.followup import (
    Campaign,
    ContactViewer,
    Message,
)
from server.storage.models import Claim, Draw, DrawWinner, Follow, IntentEvent, RoomViewer

# Campaign messages are created in chunks, each its own transaction (a crash resumes where it was).
CAMPAIGN_CHUNK = 500


async def segment_people(session: AsyncSession, room_id: str, segment: str) -> list[tuple[str, str | None]]:
    """(viewer id, contact id or None) of a room's audience segment, one row per person."""
    ev = IntentEvent
    viewers: Any
    if segment == "attended":
        viewers = select(RoomViewer.viewer_id).where(RoomViewer.room_id == room_id)
    elif segment == "clicked_not_paid":
        # A payment names its viewer, or only its order: then the viewer of the order's other events.
        order = aliased(IntentEvent)
        paid_orders = select(ev.order_id).where(
            ev.room_id == room_id, ev.kind == "order.paid", col(ev.order_id).is_not(None)
        )
        paid = (
            select(ev.viewer_id)
            .where(ev.room_id == room_id, ev.kind == "order.paid", col(ev.viewer_id).is_not(None))
            .union(
                select(order.viewer_id).where(
                    order.room_id == room_id,
                    col(order.order_id).in_(paid_orders),
                    col(order.viewer_id).is_not(None),
                )
            )
        )
        viewers = select(ev.viewer_id).where(
            ev.room_id == room_id, ev.kind == "product.buy", col(ev.viewer_id).not_in(paid)
        )
    elif segment == "claimed_not_redeemed":
        viewers = select(Claim.viewer_id).where(
            Claim.room_id == room_id, col(Claim.status).in_(["reserved", "expired", "released"])
        )
    elif segment == "winners":
        viewers = (
            select(DrawWinner.viewer_id)
            .join(Draw, col(Draw.id) == col(DrawWinner.draw_id))
            .where(Draw.room_id == room_id, DrawWinner.status != "absent")
        )
    elif segment == "followers":
        viewers = select(Follow.viewer_id).where(Follow.room_id == room_id)
    elif segment == "contacts":
        viewers = select(RoomViewer.viewer_id).where(
            RoomViewer.room_id == room_id,
            col(RoomViewer.viewer_id).in_(select(ContactViewer.viewer_id)),
        )
    else:
        raise ValueError(segment)
    viewer_ids = sorted({v for v in (await session.exec(viewers)).all() if v is not None})
    links: dict[str, str] = {}
    for i in range(0, len(viewer_ids), 500):
        chunk = viewer_ids[i : i + 500]
        for link in (
            await session.exec(select(ContactViewer).where(col(ContactViewer.viewer_id).in_(chunk)))
        ).all():
            links[link.viewer_id] = link.contact_id
    rows = [(v, links.get(v)) for v in viewer_ids]
    people: dict[str, tuple[str, str | None]] = {}
    for viewer_id, contact_id in rows:
        # Links always name a live contact: a merge moves them to the survivor.
        person = f"c:{contact_id}" if contact_id else f"v:{viewer_id}"
        people.setdefault(person, (viewer_id, contact_id))
    return list(people.values())


# A worker filling a campaign holds it this long; a crash lets another worker resume the filling.
CAMPAIGN_LEASE_MS = 120_000


def _fillable(t: int) -> Any:
    """Campaigns to fill now: due ones, and those whose filler died before finishing."""
    return or_(
        (col(Campaign.status) == "scheduled") & (col(Campaign.send_ms) <= t),
        (col(Campaign.status) == "sending")
        & col(Campaign.populated).is_(False)
        & (col(Campaign.lease_ms) < t),
    )


async def start_campaigns(db: Database) -> int:
    """Due campaigns: their segment becomes messages (one per person, idempotent by campaign, so a
    filler that crashed is resumed by the next without duplicates)."""
    t = now_ms()
    async with db.session() as session:
        ids = (
            await session.exec(select(Campaign.id).where(_fillable(t)).with_for_update(skip_locked=True))
        ).all()
        mine = []
        for campaign_id in ids:
            taken = await session.exec(
                update(Campaign)
                .where(col(Campaign.id) == campaign_id, _fillable(t))
                .values(status="sending", lease_ms=t + CAMPAIGN_LEASE_MS)
            )
            if taken.rowcount:
                mine.append(campaign_id)
        await session.commit()
        due = (
            list((await session.exec(select(Campaign).where(col(Campaign.id).in_(mine)))).all())
            if mine
            else []
        )
    for campaign in due:
        async with db.session() as session:
            people = await segment_people(session, campaign.room_id, campaign.segment)
        for i in range(0, len(people), CAMPAIGN_CHUNK):
            async with db.session() as session:
                for viewer_id, contact_id in people[i : i + CAMPAIGN_CHUNK]:
                    await insert_ignore(
                        session,
                        Message,
                        new_message(
                            t,
                            idem_key=f"k{campaign.id}:{contact_id or viewer_id}",
                            room_id=campaign.room_id,
                            campaign_id=campaign.id,
                            contact_id=contact_id,
                            viewer_id=viewer_id,
                            channel=campaign.channel,
                            template=campaign.template,
                        ),
                    )
                await session.commit()
        async with db.session() as session:
            await session.exec(
                update(Campaign)
                .where(col(Campaign.id) == campaign.id)
                .values(total=len(people), populated=True, lease_ms=0)
            )
            # Cancelled while it was being filled: what was just created does not go out either.
            await session.exec(
                update(Message)
                .where(
                    col(Message.campaign_id) == campaign.id,
                    col(Message.status) == "scheduled",
                    col(Message.campaign_id).in_(select(Campaign.id).where(Campaign.status == "cancelled")),
                )
                .values(status="cancelled", reason="campaign cancelled")
            )
            await session.commit()
    return len(due)


async def finish_campaigns(db: Database) -> None:
    """A sending campaign is done once all its messages exist and none of them waits any more."""
    async with db.session() as session:
        sending = (
            await session.exec(
                select(Campaign).where(Campaign.status == "sending", col(Campaign.populated).is_(True))
            )
        ).all()
        for campaign in sending:
            waiting = (
                await session.exec(
                    select(func.count())
                    .select_from(Message)
                    .where(
                        Message.campaign_id == campaign.id,
                        col(Message.status).in_(["scheduled", "claimed", "sending", "uncertain"]),
                    )
                )
            ).one()
            if waiting == 0:
                await session.exec(
                    update(Campaign)
                    .where(col(Campaign.id) == campaign.id, col(Campaign.status) == "sending")
                    .values(status="done")
                )
        await session.commit()
