"""Uploaded images: refused when too big, unreadable or a bomb; stored turned, stripped, shrunk, by
content; served with a year-long cache; the intake bounds how many are processed at once."""

from __future__ import annotations

import asyncio
import struct
import threading
import zlib
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from PIL import ExifTags, Image, ImageCms
from starlette.applications import Starlette

from server import media
from server.errors import InvalidInput, LivewallError, TooLarge, TooManyAttempts
from server.httputil import livewall_error_handler

RED = (255, 0, 0)
BLUE = (0, 0, 255)


def _photo() -> bytes:
    """A 400x200 JPEG, red left half and blue right, tagged "turn 90 degrees clockwise", with a GPS
    position, an ICC profile and XMP, as a phone would send it."""
    image = Image.new("RGB", (400, 200), BLUE)
    image.paste(RED, (0, 0, 200, 200))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "PhoneCo"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (31.0, 14.0, 0.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (121.0, 28.0, 0.0),
    }
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = BytesIO()
    image.save(out, "JPEG", exif=exif, icc_profile=icc)
    # XMP by hand, in its APP1 segment right after the start of image: Pillow < 11 cannot write it.
    xmp = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>PhoneCo</x:xmpmeta>"
    data = out.getvalue()[:2] + b"\xff\xe1" + struct.pack(">H", len(xmp) + 2) + xmp + out.getvalue()[2:]
    with Image.open(BytesIO(data)) as check:  # the fixture really carries what the test strips
        assert check.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        assert "icc_profile" in check.info and ("APP1", xmp) in check.applist
    return data


def _png_bomb(side: int) -> bytes:
    """A valid black-and-white PNG of side x side pixels, compressed to a few KB."""
    out = BytesIO()
    out.write(b"\x89PNG\r\n\x1a\n")

    def chunk(kind: bytes, body: bytes) -> None:
        out.write(struct.pack(">I", len(body)) + kind + body)
        out.write(struct.pack(">I", zlib.crc32(kind + body)))

    chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
    packer = zlib.compressobj(9)
    row = bytes(1 + (side + 7) // 8)  # filter byte, then the row's bits
    compressed = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    chunk(b"IDAT", compressed)
    chunk(b"IEND", b"")
    return out.getvalue()


def _open(folder: Path, name: str) -> Image.Image:
    image = Image.open(folder / "media" / name)
    image.load()
    return image


async def test_a_photo_is_turned_stripped_and_shrunk(tmp_path: Path) -> None:
    """EXIF orientation applied, then no EXIF (GPS), ICC or XMP left; the longest side is max_side."""
    stored = await media.store_image(_photo(), tmp_path, max_side=100)
    assert stored.name.endswith(".webp") and (stored.width, stored.height) == (50, 100)
    image = _open(tmp_path, stored.name)
    assert image.format == "WEBP" and image.size == (50, 100) and image.mode == "RGB"
    assert not image.getexif() and not {"exif", "icc_profile", "xmp"} & set(image.info)
    raw = (tmp_path / "media" / stored.name).read_bytes()
    assert b"EXIF" not in raw and b"XMP " not in raw and b"ICCP" not in raw and b"PhoneCo" not in raw
    top, bottom = image.getpixel((25, 5)), image.getpixel((25, 95))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]  # the red left half is now on top


async def test_transparency_is_kept(tmp_path: Path) -> None:
    """A PNG with alpha is stored with its alpha channel."""
    image = Image.new("RGBA", (60, 40), (0, 128, 0, 255))
    image.paste((0, 0, 0, 0), (0, 0, 30, 40))
    out = BytesIO()
    image.save(out, "PNG")
    stored = await media.store_image(out.getvalue(), tmp_path)
    kept = _open(tmp_path, stored.name)
    assert kept.mode == "RGBA" and kept.getchannel("A").getextrema() == (0, 255)
    assert (stored.width, stored.height) == (60, 40)  # never enlarged


def _bmp() -> bytes:
    out = BytesIO()
    Image.new("RGB", (8, 8)).save(out, "BMP")
    return out.getvalue()


@pytest.mark.parametrize(
    "data",
    [b"not an image at all", _bmp(), _photo()[:300], b"GIF89a" + bytes(20)],
    ids=["garbage", "bmp", "truncated-jpeg", "broken-gif"],
)
async def test_what_is_not_a_readable_image_is_refused(tmp_path: Path, data: bytes) -> None:
    """Garbage, a format outside JPEG/PNG/WebP/GIF and a truncated file are refused as bad_image."""
    with pytest.raises(InvalidInput) as refused:
        await media.store_image(data, tmp_path)
    assert refused.value.code == "bad_image"
    assert not (tmp_path / "media").exists() or not any((tmp_path / "media").iterdir())


