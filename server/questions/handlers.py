"""The client actions of the questions domain (declared to the app in its domain.py): each parses its
message into a typed command (questions.wire), runs the matching do_*, and shapes the answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from server.auth import Principal, Scope
from server.domain import ActionContext, ActionTable
from server.questions import actions, moderation, wire
from server.services import Services
from server.storage.models import Item

ACTIONS = ActionTable()

C = TypeVar("C")
ItemFn = Callable[[Services, Principal, C], Awaitable[Item]]


@ACTIONS.action(
    "item.submit", scope=Scope.PARTICIPATE, doc="viewer: post a comment or a question/suggestion/concern/need"
)
async def _ws_submit(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    item = await actions.do_submit(ctx.services, ctx.principal, wire.parse_post(data))
    return wire.mine_item(item)


@ACTIONS.action(
    "item.vote", scope=Scope.PARTICIPATE, doc="viewer: upvote a shown question, or withdraw the vote"
)
async def _ws_vote(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    vote = wire.parse_vote(data)
    return wire.vote_result(vote, await actions.do_vote(ctx.services, ctx.principal, vote))


@ACTIONS.action(
    "reaction", scope=Scope.PARTICIPATE, doc="viewer: quick emoji reactions, aggregated by the phone"
)
async def _ws_react(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    actions.do_react(ctx.services, ctx.principal, wire.parse_reaction(data))
    return {}


def _on_item(kind: str, doc: str, parse: Callable[[dict[str, Any]], C], do: ItemFn[C]) -> None:
    """A host's action on one item, answered with the item as hosts see it."""

    @ACTIONS.action(kind, scope=Scope.MODERATE, doc=doc)
    async def handler(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
        return wire.host_item(await do(ctx.services, ctx.principal, parse(data)))


def _moderation(command: str, doc: str) -> None:
    _on_item(f"item.{command}", doc, partial(wire.parse_moderate, command=command), actions.do_moderate)


_moderation("approve", "host: show a pending item")
_moderation("hide", "host: hide an item from the wall and the phones")
_moderation("restore", "host: show a hidden item again")
_moderation("answered", "host: mark an item answered")
_moderation("reopen", "host: mark an answered item unanswered")
_on_item(
    "item.claim",
    "host: take an item so other moderators see it is handled",
    partial(wire.parse_claim, take=True),
    actions.do_claim,
)
_on_item(
    "item.release", "host: let go of a taken item", partial(wire.parse_claim, take=False), actions.do_claim
)


@ACTIONS.action(
    "item.spotlight", scope=Scope.MODERATE, doc="host: answer now (big-screen spotlight); null id clears it"
)
async def _ws_spotlight(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    item = await actions.do_spotlight(ctx.services, ctx.principal, wire.parse_spotlight(data))
    return wire.spotlight_result(item)


_on_item(
    "item.answer",
    "host: a typed answer shown to everyone",
    partial(wire.parse_answer, private=False),
    actions.do_answer,
)
_on_item(
    "item.reply",
    "host: a private reply only the asker sees",
    partial(wire.parse_answer, private=True),
    actions.do_answer,
)


@ACTIONS.action(
    "viewer.sanction", scope=Scope.MODERATE, doc="host: mute a viewer for N minutes, ban, or pardon"
)
async def _ws_sanction(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    await moderation.do_sanction(ctx.services, ctx.principal, wire.parse_sanction(data))
    return {}


@ACTIONS.action(
    "settings.update", scope=Scope.MODERATE, doc="host: moderation mode, slow mode, screen layout, blocklist"
)
async def _ws_settings(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    row = await moderation.do_settings(ctx.services, ctx.principal, wire.parse_settings(data))
    return wire.settings_shape(row)
