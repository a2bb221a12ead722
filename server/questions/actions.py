"""Questions, comments, votes, reactions and moderation: check_* validates, do_* commits then publishes."""

from __future__ import annotations

import contextlib
import csv
import io
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, func, update
from sqlmodel import col, select

from server.auth import Principal, Scope
from server.errors import Conflict, InvalidInput, NotFound, RateLimited
from server.httputil import csv_cell
from server.intents import log as intents
from server.intents.log import SalesBoard
from server.questions import rules
from server.questions.events import BlocklistChanged, SanctionsChanged, SettingsChanged, SpotlightChanged
from server.questions.feed import Feed
from server.realtime.dispatch import ActionContext, ActionTable
from server.realtime.protocol import direct_frame
from server.rooms.actions import display_name_cached, load_room
from server.services import Services
from server.storage import Database, now_ms
from server.storage.batch import shared_inserter
from server.storage.models import Item, ModerationLog, Product, RoomSettings, Sanction, Viewer, Vote
from server.text import clean_id
from server.ttlcache import TtlCache

# Direct (unsequenced) frames this domain sends, with their one-line docs.
DIRECT_TYPES = {"mine": "one of the viewer's own items changed (status, answer, private reply)"}

TOP_QUESTIONS = 10
REACTION_MAX_PER_MESSAGE = 50


# --- shapes -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class NewItem:
    """An item just stored by a viewer, with the columns of ``Item``: the comment path builds and
    inserts it without the ORM (storage.batch.BatchInserter), and it is read like an ``Item``."""

    id: int
    room_id: str
    viewer_id: str
    author: str | None
    kind: str
    text: str
    product_id: int | None
    status: str
    blocked_word: str | None
    created_ms: int
    votes: int = 0
    answer: str | None = None
    reply: str | None = None
    claimed_by: str | None = None
    answered_ms: int | None = None


AnyItem = Item | NewItem


def public_item(item: AnyItem) -> dict[str, Any]:
    """What viewers and the big screen see of an item."""
    return {
        "id": item.id,
        "kind": item.kind,
        "text": item.text,
        "author": item.author,
        "product_id": item.product_id,
        "status": item.status,
        "votes": item.votes,
        "answer": item.answer,
        "created_ms": item.created_ms,
        "answered_ms": item.answered_ms,
    }


def host_item(item: AnyItem) -> dict[str, Any]:
    """What hosts see: everything, including who posted it and who is handling it."""
    return {
        **public_item(item),
        "viewer_id": item.viewer_id,
        "blocked_word": item.blocked_word,
        "claimed_by": item.claimed_by,
        "reply": item.reply,
    }


def mine_item(item: AnyItem) -> dict[str, Any]:
    """What the asker sees of their own item: its status, the public answer and the private reply."""
    return {**public_item(item), "reply": item.reply}


def _shown(item: AnyItem) -> bool:
    return item.status in ("visible", "answered")


# --- reads ------------------------------------------------------------------------------------------

# Posting reads the room's settings, the poster's sanction and name. At 1,000 comments a second those
# reads are shared: each is kept this long. A change made in this process applies at once; one made
# in another process (several servers on Redis) applies within this time.
POST_CACHE_SECS = 1.0
# Keyed by (what, room, detail): ("settings", room, ""), ("sanctions", room, "").
_cache: TtlCache[tuple[str, str, str], Any] = TtlCache(POST_CACHE_SECS, max_entries=200_000)


def _forget(kind: str, room_id: str, key: str = "") -> None:
    _cache.forget((kind, room_id, key))


async def load_settings(db: Database, room_id: str) -> RoomSettings:
    async with db.session() as session:
        found = await session.get(RoomSettings, room_id)
    return found if found is not None else RoomSettings(room_id=room_id)


async def settings_cached(db: Database, room_id: str) -> RoomSettings:
    async def load() -> RoomSettings:
        return await load_settings(db, room_id)

    result: RoomSettings = await _cache.get(("settings", room_id, ""), load)
    return result


