"""Message templates: Jinja2's sandboxed environment, per locale, with a channel-specific override.

A template is found by (room, key, channel, locale), falling back to channel ``*`` and then to the
other locale, so a room can override just the SMS text of one message.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from jinja2 import StrictUndefined, TemplateError, nodes
from jinja2 import Template as JinjaTemplate
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import escape
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.errors import InvalidInput
from server.storage.followup import Template

MAX_TEMPLATE_CHARS = 20_000
# A rendered message must not blow up (a template looping to build megabytes).
MAX_RENDERED_CHARS = 50_000
# Loops in a message template iterate at most this often (the sandbox's own bound is 100,000).
MAX_RANGE = 1000


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, also bounded in effort: a host's template must not freeze the server
    ({{ 'x' * 10**9 }}, huge powers, loops inside loops)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError("exponent too large")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(n, int)
                    and len(seq) * n > MAX_RENDERED_CHARS
                ):
                    raise SecurityError("repetition too large")
        return super().call_binop(context, operator, left, right)


def _bounded_range(*args: int) -> range:
    found = range(*args)
    if len(found) > MAX_RANGE:
        raise SecurityError(f"range of more than {MAX_RANGE} items")
    return found


def _make(**options: Any) -> _Sandbox:
    env = _Sandbox(autoescape=False, **options)
    env.globals["range"] = _bounded_range
    return env


_ENV = _make(undefined=StrictUndefined)
_LENIENT = _make()
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


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    text: str


def check(subject: str | None, body: str) -> None:
    """Compile a template (both parts) or raise InvalidInput naming the line that is wrong."""
    if len(body) > MAX_TEMPLATE_CHARS or (subject is not None and len(subject) > 200):
        raise InvalidInput(f"a template is at most {MAX_TEMPLATE_CHARS} characters (subject 200)")
    for part in (subject or "", body):
        try:
            tree = _ENV.parse(part)
        except TemplateError as exc:
            raise InvalidInput(f"template error: {exc}", code="bad_template") from None
        for loop in tree.find_all(nodes.For):
            if any(True for _ in loop.find_all(nodes.For)):
                raise InvalidInput("template error: no loop inside a loop in a message", code="bad_template")


@functools.lru_cache(maxsize=256)
def _compiled(source: str, strict: bool) -> JinjaTemplate:
    """A template compiled once (about a millisecond each time otherwise), then rendered per message."""
    return (_ENV if strict else _LENIENT).from_string(source)


def render(subject: str | None, body: str, context: dict[str, Any], *, strict: bool = False) -> Rendered:
    """Render both parts. Lenient by default (a missing variable renders empty: a message still
    goes out); strict for previews, so a typo in a variable name shows up before sending."""
    try:
        text = _compiled(body, strict).render(context)
        subj = _compiled(subject, strict).render(context).strip() if subject else None
    except Exception as exc:
        raise InvalidInput(f"template error: {exc}", code="bad_template") from None
    if len(text) > MAX_RENDERED_CHARS:
        raise InvalidInput("the rendered message is too long", code="bad_template")
    return Rendered(subj, text)


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
