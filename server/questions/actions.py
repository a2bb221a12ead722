"""The audience's voice: posts, votes, reactions and the hosts' handling of items. check_* validates,
do_* takes a typed command (questions.wire), gathers facts, asks rules, writes, then publishes."""

from __future__ import annotations

import contextlib

from sqlalchemy import delete, update
from sqlmodel import col, select

from server.auth import Principal
from server.errors import Conflict, InvalidInput, NotFound
from server.intents import log as intents
from server.intents.log import SalesBoard
from server.questions import rules, store, wire
from server.questions.events import SpotlightChanged
from server.questions.feed import Feed
from server.questions.store import AnyItem, NewItem
from server.realtime.protocol import direct_frame
from server.rooms.actions import display_name_cached
from server.services import Services
from server.storage import now_ms
from server.storage.models import Item, Product, RoomSettings, Sanction, Vote


def _feed(services: Services) -> Feed:
    return services.engines.get(Feed)


def _announce_item(services: Services, item: AnyItem, *, new: bool) -> None:
    public = wire.public_item(item) if rules.is_shown(item.status) else None
    _feed(services).item(item.room_id, public, wire.host_item(item), new=new)


async def _tell_asker(services: Services, item: Item) -> None:
    await services.hub.send_private(item.room_id, item.viewer_id, direct_frame("mine", wire.mine_item(item)))


# --- viewers ----------------------------------------------------------------------------------------


async def check_can_post(services: Services, principal: Principal, settings: RoomSettings) -> None:
    """Banned, muted or too fast (slow mode) viewers may not post."""
    assert principal.viewer_id is not None
    sanction = await store.sanction_cached(services.db, principal.room_id, principal.viewer_id)
    if sanction is not None:
        rules.check_not_silenced(sanction.mute_until_ms, sanction.banned, now_ms())
    if settings.slow_mode_secs > 0:
        allowed, wait = await services.limiter.take(
            f"{principal.room_id}:{principal.viewer_id}", 1, settings.slow_mode_secs
        )
        rules.check_slow_mode(allowed, wait)


async def do_submit(services: Services, principal: Principal, post: wire.PostItem) -> NewItem:
    """Store a viewer's comment or question; show it now (post-moderation) or hold it for review.

    This is the hot path of a comment storm: settings, sanctions and names come from short caches
    and the insert joins whatever other items arrive at the same moment (one transaction for all).
    """
    assert principal.viewer_id is not None
    settings = await store.settings_cached(services.db, principal.room_id)
    if post.product_id is not None:
        async with services.db.session() as session:
            product = await session.get(Product, post.product_id)
        if product is None or product.room_id != principal.room_id:
            raise InvalidInput(wire.NOT_A_PRODUCT)
    await check_can_post(services, principal, settings)
    blocked = store.blocklist(settings).match(post.text)
    item = NewItem(
        id=0,  # given by the insert
        room_id=principal.room_id,
        viewer_id=principal.viewer_id,
        author=await display_name_cached(services.db, principal.viewer_id),
        kind=post.kind,
        text=post.text,
        product_id=post.product_id,
        status=rules.initial_status(settings.moderation, blocked),
        blocked_word=blocked,
        created_ms=now_ms(),
    )
    await store.insert_item(services.db, item)
    _announce_item(services, item, new=True)
    if item.blocked_word is None:  # a held item with a blocked word enters no draw
        # Other domains react to new posts (a keyword draw enters whoever comments its keyword).
        for hook in services.registry.item_hooks:
            await hook(services, item.room_id, item.viewer_id, item.text)
    if item.product_id is not None and item.kind != "comment":
        # Asking about a product is purchase intent (follow-up journeys and the askers' audience).
        await intents.record(
            services.db,
            room_id=item.room_id,
            viewer_id=item.viewer_id,
            kind="question.asked",
            product_id=item.product_id,
            event_id=f"item:{item.id}",
            data={"kind": item.kind},
            board=services.engines.find(SalesBoard),
        )
    return item


async def do_vote(services: Services, principal: Principal, vote: wire.CastVote) -> int:
    """Add (up) or withdraw a viewer's vote; returns the item's votes."""
    viewer_id = principal.viewer_id
    assert viewer_id is not None
    item = await store.load_item(services.db, principal.room_id, vote.item_id)
    async with services.db.session() as session:
        sanction = await session.get(Sanction, (principal.room_id, viewer_id))
        rules.check_may_vote(item.status, banned=sanction is not None and sanction.banned)
        existing = await session.get(Vote, (vote.item_id, viewer_id))
        change = rules.vote_change(vote.up, has_voted=existing is not None)
        if change > 0:
            session.add(Vote(item_id=vote.item_id, viewer_id=viewer_id, created_ms=now_ms()))
        elif change < 0:
            await session.exec(
                delete(Vote).where(col(Vote.item_id) == vote.item_id, col(Vote.viewer_id) == viewer_id)
            )
        if change:
            await session.exec(
                update(Item).where(col(Item.id) == vote.item_id).values(votes=col(Item.votes) + change)
            )
        await session.commit()
        votes = (await session.exec(select(Item.votes).where(Item.id == vote.item_id))).one()
    _feed(services).votes(principal.room_id, vote.item_id, votes)
    return votes