def blocklist_words(settings: RoomSettings) -> list[str]:
    if settings.blocklist is None:
        return list(rules.DEFAULT_BLOCKLIST)
    words: list[str] = orjson.loads(settings.blocklist)
    return words


async def load_item(db: Database, room_id: str, item_id: object) -> Item:
    async with db.session() as session:
        item = await session.get(Item, clean_id(item_id))
    if item is None or item.room_id != room_id:
        raise NotFound("no such item in this room")
    return item


async def top_questions(db: Database, room_id: str) -> list[dict[str, Any]]:
    """The most-voted shown questions (and other feedback), best first."""
    async with db.session() as session:
        rows = await session.exec(
            select(Item)
            .where(
                Item.room_id == room_id,
                col(Item.kind) != "comment",
                col(Item.status).in_(("visible", "answered")),
            )
            .order_by(col(Item.votes).desc(), col(Item.id))
            .limit(TOP_QUESTIONS)
        )
        return [public_item(i) for i in rows.all()]


async def sanctions(db: Database, room_id: str) -> list[dict[str, Any]]:
    now = now_ms()
    async with db.session() as session:
        rows = await session.exec(
            select(Sanction).where(Sanction.room_id == room_id).order_by(col(Sanction.viewer_id))
        )
        return [
            {"viewer_id": s.viewer_id, "mute_until_ms": s.mute_until_ms, "banned": s.banned}
            for s in rows.all()
            if s.banned or (s.mute_until_ms or 0) > now
        ]


# --- helpers ----------------------------------------------------------------------------------------


def _feed(services: Services) -> Feed:
    return services.engines.get(Feed)


_compiled: dict[str | None, rules.Blocklist] = {}


def _blocklist(settings: RoomSettings) -> rules.Blocklist:
    compiled = _compiled.get(settings.blocklist)
    if compiled is None:
        if len(_compiled) > 1000:
            _compiled.clear()
        compiled = _compiled[settings.blocklist] = rules.Blocklist.of(blocklist_words(settings))
    return compiled


def _announce_item(services: Services, item: AnyItem, *, new: bool) -> None:
    _feed(services).item(item.room_id, public_item(item) if _shown(item) else None, host_item(item), new=new)


async def _tell_asker(services: Services, item: Item) -> None:
    await services.hub.send_private(item.room_id, item.viewer_id, direct_frame("mine", mine_item(item)))


async def _log(
    db: Database,
    principal: Principal,
    action_name: str,
    *,
    item_id: int | None = None,
    viewer_id: str | None = None,
    detail: str | None = None,
) -> None:
    async with db.session() as session:
        session.add(
            ModerationLog(
                room_id=principal.room_id,
                actor=principal.name or principal.role.value,
                action=action_name,
                item_id=item_id,
                viewer_id=viewer_id,
                detail=detail,
                created_ms=now_ms(),
            )
        )
        await session.commit()


# --- viewers ----------------------------------------------------------------------------------------


async def _sanction(db: Database, room_id: str, viewer_id: str) -> Sanction | None:
    """The viewer's sanction in the room, from the room's sanctions read once per period."""

    async def load() -> dict[str, Sanction]:
        async with db.session() as session:
            rows = await session.exec(select(Sanction).where(Sanction.room_id == room_id))
            return {row.viewer_id: row for row in rows.all()}

    by_viewer: dict[str, Sanction] = await _cache.get(("sanctions", room_id, ""), load)
    return by_viewer.get(viewer_id)


async def check_can_post(services: Services, principal: Principal, settings: RoomSettings) -> None:
    """Banned, muted or too fast (slow mode) viewers may not post."""
    assert principal.viewer_id is not None
    sanction = await _sanction(services.db, principal.room_id, principal.viewer_id)
    if sanction is not None:
        rules.check_not_silenced(sanction.mute_until_ms, sanction.banned, now_ms())
    if settings.slow_mode_secs > 0:
        ok, wait = await services.limiter.take(
            f"{principal.room_id}:{principal.viewer_id}", 1, settings.slow_mode_secs
        )
        if not ok:
            raise RateLimited(f"slow mode: wait {wait:.0f} s before posting again", code="slow_mode")


