"""Uploaded images: taken in as untrusted bytes, stored as clean WebP files, served by content name.

``store_image`` (or an ``ImageIntake``, which also bounds how many run at once) refuses what is too
big (``MAX_UPLOAD_BYTES``, before anything is parsed), what Pillow does not identify as JPEG, PNG,
WebP or GIF, and images of more than ``MAX_PIXELS`` (checked on the header, before decoding: a
decompression bomb is refused unread). It keeps the first frame of an animation, turns the image as
its EXIF orientation says, converts an embedded colour profile to sRGB (or drops it when the profile
cannot be read), drops every other piece of metadata (EXIF with any GPS position, XMP, comments),
shrinks the image so that its longest side is at most ``max_side`` pixels, and encodes it as WebP
(quality 82, alpha kept when the image has any). The file is written atomically under
``<data_dir>/media/`` and named by the SHA-256 of its bytes, so one image stored twice is one file.

The decoding and encoding are CPU work on untrusted data: they run in a worker thread, under a
deadline of ``WORK_SECS``; the caller waits no longer (the thread itself cannot be stopped, so an
``ImageIntake`` keeps its slot taken until the thread has finished).

``routes`` serves the stored files at ``GET /media/{name}`` with a year-long immutable cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import struct
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageCms, ImageOps
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from server.errors import InvalidInput, NotFound, TooLarge, TooManyAttempts

MAX_UPLOAD_BYTES = 8 * 1024 * 1024  # a phone photo is 2-5 MiB; a larger upload is refused unread
# 40 megapixels decode to 160 MB of RGBA: more than any camera in a phone, well under Pillow's own
# bomb limit (89 megapixels warn, 179 refuse), which therefore never has to act.
MAX_PIXELS = 40_000_000
MAX_SIDE_PX = 1600  # a product or cover image on a phone or the big screen never needs more
WORK_SECS = 10.0  # decoding and encoding a 40-megapixel photo takes about 2 s on one slow core
WEBP_QUALITY = 82  # no visible loss on photos, a third of the size of a JPEG at quality 90
FORMATS = ("JPEG", "PNG", "WEBP", "GIF")  # the only decoders Pillow may try on an upload
MEDIA_DIR = "media"  # under the data directory
RETRY_AFTER_SECS = 2.0  # a full intake has made room by then, most likely
NAME = re.compile(r"[0-9a-f]{32}\.(webp|jpg|png)")
CONTENT_TYPES = {"webp": "image/webp", "jpg": "image/jpeg", "png": "image/png"}
CACHE_FOREVER = "public, max-age=31536000, immutable"  # the name changes when the content does

# What Pillow's decoders raise on a broken or hostile file (zlib.error and struct.error escape a few).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error)


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, code="bad_image")


def _too_many_pixels() -> InvalidInput:
    return _bad(f"the image has more than {MAX_PIXELS // 1_000_000} megapixels")


@dataclass(frozen=True)
class StoredImage:
    """A stored image: its file name under ``media/`` (also its URL path ``/media/<name>``) and size."""

    name: str  # "<first 32 hex digits of the SHA-256 of the file>.webp"
    width: int
    height: int
    bytes: int


@dataclass(frozen=True)
class _Encoded:
    data: bytes
    width: int
    height: int


def _to_srgb(image: Image.Image, icc: bytes) -> Image.Image:
    """The image converted from its embedded profile to sRGB; unchanged when that cannot be done."""
    target = "RGBA" if image.mode == "RGBA" else "RGB"
    if image.mode not in ("RGB", "RGBA", "CMYK"):
        return image  # a grey or palette profile: dropped, the pixels are taken as sRGB
    try:
        source = ImageCms.ImageCmsProfile(BytesIO(icc))
        converted = ImageCms.profileToProfile(
            image, source, ImageCms.createProfile("sRGB"), outputMode=target
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image
    return converted if converted is not None else image


def _encode(data: bytes, max_side: int) -> _Encoded:
    """Untrusted image bytes -> clean WebP bytes (synchronous CPU work: run it in a thread)."""
    if max_side < 1:
        raise ValueError("max_side must be at least 1")
    try:
        with Image.open(BytesIO(data), formats=FORMATS) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise _too_many_pixels()
            opened.draft("RGB", (max_side, max_side))  # JPEG: decode at 1/2, 1/4, 1/8 when that is enough
            opened.load()  # the first frame only
            icc = opened.info.get("icc_profile")
            alpha = opened.has_transparency_data
            try:
                image = ImageOps.exif_transpose(opened)
            except _DECODE_ERRORS:
                image = opened.copy()  # an EXIF block that cannot be read turns nothing
            if image.mode not in ("RGB", "RGBA", "CMYK"):
                image = image.convert("RGBA" if alpha else "RGB")
            if isinstance(icc, bytes) and icc:
                image = _to_srgb(image, icc)
            image = image.convert("RGBA" if alpha else "RGB")
            if alpha and image.getchannel("A").getextrema() == (255, 255):
                image = image.convert("RGB")  # a fully opaque alpha channel is not worth keeping
            image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            image.info.clear()  # nothing of the upload's metadata may reach the encoder
            out = BytesIO()
            image.save(out, "WEBP", quality=WEBP_QUALITY, exif=b"", icc_profile=None, xmp=b"")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own check, made when the header is read: only ever for sizes over MAX_PIXELS.
        raise _too_many_pixels() from None
    except _DECODE_ERRORS as exc:
        raise _bad("not a JPEG, PNG, WebP or GIF image that can be read") from exc
    return _Encoded(out.getvalue(), image.width, image.height)


def _write(folder: Path, name: str, data: bytes) -> None:
    """Write ``data`` as ``folder/name`` atomically; an existing file of that name is the same content."""
    target = folder / name
    if target.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".part")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the file from a front proxy serving media/
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _store(data: bytes, folder: Path, max_side: int) -> StoredImage:
    encoded = _encode(data, max_side)
    name = hashlib.sha256(encoded.data).hexdigest()[:32] + ".webp"
    _write(folder, name, encoded.data)
    return StoredImage(name, encoded.width, encoded.height, len(encoded.data))


def _check_size(data: bytes) -> None:
    if len(data) > MAX_UPLOAD_BYTES:
        raise TooLarge(f"an image may be at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB")


async def _in_thread(work: Callable[[], StoredImage], on_done: Callable[[], None] | None) -> StoredImage:
    """``work()`` in a worker thread, waited for at most WORK_SECS; ``on_done`` runs when the thread ends."""
    job = asyncio.ensure_future(asyncio.to_thread(work))
    # Retrieved here, so that a job given up on does not log "exception was never retrieved".
    job.add_done_callback(lambda done: done.cancelled() or done.exception())
    if on_done is not None:
        job.add_done_callback(lambda _done: on_done())
    try:
        return await asyncio.wait_for(asyncio.shield(job), WORK_SECS)
    except TimeoutError:
        raise _bad(f"the image could not be processed within {WORK_SECS:g} s") from None


async def store_image(data: bytes, data_dir: Path, *, max_side: int = MAX_SIDE_PX) -> StoredImage:
    """Store one uploaded image as ``<data_dir>/media/<name>.webp`` (see the module docstring).

    Raises TooLarge (over MAX_UPLOAD_BYTES) or InvalidInput with code ``bad_image``. It does not
    bound how many images are processed at once: a route taking uploads uses an ``ImageIntake``.
    """
    _check_size(data)
    return await _in_thread(partial(_store, data, data_dir / MEDIA_DIR, max_side), None)


class ImageIntake:
    """Stores uploads with ``store_image``'s rules, ``at_once`` at a time and ``waiting`` more queued.

    One more upload than that is refused at once with TooManyAttempts (429, Retry-After). Owned by
    whoever takes uploads (an engine or the app's services), never shared through a module global.
    """

    def __init__(
        self, data_dir: Path, *, at_once: int = 1, waiting: int = 8, max_side: int = MAX_SIDE_PX
    ) -> None:
        if at_once < 1 or waiting < 0:
            raise ValueError("at_once must be at least 1 and waiting at least 0")
        self.data_dir = data_dir
        self.max_side = max_side
        self._at_once = at_once
        self._waiting = waiting
        self._slots = asyncio.Semaphore(at_once)
        self._admitted = 0  # uploads waiting for a slot or being processed by this caller

    async def store(self, data: bytes, *, max_side: int | None = None) -> StoredImage:
        """Store one upload, waiting for a slot; refused when ``at_once + waiting`` are already in."""
        _check_size(data)
        if self._admitted >= self._at_once + self._waiting:
            raise TooManyAttempts(
                "too many images are being processed; try again", retry_after_secs=RETRY_AFTER_SECS
            )
        self._admitted += 1
        try:
            await self._slots.acquire()
            # The slot is given back when the thread ends, even after the deadline let the caller go.
            work = partial(_store, data, self.data_dir / MEDIA_DIR, max_side or self.max_side)
            return await _in_thread(work, self._slots.release)
        finally:
            self._admitted -= 1


async def serve_media(request: Request) -> Response:
    """GET /media/{name}: a stored image, cached for a year (its name changes when its content does)."""
    name = request.path_params["name"]
    match = NAME.fullmatch(name)
    if match is None:
        raise NotFound("no such image")
    data_dir: Path = request.app.state.services.settings.data_dir
    path = data_dir / MEDIA_DIR / name
    if not await asyncio.to_thread(path.is_file):
        raise NotFound("no such image")
    headers = {"cache-control": CACHE_FOREVER, "x-content-type-options": "nosniff"}
    return FileResponse(path, media_type=CONTENT_TYPES[match.group(1)], headers=headers)


routes = [Route("/media/{name}", serve_media)]
