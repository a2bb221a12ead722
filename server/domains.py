"""The domains this server is made of, in the order they are wired: an engine may find the engines
of the domains before it (discounts tell the intents' sales board; follow-up defers to a claim rush),
hooks run in this order, and engines stop in the reverse order."""

from __future__ import annotations

from server.accounts.domain import DOMAIN as ACCOUNTS
from server.discounts.domain import DOMAIN as DISCOUNTS
from server.domain import Domain, Registry
from server.draws.domain import DOMAIN as DRAWS
from server.followup.domain import DOMAIN as FOLLOWUP
from server.intents.domain import DOMAIN as INTENTS
from server.products.domain import DOMAIN as PRODUCTS
from server.questions.domain import DOMAIN as QUESTIONS
from server.rooms.domain import DOMAIN as ROOMS
from server.studio.domain import DOMAIN as STUDIO


def default_domains() -> list[Domain]:
    return [ACCOUNTS, ROOMS, PRODUCTS, INTENTS, DISCOUNTS, QUESTIONS, DRAWS, FOLLOWUP, STUDIO]


def default_registry() -> Registry:
    """What the default domains declare, merged (the reference reducer's parts, the client types)."""
    return Registry(default_domains())
