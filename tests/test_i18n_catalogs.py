"""Every user-visible string goes through the catalogs, and both languages have every key."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATALOGS = {
    loc: json.loads((ROOT / "static" / "i18n" / f"{loc}.json").read_text()) for loc in ("en", "zh-CN")
}
SURFACES = [ROOT / "static", ROOT / "screen", ROOT / "host_console"]


def _used_keys() -> set[str]:
    keys: set[str] = set()
    for folder in SURFACES:
        for path in folder.rglob("*"):
            if path.suffix not in (".html", ".js"):
                continue
            text = path.read_text()
            keys.update(re.findall(r"""\b[Tt]\(\s*['"`]([a-z_]+\.[a-z_.]+)""", text))
            keys.update(re.findall(r"""setText\([^,]+,\s*['"]([a-z_]+\.[a-z_.]+)['"]""", text))
            # A busy button's labels (static/js/busy.js withBusy).
            keys.update(re.findall(r"""\b(?:busyKey|idleKey):\s*['"]([a-z_]+\.[a-z_.]+)['"]""", text))
            keys.update(
                re.findall(r"""data-i18n(?:-placeholder|-aria-label)?="([a-z_]+\.[a-z_.]+)\"""", text)
            )
    return keys


def test_both_catalogs_have_the_same_keys() -> None:
    """en and zh-CN define exactly the same keys, none empty."""
    assert set(CATALOGS["en"]) == set(CATALOGS["zh-CN"])
    for loc, catalog in CATALOGS.items():
        assert all(value.strip() for value in catalog.values()), f"empty string in {loc}"


def test_every_used_key_exists() -> None:
    """Each key used by a template or script is in the catalogs."""
    used = _used_keys()
    assert len(used) > 30  # the scan finds the keys (guards against a broken regex)

    # A key ending in "." is a prefix completed at run time ("q.kind." + kind): some key must extend it.
    def defined(key: str) -> bool:
        if key.endswith("."):
            return any(c.startswith(key) for c in CATALOGS["en"])
        return key in CATALOGS["en"]

    missing = sorted(k for k in used if not defined(k))
    assert not missing, f"keys used but not defined: {missing}"


def test_placeholders_match_between_languages() -> None:
    """A {name} placeholder in English is in the Chinese text too."""
    for key, text in CATALOGS["en"].items():
        assert set(re.findall(r"\{(\w+)\}", text)) == set(re.findall(r"\{(\w+)\}", CATALOGS["zh-CN"][key])), (
            key
        )


def test_templates_have_no_bare_text() -> None:
    """Templates put visible words through T()/t(): no literal words between tags."""
    allowed = {"Livewall", "QR"}
    for folder in SURFACES:
        for path in folder.rglob("*.html"):
            text = re.sub(r"\{%\s*block body_class.*?endblock\s*%\}", "", path.read_text(), flags=re.S)
            text = re.sub(r"\{[{%#].*?[}%#]\}", "", text, flags=re.S)
            text = re.sub(r"<script.*?</script>", "", text, flags=re.S)
            text = re.sub(r"<style.*?</style>", "", text, flags=re.S)
            for chunk in re.findall(r">([^<]+)<", text):
                words = chunk.strip()
                if words and re.search(r"[A-Za-z\u4e00-\u9fff]{2,}", words) and words not in allowed:
                    raise AssertionError(f"{path.relative_to(ROOT)}: untranslated text {words!r}")