async def do_submit(services: Services, principal: Principal, data: dict[str, Any]) -> NewItem:
    """Store a viewer's comment or question; show it now (post-moderation) or hold it for review.

    This is the hot path of a comment storm: settings, sanctions and names come from short caches
    and the insert joins whatever other items arrive at the same moment (one transaction for all).
    """
    assert principal.viewer_id is not None
    kind = rules.clean_kind(data.get("kind", "comment"))
    text = rules.clean_item_text(kind, data.get("text"))
    product_id = data.get("product_id")
    settings = await settings_cached(services.db, principal.room_id)
    if product_id is not None:
        async with services.db.session() as session:
            product = await session.get(Product, product_id) if isinstance(product_id, int) else None
        if product is None or product.room_id != principal.room_id:
            raise InvalidInput("product_id is not a product of this room")
    await check_can_post(services, principal, settings)
    blocked = _blocklist(settings).match(text)
    values: dict[str, Any] = {
        "room_id": principal.room_id,
        "viewer_id": principal.viewer_id,
        "author": await display_name_cached(services.db, principal.viewer_id),
        "kind": kind,
        "text": text,
        "product_id": product_id,
        "status": rules.initial_status(settings.moderation, blocked),
        "blocked_word": blocked,
        "created_ms": now_ms(),
        "votes": 0,
    }
    item = NewItem(id=await shared_inserter(services.db, Item).add(values), **values)
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


async def do_vote(services: Services, principal: Principal, item_id: object, up: object) -> tuple[int, bool]:
    """Add (up) or withdraw a viewer's vote; returns (the item's votes, whether this viewer now votes)."""
    assert principal.viewer_id is not None
    if not isinstance(up, bool):
        raise InvalidInput('"up" must be true or false')
    item = await load_item(services.db, principal.room_id, item_id)
    assert item.id is not None
    rules.check_votable(item.status)
    async with services.db.session() as session:
        sanction = await session.get(Sanction, (principal.room_id, principal.viewer_id))
        if sanction is not None and sanction.banned:
            rules.check_not_silenced(None, True, now_ms())
        existing = await session.get(Vote, (item.id, principal.viewer_id))
        if up and existing is None:
            session.add(Vote(item_id=item.id, viewer_id=principal.viewer_id, created_ms=now_ms()))
            await session.exec(update(Item).where(col(Item.id) == item.id).values(votes=col(Item.votes) + 1))
        elif not up and existing is not None:
            await session.exec(
                delete(Vote).where(col(Vote.item_id) == item.id, col(Vote.viewer_id) == principal.viewer_id)
            )
            await session.exec(update(Item).where(col(Item.id) == item.id).values(votes=col(Item.votes) - 1))
        await session.commit()
        votes = (await session.exec(select(Item.votes).where(Item.id == item.id))).one()
    assert item.id is not None
    _feed(services).votes(principal.room_id, item.id, votes)
    return votes, up


def check_reactions(data: dict[str, Any]) -> dict[str, int]:
    counts = data.get("counts")
    if not isinstance(counts, dict) or not counts:
        raise InvalidInput('"counts" must be an object like {"heart": 3}')
    clean: dict[str, int] = {}
    for kind, n in counts.items():
        if kind not in rules.REACTIONS:
            raise InvalidInput(f"unknown reaction {kind!r}; one of {', '.join(rules.REACTIONS)}")
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= REACTION_MAX_PER_MESSAGE:
            raise InvalidInput(f"a reaction count is 1 to {REACTION_MAX_PER_MESSAGE}")
        clean[kind] = n
    return clean


# --- hosts ------------------------------------------------------------------------------------------