async def test_an_upload_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    """More than MAX_UPLOAD_BYTES is TooLarge, even for an intake."""
    data = b"\xff" * (media.MAX_UPLOAD_BYTES + 1)
    with pytest.raises(TooLarge):
        await media.store_image(data, tmp_path)
    with pytest.raises(TooLarge):
        await media.ImageIntake(tmp_path).store(data)


@pytest.mark.parametrize("side", [7000, 20000], ids=["49-megapixels", "400-megapixels"])
async def test_a_decompression_bomb_is_refused(tmp_path: Path, side: int) -> None:
    """A tiny PNG declaring more than MAX_PIXELS is refused as bad_image, by our check or Pillow's."""
    bomb = _png_bomb(side)
    assert len(bomb) < 100_000
    with pytest.raises(InvalidInput, match="megapixels") as refused:
        await media.store_image(bomb, tmp_path)
    assert refused.value.code == "bad_image"


async def test_the_same_image_stored_twice_is_one_file(tmp_path: Path) -> None:
    """The name is the content's hash: a second upload of the same photo finds the same file."""
    first = await media.store_image(_photo(), tmp_path)
    second = await media.store_image(_photo(), tmp_path)
    assert first == second
    assert [p.name for p in (tmp_path / "media").iterdir()] == [first.name]
    assert media.NAME.fullmatch(first.name)


def _app(data_dir: Path) -> Starlette:
    app = Starlette(routes=media.routes, exception_handlers={LivewallError: livewall_error_handler})
    app.state.services = SimpleNamespace(settings=SimpleNamespace(data_dir=data_dir))
    return app


async def test_a_stored_image_is_served_with_a_year_long_cache(tmp_path: Path) -> None:
    """GET /media/<name>: the file, image/webp, immutable for a year, nosniff."""
    stored = await media.store_image(_photo(), tmp_path)
    transport = httpx.ASGITransport(app=_app(tmp_path))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get(f"/media/{stored.name}")
    assert response.status_code == 200
    assert response.content == (tmp_path / "media" / stored.name).read_bytes()
    assert response.headers["content-type"] == "image/webp"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/media/" + "0" * 32 + ".webp",  # well named, not stored
        "/media/" + "A" * 32 + ".webp",
        "/media/" + "0" * 32 + ".gif",
        "/media/secret.key",
        "/media/..%2fsecret.key",
        "/media/..%2f..%2fsecret.key",
        "/media/%2e%2e/secret.key",
    ],
)
async def test_anything_else_under_media_is_not_found(tmp_path: Path, path: str) -> None:
    """A name off the pattern, a missing file or a way out of the folder is a 404."""
    (tmp_path / "secret.key").write_text("do not serve")
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "secret.key").write_text("do not serve")
    transport = httpx.ASGITransport(app=_app(tmp_path))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get(path)
    assert response.status_code == 404
    assert b"do not serve" not in response.content


async def test_a_full_intake_refuses_the_next_upload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With one at work and none allowed to wait, another upload is TooManyAttempts, with a retry time."""
    entered, release = threading.Event(), threading.Event()
    real = media._encode

    def slow(data: bytes, max_side: int) -> media._Encoded:
        entered.set()
        release.wait(10)
        return real(data, max_side)

    monkeypatch.setattr(media, "_encode", slow)
    intake = media.ImageIntake(tmp_path, at_once=1, waiting=0)
    first = asyncio.create_task(intake.store(_photo()))
    try:
        assert await asyncio.to_thread(entered.wait, 10)
        with pytest.raises(TooManyAttempts) as refused:
            await intake.store(_photo())
        assert refused.value.retry_after_secs
    finally:
        release.set()
    assert (await first).name.endswith(".webp")
    assert (await intake.store(_photo())).name == (await first).name  # room again once it is done


async def test_past_the_deadline_the_caller_goes_and_the_slot_waits_for_the_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job past WORK_SECS is refused as bad_image; its slot is free only when its thread ends."""
    release = threading.Event()
    real = media._encode

    def stuck(data: bytes, max_side: int) -> media._Encoded:
        release.wait(10)
        return real(data, max_side)

    monkeypatch.setattr(media, "_encode", stuck)
    monkeypatch.setattr(media, "WORK_SECS", 0.05)
    intake = media.ImageIntake(tmp_path, at_once=1, waiting=1)
    with pytest.raises(InvalidInput, match="within") as refused:
        await intake.store(_photo())
    assert refused.value.code == "bad_image"
    waiting = asyncio.create_task(intake.store(_photo()))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # the stuck thread still holds the only slot
    monkeypatch.setattr(media, "WORK_SECS", 10.0)
    release.set()
    assert (await waiting).name.endswith(".webp")
