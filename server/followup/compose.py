"""A message as its channel sends it: the template's variables, the rendering (in the sandbox's worker
processes), tracked links, and each channel's parts (email footer and pixel, SMS opt-out words, the
push target, the webhook's JSON)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import orjson
from babel.numbers import format_currency
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.errors import InvalidInput
from server.followup import templates
from server.followup.channels import (
    Outgoing,
)
from server.followup.checks import address_of, push_subs
from server.followup.links import DEFAULT_UTM_SOURCE, Links, webhook_secret, with_utm
from server.products.rules import currency_digits
from server.sandbox import Sandbox
from server.storage.followup import (
    Contact,
    FollowupSettings,
    Journey,
    Message,
)
from server.storage.models import Claim, Product, Room, Viewer

# The language of a message to a viewer whose own is unknown (joined before it was kept).
FALLBACK_LOCALE = "zh-CN"


async def viewer_locale(session: AsyncSession, viewer_id: str | None) -> str:
    """The language a viewer without a contact reads: the one their phone shows the room in."""
    viewer = await session.get(Viewer, viewer_id) if viewer_id is not None else None
    return viewer.locale if viewer is not None and viewer.locale else FALLBACK_LOCALE


async def link_hosts(session: AsyncSession, room_id: str, base_url: str) -> set[str]:
    hosts = {urlsplit(base_url).hostname or ""}
    urls = await session.exec(
        select(Product.shop_url).where(Product.room_id == room_id, col(Product.shop_url).is_not(None))
    )
    hosts.update(urlsplit(u).hostname or "" for u in urls.all() if u)
    return hosts - {""}


async def template_context(
    session: AsyncSession, message: Message, *, base_url: str, contact_name: str | None
) -> dict[str, Any]:
    """The variables of a message's template (docs/followup.md#templates)."""
    data: dict[str, Any] = orjson.loads(message.context or "{}")
    room = await session.get(Room, message.room_id)
    product = await session.get(Product, data["product_id"]) if data.get("product_id") else None
    coupon = data.get("coupon")
    if data.get("claim_id"):
        claim = await session.get(Claim, data["claim_id"])
        coupon = claim.code if claim is not None else coupon
    ctx: dict[str, Any] = {
        "contact": {"name": contact_name},
        "room": {"title": room.title if room else "", "url": f"{base_url}/r/{message.room_id}"},
        "coupon": coupon,
        "order_id": data.get("order_id"),
        "product": None,
    }
    if product is not None:
        ctx["product"] = {
            "name": product.name,
            "price": format_currency(
                product.price_minor / 10 ** _digits(product.currency), product.currency, locale="en"
            ),
            "url": f"{base_url}/r/{message.room_id}/buy/{product.id}",
            "image_url": product.image_url,
        }
    return ctx


def _digits(currency: str) -> int:
    return currency_digits(currency)


async def utm_params(
    session: AsyncSession, message: Message, channel: str, settings: FollowupSettings
) -> dict[str, str | None]:
    """The UTM parameters of a message's links (docs/revenue.md); none when the room turned them off."""
    if not settings.utm:
        return {}
    campaign = None
    if message.journey_id is not None:
        journey = await session.get(Journey, message.journey_id)
        campaign = journey.key if journey is not None else None
    elif message.campaign_id is not None:
        campaign = f"campaign-{message.campaign_id}"
    return {
        "utm_source": settings.utm_source or DEFAULT_UTM_SOURCE,
        "utm_medium": channel,
        "utm_campaign": campaign,
        "utm_content": message.template,
    }


async def compose(
    session: AsyncSession,
    message: Message,
    channel: str,
    contact: Contact | None,
    settings: FollowupSettings,
    *,
    links: Links,
    sandbox: Sandbox,
) -> Outgoing | None:
    """The message as its channel sends it (rendered, links tracked, per-channel parts); None when
    the channel has no address for this person."""
    locale = contact.locale if contact is not None else await viewer_locale(session, message.viewer_id)
    ctx = await template_context(
        session, message, base_url=links.base_url, contact_name=contact.name if contact else None
    )
    unsubscribe = links.unsubscribe(contact.id, channel) if contact is not None else None
    ctx["unsubscribe_url"] = unsubscribe
    address = None
    if message.idem_key.startswith("optin:") and contact is not None:
        address = orjson.loads(message.context or "{}").get("address")
        ctx["confirm_url"] = links.confirm(contact.id, address) if address else None
    found = await templates.find(session, message.room_id, message.template, channel, locale)
    if found is None:
        raise InvalidInput(f"no template {message.template!r}", code="unknown_template")
    # Past a limit this is InvalidInput (bad_template): the message fails with the reason, once.
    rendered = await templates.render_isolated(sandbox, found.subject, found.body, ctx)
    assert message.id is not None
    mid = message.id
    text = rendered.text
    if not message.idem_key.startswith("optin:"):
        # Only links to this server and to the room's shop are tracked (signed redirects); a link
        # typed into a viewer's own name stays plain text, never a redirect on the shop's domain.
        own = await link_hosts(session, message.room_id, links.base_url)
        utm = await utm_params(session, message, channel, settings)
        text = templates.rewrite_links(text, lambda url: links.click(mid, with_utm(url, utm)), own)
    base = Outgoing(idem_key=message.idem_key, to="", subject=rendered.subject, text=text)
    marketing = not message.transactional
    if channel == "email":
        to = address or (contact.email if contact is not None else None)
        if contact is None or to is None:
            return None
        footer = f"\n\n--\n{unsubscribe}" if marketing and unsubscribe else ""
        return replace(
            base,
            to=to,
            text=text + footer,
            html=templates.to_html(text + footer, links.pixel(mid)),
            marketing=marketing,
            unsubscribe_url=unsubscribe if marketing else None,
        )
    if channel == "sms":
        if contact is None or contact.phone is None:
            return None
        stop = (" Reply STOP to opt out." if locale == "en" else " 回复TD退订") if marketing else ""
        return replace(base, to=contact.phone, text=text + stop)
    if channel == "push":
        subs = await push_subs(session, contact.id) if contact is not None else []
        if not subs:
            return None
        sub = subs[-1]
        url = ctx["product"]["url"] if ctx.get("product") else ctx["room"]["url"]
        return replace(
            base,
            to=sub.endpoint,
            push_keys={"p256dh": sub.p256dh, "auth": sub.auth},
            data={
                "url": links.click(mid, with_utm(url, await utm_params(session, message, channel, settings)))
            },
        )
    if channel == "webhook":
        if not settings.webhook_url:
            return None
        return replace(
            base,
            to=settings.webhook_url,
            secret=webhook_secret(links.secret_key, message.room_id),
            data={
                "type": "followup.message",
                "message_id": mid,
                "template": message.template,
                "contact": {
                    "id": contact.id if contact else None,
                    "email": contact.email if contact else None,
                    "phone": contact.phone if contact else None,
                },
                "subject": rendered.subject,
                "text": text,
            },
        )
    # In-app: the row is the inbox entry; the phone shows it when it next opens a room.
    to = address_of(contact, "inapp", message.viewer_id)
    return None if to is None else replace(base, to=to)
