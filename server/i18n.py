"""One translation layer for server-rendered pages and browser code: JSON catalogs in static/i18n/.

The same catalog file is used by Jinja (``t``) and sent to the browser, whose ``t`` (static/js/i18n.js)
re-renders every ``data-i18n`` element when the viewer switches language.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
from markupsafe import Markup, escape
from starlette.requests import HTTPConnection

from server.web import web_root

LOCALES = ("en", "zh-CN")
DEFAULT_LOCALE = "en"
LANG_COOKIE = "lw_lang"


@cache
def catalog(locale: str) -> dict[str, str]:
    path = web_root() / "static" / "i18n" / f"{locale}.json"
    data: dict[str, str] = orjson.loads(path.read_bytes())
    return data


def normalize(tag: str | None) -> str | None:
    """Map a language tag (zh, zh-Hans-CN, en-GB, ...) to a supported locale, or None."""
    if not tag:
        return None
    tag = tag.strip().lower().replace("_", "-")
    if tag.startswith("zh"):
        return "zh-CN"
    if tag.startswith("en"):
        return "en"
    return None


def negotiate(conn: HTTPConnection) -> str:
    """``?lang=``, then the lw_lang cookie, then Accept-Language (by q order), then English."""
    for candidate in (conn.query_params.get("lang"), conn.cookies.get(LANG_COOKIE)):
        found = normalize(candidate)
        if found:
            return found
    header = conn.headers.get("accept-language", "")
    ranked: list[tuple[float, str]] = []
    for part in header.split(","):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if q > 0:  # q=0 means "not acceptable" (RFC 9110)
            ranked.append((q, tag))
    for _q, tag in sorted(ranked, key=lambda x: -x[0]):
        found = normalize(tag)
        if found:
            return found
    return DEFAULT_LOCALE


def translate(locale: str, key: str, **values: Any) -> str:
    """The text for ``key`` in ``locale`` (English if missing there, the key itself if missing everywhere)."""
    text = catalog(locale).get(key) or catalog(DEFAULT_LOCALE).get(key) or key
    return text.format(**values) if values else text


def template_helpers(locale: str) -> dict[str, Any]:
    """Jinja globals for one request: ``t`` (plain text) and ``T`` (a span the browser can re-translate)."""

    def t(key: str, **values: Any) -> str:
        return translate(locale, key, **values)

    def tag(key: str, **values: Any) -> Markup:
        return Markup('<span data-i18n="{}">{}</span>').format(key, escape(t(key, **values)))

    return {
        "t": t,
        "T": tag,
        "lang": locale,
        "locales": LOCALES,
        # Our own catalogs, JSON-encoded, with "</" escaped so they cannot end the <script> element.
        "catalogs_json": Markup(  # noqa: S704
            orjson.dumps({loc: catalog(loc) for loc in LOCALES}).decode().replace("</", "<\\/")
        ),
    }
