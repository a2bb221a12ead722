"""server.i18n: locale negotiation and translation fallbacks."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from server.i18n import DEFAULT_LOCALE, LANG_COOKIE, LOCALES, catalog, negotiate, normalize, translate


def request(query: str = "", cookie: str | None = None, accept: str | None = None) -> Request:
    headers: list[tuple[bytes, bytes]] = []
    if cookie is not None:
        headers.append((b"cookie", f"{LANG_COOKIE}={cookie}".encode()))
    if accept is not None:
        headers.append((b"accept-language", accept.encode()))
    return Request(
        {"type": "http", "method": "GET", "path": "/", "query_string": query.encode(), "headers": headers}
    )


@pytest.mark.parametrize(
    "tag", ["zh", "zh-CN", "zh-cn", "zh_CN", "zh-Hans", "zh-Hans-CN", "zh-TW", "zh-Hant-HK", "ZH"]
)
def test_chinese_variants_map_to_zh_cn(tag: str) -> None:
    """Every Chinese tag maps to zh-CN, the one Chinese catalog."""
    assert normalize(tag) == "zh-CN"


@pytest.mark.parametrize("tag", ["en", "en-GB", "EN-us", " en "])
def test_english_variants_map_to_en(tag: str) -> None:
    """Every English tag maps to en."""
    assert normalize(tag) == "en"


@pytest.mark.parametrize("tag", [None, "", "fr", "de-DE", "*", "ja"])
def test_unsupported_tags_map_to_none(tag: str | None) -> None:
    """Unsupported or empty tags give None."""
    assert normalize(tag) is None


def test_default_is_english() -> None:
    """With no hints at all, the locale is English."""
    assert negotiate(request()) == DEFAULT_LOCALE == "en"


def test_query_wins() -> None:
    """?lang= beats the cookie and Accept-Language."""
    assert negotiate(request("lang=zh", cookie="en", accept="en")) == "zh-CN"


def test_cookie_beats_header() -> None:
    """The lw_lang cookie beats Accept-Language."""
    assert negotiate(request(cookie="zh-CN", accept="en-US,en;q=0.9")) == "zh-CN"


def test_unsupported_query_falls_through() -> None:
    """An unsupported ?lang= is ignored in favour of the next hint."""
    assert negotiate(request("lang=fr", cookie="zh")) == "zh-CN"


def test_accept_language_first_supported() -> None:
    """The first supported language in Accept-Language wins."""
    assert negotiate(request(accept="fr-FR,zh-TW;q=0.9,en;q=0.8")) == "zh-CN"


def test_accept_language_q_order_not_list_order() -> None:
    """Languages are ranked by q value, not by their position in the header."""
    assert negotiate(request(accept="en;q=0.3, zh-CN;q=0.9, fr")) == "zh-CN"


def test_accept_language_missing_q_is_one() -> None:
    """A tag without q counts as q=1 and beats lower ones listed before it."""
    assert negotiate(request(accept="zh;q=0.5, en")) == "en"


def test_accept_language_bad_q_ranks_last() -> None:
    """A malformed q value does not fail negotiation, nor win over a valid one."""
    assert negotiate(request(accept="zh;q=abc, en;q=0.1")) == "en"


def test_accept_language_q_zero_is_not_acceptable() -> None:
    """A language with q=0 is "not acceptable" (RFC 9110, 12.4.2) and is never chosen."""
    assert negotiate(request(accept="zh-CN;q=0, fr")) == "en"


def test_accept_language_unsupported_only() -> None:
    """A header with no supported language gives English."""
    assert negotiate(request(accept="fr-FR, de;q=0.8, *;q=0.1")) == "en"


def test_translate_known_key_in_both_locales() -> None:
    """A key present in a catalog is translated from that catalog."""
    for locale in LOCALES:
        key, text = next((k, v) for k, v in catalog(locale).items() if v)
        assert translate(locale, key) == text


def test_translate_unknown_key_returns_key() -> None:
    """A key missing everywhere is shown as the key itself."""
    assert translate("zh-CN", "no.such.key.anywhere") == "no.such.key.anywhere"


def test_translate_falls_back_to_english(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key missing (or empty) in zh-CN is shown in English."""
    fake = {"en": {"a": "Hello", "b": "Bye"}, "zh-CN": {"b": ""}}
    monkeypatch.setattr("server.i18n.catalog", lambda locale: fake[locale])
    assert (translate("zh-CN", "a"), translate("zh-CN", "b")) == ("Hello", "Bye")


def test_translate_formats_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """Named placeholders are filled in."""
    monkeypatch.setattr("server.i18n.catalog", lambda locale: {"n": "{count} 人在线"})
    assert translate("zh-CN", "n", count=3) == "3 人在线"