async def _set_status(services: Services, principal: Principal, item_id: object, command: str) -> Item:
    item = await load_item(services.db, principal.room_id, item_id)
    new_status = rules.check_transition(item.status, command)
    values: dict[str, Any] = {"status": new_status}
    if new_status == "answered":
        values["answered_ms"] = now_ms()
    async with services.db.session() as session:
        result = await session.exec(
            update(Item).where(col(Item.id) == item.id, col(Item.status) == item.status).values(**values)
        )
        await session.commit()
    if result.rowcount != 1:
        raise Conflict("someone else changed this item just now; look again", code="bad_state")
    for key, value in values.items():
        setattr(item, key, value)
    await _log(services.db, principal, command, item_id=item.id, viewer_id=item.viewer_id)
    _announce_item(services, item, new=False)
    await _tell_asker(services, item)
    return item


async def do_claim(services: Services, principal: Principal, item_id: object, take: bool) -> Item:
    """A moderator takes an item (others see it as taken) or lets it go."""
    item = await load_item(services.db, principal.room_id, item_id)
    me = principal.name or "host"
    async with services.db.session() as session:
        if take:
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
        holder = (await load_item(services.db, principal.room_id, item_id)).claimed_by
        raise Conflict(f"taken by {holder}" if take else "you do not hold this item", code="taken")
    item.claimed_by = me if take else None
    await _log(services.db, principal, "claim" if take else "release", item_id=item.id)
    _announce_item(services, item, new=False)
    return item


async def do_spotlight(services: Services, principal: Principal, item_id: object) -> Item | None:
    """Answer now: put an item in the big-screen spotlight (None clears it). The previous spotlight
    item counts as answered."""
    settings = await load_settings(services.db, principal.room_id)
    new_item = None if item_id is None else await load_item(services.db, principal.room_id, item_id)
    if new_item is not None and new_item.status == "hidden":
        raise Conflict("restore a hidden item before answering it", code="bad_state")
    if new_item is not None and new_item.status == "pending":
        new_item = await _set_status(services, principal, new_item.id, "approve")
    previous = settings.spotlight_item_id
    async with services.db.session() as session:
        row = await session.get(RoomSettings, principal.room_id)
        if row is None:
            row = RoomSettings(room_id=principal.room_id)
        row.spotlight_item_id = new_item.id if new_item is not None else None
        session.add(row)
        await session.commit()
    _forget("settings", principal.room_id)
    if previous is not None and (new_item is None or previous != new_item.id):
        with contextlib.suppress(Conflict, NotFound):  # already answered, hidden or gone
            await _set_status(services, principal, previous, "answered")
    await _log(services.db, principal, "spotlight", item_id=new_item.id if new_item else None)
    await services.hub.publish(
        principal.room_id, SpotlightChanged(item=public_item(new_item) if new_item is not None else None)
    )
    return new_item


async def do_answer(
    services: Services, principal: Principal, item_id: object, text: object, *, private: bool
) -> Item:
    """A typed answer everyone sees, or a private reply only the asker sees."""
    item = await load_item(services.db, principal.room_id, item_id)
    clean = rules.clean_answer(text)
    async with services.db.session() as session:
        stored = await session.get(Item, item.id)
        assert stored is not None
        if private:
            stored.reply = clean
        else:
            stored.answer = clean
        session.add(stored)
        await session.commit()
        await session.refresh(stored)
    await _log(services.db, principal, "reply" if private else "answer", item_id=item.id, detail=clean)
    _announce_item(services, stored, new=False)
    await _tell_asker(services, stored)
    return stored


