"""Message templates: Jinja2's sandboxed environment, per locale, with a channel-specific override.

A template is found by (room, key, channel, locale), falling back to channel ``*`` and then to the
other locale, so a room can override just the SMS text of one message. It is rendered by
server/followup/render.py in a sandbox worker process (``render_isolated``), never on the event loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from markupsafe import escape
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.errors import InvalidInput
from server.followup.render import (
    MAX_RENDERED_CHARS,
    MAX_TEMPLATE_CHARS,
    Rendered,
    check,
    check_size,
    render,
    render_job,
)
from server.sandbox import LimitExceeded, Sandbox
from server.storage.followup import Template

__all__ = [
    "MAX_RENDERED_CHARS",
    "MAX_TEMPLATE_CHARS",
    "SAMPLE",
    "Rendered",
    "check",
    "check_size",
    "find",
    "render",
    "render_isolated",
    "rewrite_links",
    "to_html",
]

_URL = re.compile(r"https?://[^\s<>\"')）]+")

SAMPLE: dict[str, Any] = {
    "contact": {"name": "Li Wei"},
    "room": {"title": "Spring tea tasting"},
    "product": {
        "name": "Jasmine green tea 250g",
        "price": "¥68.00",
        "url": "https://shop.example/tea",
        "image_url": None,
    },
    "coupon": "SPRING10",
    "order_id": "A-1001",
    "confirm_url": "https://live.example/optin/sample",
    "unsubscribe_url": "https://live.example/u/sample",
}


async def render_isolated(
    sandbox: Sandbox, subject: str | None, body: str, context: dict[str, Any], *, strict: bool = False
) -> Rendered:
    """``render`` in one of the sandbox's worker processes, under its limits (time, memory, output):
    the event loop never runs a marketer's template. A template past a limit is ``bad_template``,
    the message naming the limit."""
    check_size(subject, body)
    limit = sandbox.limits.output_chars
    try:
        out = await sandbox.run(render_job, subject, body, context, strict, limit)
    except LimitExceeded as exc:
        raise InvalidInput(
            f"template error: over the {exc.limit} limit: rendering {exc.message}", code="bad_template"
        ) from None
    return Rendered(out["subject"], out["text"])


def rewrite_links(text: str, track: Callable[[str], str], hosts: set[str] | None = None) -> str:
    """Every http(s) link in a rendered text (to one of ``hosts``, if given) goes through the click
    tracker."""

    def one(m: re.Match[str]) -> str:
        url = m.group(0)
        return track(url) if hosts is None or urlsplit(url).hostname in hosts else url

    return _URL.sub(one, text)


def to_html(text: str, pixel_url: str | None = None) -> str:
    """The HTML alternative of a plain-text message: escaped, links clickable, line breaks kept,
    and the open pixel. Links are already tracked (``rewrite_links``) before this."""
    parts: list[str] = []
    last = 0
    for m in _URL.finditer(text):
        parts.append(str(escape(text[last : m.start()])))
        url = escape(m.group(0))
        parts.append(f'<a href="{url}">{url}</a>')
        last = m.end()
    parts.append(str(escape(text[last:])))
    body = "".join(parts).replace("\n", "<br>\n")
    pixel = f'<img src="{escape(pixel_url)}" width="1" height="1" alt="">' if pixel_url else ""
    return f'<!doctype html><html><body style="font-family:sans-serif">{body}{pixel}</body></html>'


async def find(session: AsyncSession, room_id: str, key: str, channel: str, locale: str) -> Template | None:
    rows = (
        await session.exec(
            select(Template).where(
                Template.room_id == room_id,
                Template.key == key,
                col(Template.channel).in_([channel, "*"]),
            )
        )
    ).all()

    def rank(t: Template) -> tuple[int, int]:
        return (0 if t.locale == locale else 1, 0 if t.channel == channel else 1)

    return min(rows, key=rank) if rows else None
