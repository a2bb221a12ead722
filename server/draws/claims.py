"""Winners' claims: a winner leaves a name and a phone or email (and their consent to follow-up) before
the claim window ends. Follow-up reacts through the ``on_draw_claim`` hook."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col, select

from server.auth import Principal
from server.domain import PrizeClaim
from server.draws import store, wire
from server.draws.actions import publish
from server.errors import Conflict, Forbidden
from server.i18n import DEFAULT_LOCALE, translate
from server.intents import log as intents
from server.intents.log import SalesBoard
from server.services import Services
from server.storage import now_ms
from server.storage.models import Draw, DrawWinner


async def check_claim(
    services: Services, principal: Principal, claim: wire.Claim, t: int
) -> tuple[Draw, DrawWinner, wire.Contact]:
    """A claim in time, by a winner, with a valid contact: the draw, the winner's place, the contact."""
    assert principal.viewer_id is not None
    d = await store.load_draw(services.db, principal.room_id, claim.id)
    if d.claim_until_ms is None or t >= d.claim_until_ms:
        raise Conflict("the time to claim this prize is over", code="claim_closed")
    async with services.db.session() as session:
        mine = (
            await session.exec(
                select(DrawWinner).where(
                    DrawWinner.draw_id == d.id,
                    DrawWinner.viewer_id == principal.viewer_id,
                    col(DrawWinner.status).in_(("won", "confirmed", "claimed")),
                )
            )
        ).first()
    if mine is None:
        raise Forbidden("only a winner can claim this prize", code="not_a_winner")
    return d, mine, wire.checked(claim.contact)


async def do_claim(services: Services, principal: Principal, claim: wire.Claim) -> DrawWinner:
    """A winner leaves a name and a phone or email (and their consent to follow-up), in time. Follow-up
    reacts through the ``on_draw_claim`` hook (the winner becomes a contact)."""
    assert principal.viewer_id is not None
    lang = claim.lang or DEFAULT_LOCALE
    # The consent is kept with the words the winner saw (follow-up messaging checks it).
    consent_text = translate(lang, "lucky.claim.consent")
    t = now_ms()
    d, mine, contact = await check_claim(services, principal, claim, t)
    async with services.db.session() as session:
        # Conditional: a place marked absent a moment ago is not claimed back.
        result = await session.exec(
            update(DrawWinner)
            .where(col(DrawWinner.id) == mine.id, col(DrawWinner.status).in_(("won", "confirmed", "claimed")))
            .values(
                claim_name=contact.name,
                claim_phone=contact.phone,
                claim_email=contact.email,
                consent=contact.consent,
                consent_text=consent_text if contact.consent else None,
                claimed_ms=t,
                status="claimed",
            )
        )
        await session.commit()
        if result.rowcount != 1:
            raise Forbidden("only a winner can claim this prize", code="not_a_winner")
        session.add(mine)
        await session.refresh(mine)
    await intents.record(
        services.db, room_id=d.room_id, viewer_id=principal.viewer_id, kind="draw.claimed",
        event_id=f"draw:{d.id}:claimed:{principal.viewer_id}",
        data={"draw": d.code, "consent": contact.consent, "consent_text": mine.consent_text},
        board=services.engines.find(SalesBoard),
    )  # fmt: skip
    prize = PrizeClaim(
        room_id=d.room_id,
        viewer_id=principal.viewer_id,
        name=contact.name,
        phone=contact.phone,
        email=contact.email,
        consent=contact.consent,
        wording=mine.consent_text,
        lang=lang,
    )
    for hook in services.registry.draw_claim_hooks:
        await hook(services, prize)
    await publish(services.db, services.hub, d)
    return mine