async def do_sanction(
    services: Services, principal: Principal, viewer_id: object, data: dict[str, Any]
) -> None:
    """Mute a viewer for N minutes, ban them for the session, or pardon them."""
    if not isinstance(viewer_id, str) or len(viewer_id) > 32:
        raise InvalidInput("viewer_id must be a viewer id")
    mode = data.get("mode")
    async with services.db.session() as session:
        if await session.get(Viewer, viewer_id) is None:
            raise NotFound("no such viewer")
        row = await session.get(Sanction, (principal.room_id, viewer_id)) or Sanction(
            room_id=principal.room_id, viewer_id=viewer_id
        )
        if mode == "mute":
            row.mute_until_ms = now_ms() + rules.clean_minutes(data.get("minutes")) * 60_000
        elif mode == "ban":
            row.banned = True
        elif mode == "pardon":
            row.banned, row.mute_until_ms = False, None
        else:
            raise InvalidInput('mode must be "mute", "ban" or "pardon"')
        session.add(row)
        await session.commit()
    _forget("sanctions", principal.room_id)
    await _log(services.db, principal, mode, viewer_id=viewer_id, detail=str(data.get("minutes") or ""))
    await services.hub.publish(
        principal.room_id, SanctionsChanged(sanctions=await sanctions(services.db, principal.room_id))
    )


async def do_settings(services: Services, principal: Principal, data: dict[str, Any]) -> RoomSettings:
    """Change moderation mode, slow mode, screen layout or the blocklist, live."""
    await load_room(services.db, principal.room_id)
    async with services.db.session() as session:
        row = await session.get(RoomSettings, principal.room_id) or RoomSettings(room_id=principal.room_id)
        words_changed = False
        if "moderation" in data:
            if data["moderation"] not in rules.MODERATION_MODES:
                raise InvalidInput('moderation must be "post" or "pre"')
            row.moderation = data["moderation"]
        if "slow_mode_secs" in data:
            row.slow_mode_secs = rules.clean_slow_mode(data["slow_mode_secs"])
        if "layout" in data:
            if data["layout"] not in rules.LAYOUTS:
                raise InvalidInput(f"layout must be one of {', '.join(rules.LAYOUTS)}")
            row.layout = data["layout"]
        if "blocklist" in data:
            row.blocklist = orjson.dumps(rules.clean_blocklist(data["blocklist"])).decode()
            words_changed = True
        unknown = set(data) - {"moderation", "slow_mode_secs", "layout", "blocklist"}
        if unknown:
            raise InvalidInput(f"unknown settings: {', '.join(sorted(unknown))}")
        session.add(row)
        await session.commit()
        await session.refresh(row)
    _forget("settings", principal.room_id)
    await _log(services.db, principal, "settings", detail=orjson.dumps(data).decode()[:2000])
    await services.hub.publish(
        principal.room_id,
        SettingsChanged(moderation=row.moderation, slow_mode_secs=row.slow_mode_secs, layout=row.layout),
    )
    if words_changed:
        await services.hub.publish(principal.room_id, BlocklistChanged(words=blocklist_words(row)))
    return row


# --- export -----------------------------------------------------------------------------------------


async def export(db: Database, room_id: str) -> dict[str, Any]:
    """Every item (with votes, answers, replies), every vote and every moderation action of a room."""
    async with db.session() as session:
        items = (await session.exec(select(Item).where(Item.room_id == room_id).order_by(col(Item.id)))).all()
        ids = [i.id for i in items]
        votes = (
            (
                await session.exec(
                    select(Vote).where(col(Vote.item_id).in_(ids)).order_by(col(Vote.created_ms))
                )
            ).all()
            if ids
            else []
        )
        log = (
            await session.exec(
                select(ModerationLog).where(ModerationLog.room_id == room_id).order_by(col(ModerationLog.id))
            )
        ).all()
        count = (
            await session.exec(select(func.count()).select_from(Item).where(Item.room_id == room_id))
        ).one()
    return {
        "room": room_id,
        "items": [host_item(i) for i in items],
        "votes": [
            {"item_id": v.item_id, "viewer_id": v.viewer_id, "created_ms": v.created_ms} for v in votes
        ],
        "moderation": [
            {
                "actor": m.actor,
                "action": m.action,
                "item_id": m.item_id,
                "viewer_id": m.viewer_id,
                "detail": m.detail,
                "created_ms": m.created_ms,
            }
            for m in log
        ],
        "count": count,
    }


