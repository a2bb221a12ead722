"""A room's printable poster: an A4 page with the room's title, its start time, a big QR code of its
URL, the URL in small print under the code, and a few lines of text (e.g. "Scan to join the live show").

``poster_png`` draws the page at 150 dpi (1240 x 1754 px, grey scale); ``poster_pdf`` is the same
raster as a one-page A4 PDF. Both are synchronous, pure CPU work (0.1 s with a Latin font, up to
0.4 s for a long title in a CJK font, which is looked into at each size tried): a caller on the
event loop runs them in a thread (``asyncio.to_thread``).

The QR code is segno's, error correction level M (segno raises it when that costs no size), drawn at
a whole number of pixels per module (crisp when printed) so that it is about 60 % of the page wide.

Fonts: the text may be Chinese, which Pillow's built-in font cannot draw. The font is ``font_path``
when given; otherwise the first of ``FONT_CANDIDATES`` that exists and draws every character of the
page, else the one of them that draws the most (the first on a tie), else Pillow's built-in font.
Characters the chosen font cannot draw are left out; the QR code and the URL are always drawn. A
server that should print Chinese titles needs a CJK font: `apt install fonts-noto-cjk` (or
fonts-wqy-zenhei). In a collection with one face per region (Noto Sans CJK), ``lang`` picks the
face: zh-TW and zh-HK the traditional Chinese glyphs, ja and ko their own, and any other language
(zh-CN, en) the simplified Chinese ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TypeAlias

import segno
from PIL import Image, ImageDraw, ImageFont

PAGE_PX = (1240, 1754)  # A4 (210 x 297 mm) at DPI
DPI = 150  # sharp enough for text and a QR code at arm's length; a page is 50-200 KB
JPEG_QUALITY = 90  # the PDF holds the page as a JPEG: no visible ringing around the code or the text
MARGIN_PX = 90  # 15 mm: inside what any office printer can print
QR_SHARE = 0.6  # of the page width: scannable from a couple of metres
TITLE_SIZES = range(88, 43, -4)  # px; the largest at which the title fits in TITLE_LINES
TITLE_LINES = 3
STARTS_SIZE = 48
LINE_SIZE = 42
LINE_WRAP = 2  # lines each extra line may take
URL_SIZE = 28
URL_WRAP = 3
LEADING = 1.3  # line height over font size
MAX_CHARS = 400  # of one text: more than fits in its lines (the rest is cut with "...")
MAX_EXTRA_LINES = 8  # more never fit under the code
GAP_PX = 36  # between the title, the start time, the code and the lines
GLYPH_CHECK_SIZE = 24  # px: the size at which a font is asked whether it has a glyph
FACES_IN_A_COLLECTION = 16  # how many faces of a .ttc are looked at for the one of a region

FONT_CANDIDATES: tuple[Path, ...] = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
)
# The face of a CJK collection each language wants (Noto Sans CJK names its faces "... CJK SC" etc.);
# the others want simplified Chinese, the Chinese of Livewall's audience.
REGIONS = {"zh-tw": "TC", "zh-hant": "TC", "zh-hk": "HK", "zh-mo": "HK", "ja": "JP", "ko": "KR"}
DEFAULT_REGION = "SC"

Font: TypeAlias = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True)
class _Face:
    """A font file and face, at any size (None: Pillow's built-in font)."""

    path: Path | None
    index: int = 0

    def at(self, size: int) -> Font:
        if self.path is None:
            return ImageFont.load_default(size)
        return ImageFont.truetype(
            str(self.path), size, index=self.index, layout_engine=ImageFont.Layout.BASIC
        )


def _glyph(font: Font, ch: str) -> bytes:
    side = 2 * GLYPH_CHECK_SIZE
    canvas = Image.new("L", (side, side))
    ImageDraw.Draw(canvas).text((0, 0), ch, font=font, fill=255)
    return canvas.tobytes()


def _drawable(font: Font, chars: set[str]) -> set[str]:
    """The characters of ``chars`` the font has a glyph for (whitespace always counts as drawable)."""
    try:
        missing = _glyph(font, "\uffff")  # a non-character: what every font draws is its "no glyph" glyph
    except (UnicodeError, ValueError, OSError):
        missing = b""
    found = set()
    for ch in chars:
        if ch.isspace():
            found.add(ch)
            continue
        try:
            if _glyph(font, ch) != missing:
                found.add(ch)
        except (UnicodeError, ValueError, OSError):
            continue  # the bitmap font of a Pillow built without FreeType knows only Latin-1
    return found


def _region_face(path: Path, lang: str) -> _Face:
    """The face of a font collection for ``lang``'s region; the first face when none is named for it
    (a collection that is not split by region, such as WenQuanYi's)."""
    if path.suffix.lower() != ".ttc":
        return _Face(path)
    tag = lang.lower().replace("_", "-")
    wanted = (r for prefix, r in REGIONS.items() if tag == prefix or tag.startswith(prefix + "-"))
    region = next(wanted, DEFAULT_REGION)
    for index in range(FACES_IN_A_COLLECTION):
        try:
            family, _style = ImageFont.truetype(str(path), GLYPH_CHECK_SIZE, index=index).getname()
        except OSError:
            break  # past the last face
        if family is not None and family.endswith(" " + region):
            return _Face(path, index)
    return _Face(path)


def _choose_face(text: str, font_path: Path | None, lang: str) -> tuple[_Face, set[str]]:
    """The face to draw ``text`` with, and the characters of ``text`` it can draw (module docstring)."""
    chars = set(text)
    if font_path is not None:
        face = _region_face(font_path, lang)
        return face, _drawable(face.at(GLYPH_CHECK_SIZE), chars)
    best: tuple[_Face, set[str]] | None = None
    for path in FONT_CANDIDATES:
        if not path.is_file():
            continue
        try:
            face = _region_face(path, lang)
            drawable = _drawable(face.at(GLYPH_CHECK_SIZE), chars)
        except OSError:
            continue  # not a font FreeType can read
        if drawable == chars:
            return face, drawable
        if best is None or len(drawable) > len(best[1]):
            best = (face, drawable)
    if best is not None:
        return best
    builtin = _Face(None)
    return builtin, _drawable(builtin.at(GLYPH_CHECK_SIZE), chars)


def _width(font: Font, text: str) -> float:
    left, _top, right, _bottom = font.getbbox(text)
    return right - left


def _wrap(text: str, font: Font, width: float) -> list[str]:
    """``text`` in lines at most ``width`` px wide, broken at a space when there is one (Latin) and
    anywhere otherwise (Chinese, or a word wider than the page)."""
    lines: list[str] = []
    line = ""
    for ch in " ".join(text[:MAX_CHARS].split()):
        if not line or _width(font, line + ch) <= width:
            line += ch
            continue
        cut = line.rfind(" ")
        if ch != " " and cut > 0 and _width(font, line[cut + 1 :] + ch) <= width:
            lines.append(line[:cut])
            line = line[cut + 1 :] + ch
        else:
            lines.append(line)
            line = "" if ch == " " else ch
    lines.append(line)
    return [kept for kept in (ln.strip() for ln in lines) if kept]


def _at_most(lines: list[str], count: int, font: Font, width: float) -> list[str]:
    """The first ``count`` lines, the last ending in an ellipsis when some were left out."""
    if len(lines) <= count:
        return lines
    kept = lines[:count]
    last = kept[-1]
    while last and _width(font, last + "...") > width:
        last = last[:-1]
    return [*kept[:-1], last.rstrip() + "..."]


@dataclass(frozen=True)
class _Text:
    lines: list[str]
    font: Font
    size: int
    fill: int

    @property
    def height(self) -> int:
        return round(len(self.lines) * self.size * LEADING)


def _title(text: str, face: _Face, width: float) -> _Text:
    """The title at the largest size at which it fits in TITLE_LINES; else cut at the smallest."""
    for size in TITLE_SIZES:
        font = face.at(size)
        lines = _wrap(text, font, width)
        if len(lines) <= TITLE_LINES:
            return _Text(lines, font, size, 0)
    size = TITLE_SIZES[-1]
    font = face.at(size)
    return _Text(_at_most(_wrap(text, font, width), TITLE_LINES, font, width), font, size, 0)


def _text(text: str, face: _Face, size: int, wrap: int, fill: int, width: float) -> _Text:
    font = face.at(size)
    return _Text(_at_most(_wrap(text, font, width), wrap, font, width), font, size, fill)


def _qr(url: str, page_width: int) -> Image.Image:
    """The QR code of ``url`` with its quiet zone, a whole number of pixels per module."""
    code = segno.make(url, error="m")
    modules, _ = code.symbol_size(scale=1, border=0)
    out = BytesIO()
    code.save(out, kind="png", scale=max(1, int(page_width * QR_SHARE) // modules), border=4)
    out.seek(0)
    with Image.open(out) as image:
        return image.convert("L")


def _draw_text(draw: ImageDraw.ImageDraw, block: _Text, top: int, page_width: int) -> None:
    for i, line in enumerate(block.lines):
        left, _t, right, _b = block.font.getbbox(line)
        x = (page_width - (right - left)) / 2 - left
        draw.text((x, top + round(i * block.size * LEADING)), line, font=block.font, fill=block.fill)


def poster_image(
    *, title: str, url: str, starts: str | None, lines: list[str], lang: str, font_path: Path | None = None
) -> Image.Image:
    """The poster as a Pillow image (mode L, PAGE_PX at DPI)."""
    width, height = PAGE_PX
    room = width - 2 * MARGIN_PX
    lines = lines[:MAX_EXTRA_LINES]
    texts = [title, starts or "", *lines, url]
    face, drawable = _choose_face("".join(text[:MAX_CHARS] for text in texts), font_path, lang)
    if not set(url) <= drawable:  # the chosen font lacks Latin letters: the built-in font has them
        url_face, url_drawable = _Face(None), _drawable(_Face(None).at(GLYPH_CHECK_SIZE), set(url))
    else:
        url_face, url_drawable = face, drawable

    def keep(text: str, chars: set[str] = drawable) -> str:
        return "".join(ch for ch in text if ch in chars)

    qr = _qr(url, width)
    top = [_title(keep(title), face, room)]
    if starts:
        top.append(_text(keep(starts), face, STARTS_SIZE, 1, 60, room))
    top = [block for block in top if block.lines]
    link = _text(keep(url, url_drawable), url_face, URL_SIZE, URL_WRAP, 90, room)
    extra = [_text(keep(line), face, LINE_SIZE, LINE_WRAP, 30, room) for line in lines]
    extra = [block for block in extra if block.lines]

    def stack() -> int:
        blocks = [*top, link, *extra]
        return qr.height + sum(b.height for b in blocks) + GAP_PX * (len(blocks) - 1) + GAP_PX // 2

    while extra and stack() > height - 2 * MARGIN_PX:
        extra.pop()  # the extra lines that do not fit are left out, the last first
    page = Image.new("L", PAGE_PX, 255)
    draw = ImageDraw.Draw(page)
    y = max(MARGIN_PX, (height - stack()) // 2)
    for block in top:
        _draw_text(draw, block, y, width)
        y += block.height + GAP_PX
    page.paste(qr, ((width - qr.width) // 2, y))
    y += qr.height + GAP_PX // 2 - GAP_PX  # the code's quiet zone is white space enough
    for block in [link, *extra]:
        y += GAP_PX
        _draw_text(draw, block, y, width)
        y += block.height
    return page


def poster_png(
    *, title: str, url: str, starts: str | None, lines: list[str], lang: str, font_path: Path | None = None
) -> bytes:
    """The poster as a PNG (1240 x 1754 px, 150 dpi). CPU work: run it in a thread."""
    image = poster_image(title=title, url=url, starts=starts, lines=lines, lang=lang, font_path=font_path)
    out = BytesIO()
    image.save(out, "PNG", dpi=(DPI, DPI))
    return out.getvalue()


def poster_pdf(
    *, title: str, url: str, starts: str | None, lines: list[str], lang: str, font_path: Path | None = None
) -> bytes:
    """The poster as a one-page A4 PDF (the PNG's raster at 150 dpi). CPU work: run it in a thread."""
    image = poster_image(title=title, url=url, starts=starts, lines=lines, lang=lang, font_path=font_path)
    out = BytesIO()
    image.save(out, "PDF", resolution=DPI, title=title[:MAX_CHARS], quality=JPEG_QUALITY)
    return out.getvalue()