def do_react(services: Services, principal: Principal, react: wire.React) -> None:
    """Add a phone's reactions to the room's next wall tick."""
    _feed(services).react(principal.room_id, dict(react.counts))


# --- hosts ------------------------------------------------------------------------------------------


async def do_moderate(services: Services, principal: Principal, moderate: wire.Moderate) -> Item:
    """Approve, hide, restore, mark answered or reopen an item; the asker hears of it."""
    item = await store.load_item(services.db, principal.room_id, moderate.item_id)
    new_status = rules.check_transition(item.status, moderate.command)
    change = update(Item).where(col(Item.id) == item.id, col(Item.status) == item.status)
    change = change.values(status=new_status)
    answered_ms = now_ms() if new_status == "answered" else None
    if answered_ms is not None:
        change = change.values(answered_ms=answered_ms)
    async with services.db.session() as session:
        result = await session.exec(change)
        await session.commit()
    if result.rowcount != 1:
        raise Conflict("someone else changed this item just now; look again", code="bad_state")
    item.status = new_status
    if answered_ms is not None:
        item.answered_ms = answered_ms
    await store.log_moderation(
        services.db, principal, moderate.command, item_id=item.id, viewer_id=item.viewer_id
    )
    _announce_item(services, item, new=False)
    await _tell_asker(services, item)
    return item


async def do_claim(services: Services, principal: Principal, claim: wire.ClaimItem) -> Item:
    """A moderator takes an item (others see it as taken) or lets it go."""
    item = await store.load_item(services.db, principal.room_id, claim.item_id)
    me = principal.name or "host"
    async with services.db.session() as session:
        if claim.take:
            result = await session.exec(
                update(Item)
                .where(
                    col(Item.id) == item.id, (col(Item.claimed_by).is_(None)) | (col(Item.claimed_by) == me)
                )
                .values(claimed_by=me)
            )
        else:
            result = await session.exec(
                update(Item)
                .where(col(Item.id) == item.id, col(Item.claimed_by) == me)
                .values(claimed_by=None)
            )
        await session.commit()
    if result.rowcount != 1:
        holder = (await store.load_item(services.db, principal.room_id, claim.item_id)).claimed_by
        raise Conflict(f"taken by {holder}" if claim.take else "you do not hold this item", code="taken")
    item.claimed_by = me if claim.take else None
    await store.log_moderation(services.db, principal, "claim" if claim.take else "release", item_id=item.id)
    _announce_item(services, item, new=False)
    return item


async def do_spotlight(services: Services, principal: Principal, spotlight: wire.Spotlight) -> Item | None:
    """Answer now: put an item in the big-screen spotlight (None clears it). The previous spotlight
    item counts as answered."""
    settings = await store.load_settings(services.db, principal.room_id)
    new_item = None
    if spotlight.item_id is not None:
        new_item = await store.load_item(services.db, principal.room_id, spotlight.item_id)
        if rules.spotlight_needs_approval(new_item.status):
            new_item = await do_moderate(services, principal, wire.Moderate(spotlight.item_id, "approve"))
    new_id = new_item.id if new_item is not None else None
    async with services.db.session() as session:
        row = await session.get(RoomSettings, principal.room_id)
        if row is None:
            row = RoomSettings(room_id=principal.room_id)
        row.spotlight_item_id = new_id
        session.add(row)
        await session.commit()
    store.forget(services.db, "settings", principal.room_id)
    previous = rules.previous_to_answer(settings.spotlight_item_id, new_id)
    if previous is not None:
        with contextlib.suppress(Conflict, NotFound):  # already answered, hidden or gone
            await do_moderate(services, principal, wire.Moderate(previous, "answered"))
    await store.log_moderation(services.db, principal, "spotlight", item_id=new_id)
    await services.hub.publish(principal.room_id, SpotlightChanged(item=wire.public_or_none(new_item)))
    return new_item


async def do_answer(services: Services, principal: Principal, answer: wire.AnswerItem) -> Item:
    """A typed answer everyone sees, or a private reply only the asker sees."""
    item = await store.load_item(services.db, principal.room_id, answer.item_id)
    async with services.db.session() as session:
        stored = await session.get(Item, item.id)
        assert stored is not None
        if answer.private:
            stored.reply = answer.text
        else:
            stored.answer = answer.text
        session.add(stored)
        await session.commit()
        await session.refresh(stored)
    await store.log_moderation(
        services.db, principal, "reply" if answer.private else "answer", item_id=item.id, detail=answer.text
    )
    _announce_item(services, stored, new=False)
    await _tell_asker(services, stored)
    return stored
