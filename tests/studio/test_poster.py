"""The room poster: an A4 page at 150 dpi as PNG and PDF, with the room URL's QR code on it, drawn
whatever fonts the machine has."""

from __future__ import annotations

import re
from io import BytesIO
from pathlib import Path

import pytest
import segno
from PIL import Image

from server.studio import poster

URL = "https://live.example.com/r/8f3k2"
LINES = ["Scan to join the live show", "扫码进入直播间"]
CJK_FONTS = [p for p in poster.FONT_CANDIDATES if p.is_file() and "dejavu" not in str(p).lower()]
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def _page(png: bytes) -> Image.Image:
    with Image.open(BytesIO(png)) as image:
        assert image.format == "PNG"
        return image.convert("L")


def _qr_width(page: Image.Image, url: str) -> int | None:
    """The width in px of the QR code of ``url`` on the page, None when it is not there. Found by
    its top edge (a row dark over half the page wide, from the top-left finder pattern to the
    top-right one), then read module by module against segno's matrix for ``url``."""
    matrix = segno.make(url, error="m").matrix
    width, height = page.size
    dark = page.point(lambda v: 255 if v < 128 else 0)
    for y in range(height):
        box = dark.crop((0, y, width, y + 1)).getbbox()
        if box is None or box[2] - box[0] <= width // 2:
            continue
        run = 0
        while page.getpixel((box[0] + run, y)) == 0:
            run += 1
        scale = run / 7  # a finder pattern is 7 modules wide

        def module(row: int, col: int, x0: int = box[0], y0: int = y, scale: float = scale) -> bool:
            return page.getpixel((int(x0 + (col + 0.5) * scale), int(y0 + (row + 0.5) * scale))) == 0

        if all(module(r, c) == bool(v) for r, values in enumerate(matrix) for c, v in enumerate(values)):
            return round(scale * len(matrix))
    return None


def test_the_png_is_an_a4_page_at_150_dpi_with_the_code_of_the_url() -> None:
    """1240 x 1754 px, 150 dpi, and the QR code on it reads as the room's URL."""
    png = poster.poster_png(title="Hi", url=URL, starts="Sat 12 April, 20:00", lines=LINES, lang="en")
    page = _page(png)
    assert page.size == (1240, 1754)
    with Image.open(BytesIO(png)) as image:
        assert tuple(round(d) for d in image.info["dpi"]) == (150, 150)
    code = _qr_width(page, URL)
    assert code is not None and 0.5 * 1240 <= code <= 0.6 * 1240  # about 60 % of the page wide
    assert _qr_width(page, URL + "x") is None  # the reading is not vacuous


def test_the_pdf_is_one_a4_page() -> None:
    """A PDF of one page, 595 x 842 pt (A4), holding the 150 dpi raster."""
    pdf = poster.poster_pdf(title="Spring sale", url=URL, starts=None, lines=LINES, lang="en")
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == 1 and b"/Count 1" in pdf
    assert b"/Width 1240" in pdf and b"/Height 1754" in pdf
    box = re.search(rb"/MediaBox\s*\[\s*0 0 ([0-9.]+) ([0-9.]+)\s*\]", pdf)
    assert box is not None and (round(float(box[1])), round(float(box[2]))) == (595, 842)  # A4, in pt


def test_a_long_title_is_cut_and_the_code_stays_whole() -> None:
    """A title far longer than three lines and many extra lines still leave the code readable."""
    title = "Hand-made ceramics from Jingdezhen, live with the potter " * 20
    png = poster.poster_png(title=title, url=URL, starts="tomorrow", lines=["Scan me"] * 30, lang="en")
    assert _qr_width(_page(png), URL) is not None


def test_a_chinese_title_without_any_font_file_falls_back_to_the_built_in_font(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No candidate font: Pillow's built-in font draws what it can; the code and the URL are drawn."""
    monkeypatch.setattr(poster, "FONT_CANDIDATES", ())
    face, drawable = poster._choose_face("春季特卖 " + URL, None, "zh-CN")
    assert face.path is None and set(URL) <= drawable and "春" not in drawable
    png = poster.poster_png(title="春季特卖", url=URL, starts="今晚 20:00", lines=LINES, lang="zh-CN")
    assert _qr_width(_page(png), URL) is not None
    pdf = poster.poster_pdf(title="春季特卖", url=URL, starts=None, lines=LINES, lang="zh-CN")
    assert pdf.startswith(b"%PDF")


@pytest.mark.skipif(not DEJAVU.is_file(), reason="DejaVu Sans is not installed")
def test_the_font_chosen_draws_every_character_when_a_candidate_can() -> None:
    """The font chosen draws every character when one of the candidates can; DejaVu lacks Chinese."""
    _face, drawable = poster._choose_face("Sale 春季特卖", DEJAVU, "zh-CN")
    assert "S" in drawable and "春" not in drawable
    face, drawable = poster._choose_face("Sale 春季特卖", None, "zh-CN")
    if CJK_FONTS:
        assert face.path in CJK_FONTS and "春" in drawable
    png = poster.poster_png(title="春季特卖 Sale", url=URL, starts=None, lines=LINES, lang="zh-CN")
    assert _qr_width(_page(png), URL) is not None


@pytest.mark.skipif(not CJK_FONTS, reason="no CJK font installed (apt install fonts-noto-cjk)")
def test_a_cjk_font_draws_the_chinese_title() -> None:
    """With a CJK font given, the Chinese title is drawn: the page has more ink than without it."""
    font = CJK_FONTS[0]
    _face, drawable = poster._choose_face("春季特卖", font, "zh-CN")
    assert set("春季特卖") <= drawable
    with_title = _page(
        poster.poster_png(title="春季特卖", url=URL, starts=None, lines=[], lang="zh-CN", font_path=font)
    )
    without = _page(poster.poster_png(title="", url=URL, starts=None, lines=[], lang="zh-CN", font_path=font))
    assert with_title.histogram()[0:128] != without.histogram()[0:128]
    assert _qr_width(with_title, URL) is not None