EXPORT_COLUMNS = ("id", "kind", "status", "text", "author", "viewer_id", "product_id", "votes", "answer",
                  "reply", "blocked_word", "created_ms", "answered_ms")  # fmt: skip


def export_csv(data: dict[str, Any]) -> str:
    """The items of an export as CSV (spreadsheet-safe: formulas are neutralised)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for item in data["items"]:
        writer.writerow([csv_cell(item.get(column)) for column in EXPORT_COLUMNS])
    return out.getvalue()


# --- WebSocket actions ------------------------------------------------------------------------------


# The client actions this domain handles (declared to the app in its domain.py).
ACTIONS = ActionTable()


@ACTIONS.action(
    "item.submit", scope=Scope.PARTICIPATE, doc="viewer: post a comment or a question/suggestion/concern/need"
)
async def _ws_submit(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    item = await do_submit(ctx.services, ctx.principal, data)
    return mine_item(item)


@ACTIONS.action(
    "item.vote", scope=Scope.PARTICIPATE, doc="viewer: upvote a shown question, or withdraw the vote"
)
async def _ws_vote(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    votes, voted = await do_vote(ctx.services, ctx.principal, data.get("id"), data.get("up", True))
    return {"id": data.get("id"), "votes": votes, "voted": voted}


@ACTIONS.action(
    "reaction", scope=Scope.PARTICIPATE, doc="viewer: quick emoji reactions, aggregated by the phone"
)
async def _ws_react(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    counts = check_reactions(data)
    _feed(ctx.services).react(ctx.principal.room_id, counts)
    return {}


def _moderation(command: str, doc: str) -> None:
    @ACTIONS.action(f"item.{command}", scope=Scope.CONTROL, doc=doc)
    async def handler(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
        return host_item(await _set_status(ctx.services, ctx.principal, data.get("id"), command))


_moderation("approve", "host: show a pending item")
_moderation("hide", "host: hide an item from the wall and the phones")
_moderation("restore", "host: show a hidden item again")
_moderation("answered", "host: mark an item answered")
_moderation("reopen", "host: mark an answered item unanswered")


@ACTIONS.action(
    "item.claim", scope=Scope.CONTROL, doc="host: take an item so other moderators see it is handled"
)
async def _ws_claim(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return host_item(await do_claim(ctx.services, ctx.principal, data.get("id"), True))


@ACTIONS.action("item.release", scope=Scope.CONTROL, doc="host: let go of a taken item")
async def _ws_release(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return host_item(await do_claim(ctx.services, ctx.principal, data.get("id"), False))


@ACTIONS.action(
    "item.spotlight", scope=Scope.CONTROL, doc="host: answer now (big-screen spotlight); null id clears it"
)
async def _ws_spotlight(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    item = await do_spotlight(ctx.services, ctx.principal, data.get("id"))
    return {"item": public_item(item) if item is not None else None}


@ACTIONS.action("item.answer", scope=Scope.CONTROL, doc="host: a typed answer shown to everyone")
async def _ws_answer(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return host_item(
        await do_answer(ctx.services, ctx.principal, data.get("id"), data.get("text"), private=False)
    )


@ACTIONS.action("item.reply", scope=Scope.CONTROL, doc="host: a private reply only the asker sees")
async def _ws_reply(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    return host_item(
        await do_answer(ctx.services, ctx.principal, data.get("id"), data.get("text"), private=True)
    )


@ACTIONS.action(
    "viewer.sanction", scope=Scope.CONTROL, doc="host: mute a viewer for N minutes, ban, or pardon"
)
async def _ws_sanction(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    await do_sanction(ctx.services, ctx.principal, data.get("viewer_id"), data)
    return {}


@ACTIONS.action(
    "settings.update", scope=Scope.CONTROL, doc="host: moderation mode, slow mode, screen layout, blocklist"
)
async def _ws_settings(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    row = await do_settings(ctx.services, ctx.principal, data)
    return {"moderation": row.moderation, "slow_mode_secs": row.slow_mode_secs, "layout": row.layout}
