"""Decide whether a downloaded file really is an image we keep, and read what it says.

Decoding is where untrusted bytes meet C code, so the order matters: sniff the magic bytes,
open with an explicit format list, check the pixel count against our own limit before any
decode, then decode for real (a truncated file only shows itself then). JPEGs decode at a
reduced scale (`draft`): the perceptual hash needs 32 x 32 pixels, not 48 megapixels.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import imagehash
import pillow_heif
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

pillow_heif.register_heif_opener()
# Pillow only warns between its limit and twice that; a warning is not a guard.
warnings.simplefilter("error", Image.DecompressionBombWarning)


def configure(*, max_pixels: int, decode_budget_bytes: int | None = None) -> None:
    """Align Pillow's own bomb guard with ours and size the decode budget (process-wide,
    set once at start)."""
    global _budget  # noqa: PLW0603 - one budget per process, sized from the settings
    Image.MAX_IMAGE_PIXELS = max_pixels
    _return_freed_pixels_to_the_os()
    if decode_budget_bytes is not None and decode_budget_bytes != _budget.limit:
        _budget = DecodeBudget(decode_budget_bytes)


KEPT_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "HEIF")
HASH_EDGE = 512  # decode at least this many pixels on the short side before hashing


class DecodeBudget:
    """Bounds the memory that decodes in this process hold at once, whatever the number of
    ingest threads. A decode of w x h pixels costs about w * h * 4 bytes (a JPEG decoded at
    reduced scale costs only its reduced size); one bigger than the whole budget runs alone."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit = limit_bytes
        self._used = 0
        self._cond = threading.Condition()

    @contextmanager
    def reserve(self, cost: int) -> Iterator[None]:
        cost = max(1, min(cost, self.limit))
        with self._cond:
            self._cond.wait_for(lambda: self._used + cost <= self.limit)
            self._used += cost
        try:
            yield
        finally:
            with self._cond:
                self._used -= cost
                self._cond.notify_all()


_budget = DecodeBudget(256 * 1024 * 1024)


class InvalidImage(Exception):
    """The file is not an image we keep. The message says why, in words for the poster."""


@dataclass(frozen=True)
class ImageFacts:
    format: str
    width: int
    height: int
    phash: int  # signed 64-bit, fits a BIGINT
    shoot_date: datetime | None
    camera: str | None
    exif: dict[str, Any] = field(default_factory=dict)

    @property
    def phash_bands(self) -> tuple[int, int, int, int]:
        return phash_bands(self.phash)


def phash_bands(phash: int) -> tuple[int, int, int, int]:
    """Split a 64-bit hash into four 16-bit bands for the near-duplicate index."""
    unsigned = phash & 0xFFFF_FFFF_FFFF_FFFF
    return (
        (unsigned >> 48) & 0xFFFF,
        (unsigned >> 32) & 0xFFFF,
        (unsigned >> 16) & 0xFFFF,
        unsigned & 0xFFFF,
    )


def sniff(head: bytes) -> str | None:
    """Name what the first bytes of a file are, when it is something we recognise."""
    stripped = head.lstrip()
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"hevc"):
        return "HEIF"
    if head.startswith(b"%PDF"):
        return "PDF"
    lowered = stripped[:512].lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered:
        return "HTML"
    if lowered.startswith(b"<svg") or (lowered.startswith(b"<?xml") and b"<svg" in lowered):
        return "SVG"
    return None


NOT_KEPT = {
    "PDF": "this file is a PDF, only images are kept",
    "HTML": "this file is a web page, not an image",
    "SVG": "SVG drawings are not kept: export it as PNG or JPEG and post that",
}


def inspect(path: Path, *, max_pixels: int) -> ImageFacts:
    """Validate the image at `path` and return its facts, or raise InvalidImage."""
    size = path.stat().st_size
    if size == 0:
        raise InvalidImage("the file is empty")
    with path.open("rb") as fh:
        head = fh.read(1024)
    kind = sniff(head)
    if kind in NOT_KEPT:
        raise InvalidImage(NOT_KEPT[kind])
    if kind is None:
        raise InvalidImage("this file is not an image (JPEG, PNG, GIF, WebP or HEIC are kept)")

    try:
        with Image.open(path, formats=[kind]) as im:
            width, height = im.size
            if width * height > max_pixels:
                raise InvalidImage(_too_many_pixels(width * height, max_pixels))
            if im.format == "JPEG":
                im.draft("RGB", (HASH_EDGE, HASH_EDGE))
            decoded_w, decoded_h = im.size
            with _budget.reserve(decoded_w * decoded_h * 4):
                # load() is the real decode: it raises on truncated or corrupt data.
                im.load()
                # After load(): a PNG's getexif() would otherwise decode the whole image
                # outside the budget, looking for an eXIf chunk after the pixels.
                exif = im.getexif()
                # Shrink in place so the full-size pixels are freed before we go on.
                im.thumbnail((HASH_EDGE, HASH_EDGE))
                small = im.copy()
    except InvalidImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's guard (set to our limit by configure()) fired while reading the header.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise InvalidImage(
            _too_many_pixels(int(found.group(1)) if found else None, max_pixels)
        ) from None
    except UnidentifiedImageError:
        raise InvalidImage(f"the file says it is {kind} but cannot be read as one") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = "truncated" if "truncated" in str(exc) else "damaged"
        raise InvalidImage(f"the {kind} file is {reason} and cannot be read") from None

    oriented = ImageOps.exif_transpose(small) or small
    phash = _signed64(int(str(imagehash.phash(oriented)), 16))
    shoot_date, camera, summary = _read_exif(exif)
    if exif.get(ExifTags.Base.Orientation) in (5, 6, 7, 8):
        width, height = height, width
    return ImageFacts(
        format=kind,
        width=width,
        height=height,
        phash=phash,
        shoot_date=shoot_date,
        camera=camera,
        exif=summary,
    )


def _too_many_pixels(pixels: int | None, limit: int) -> str:
    size = f"{pixels / 1_000_000:.0f} megapixels" if pixels else "too many pixels"
    return f"the image has {size}; the limit is {limit // 1_000_000} megapixels"


def _return_freed_pixels_to_the_os() -> None:
    """glibc raises its mmap threshold after big frees, so the next decode's pixel blocks
    come from a thread's heap arena and stay in RSS after the decode ends; with two ingest
    threads the arenas add up. A fixed threshold makes every pixel block its own mmap,
    returned to the OS when freed. (No-op where glibc's mallopt is not there.)"""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_mmap_threshold = -3
    mallopt(m_mmap_threshold, 1024 * 1024)


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= (1 << 63) else value


def _read_exif(exif: Image.Exif) -> tuple[datetime | None, str | None, dict[str, Any]]:
    # DateTimeOriginal lives in the Exif sub-IFD, not IFD0 (a common mistake).
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    taken = sub.get(ExifTags.Base.DateTimeOriginal) or exif.get(ExifTags.Base.DateTime)
    offset = sub.get(ExifTags.Base.OffsetTimeOriginal) or sub.get(ExifTags.Base.OffsetTime)
    shoot_date = parse_exif_datetime(taken, offset)
    make = _text(exif.get(ExifTags.Base.Make))
    model = _text(exif.get(ExifTags.Base.Model))
    if make and model and model.lower().startswith(make.lower()):
        camera: str | None = model
    else:
        camera = " ".join(part for part in (make, model) if part) or None
    summary: dict[str, Any] = {}
    for name, value in (
        ("date_time_original", _text(taken)),
        ("offset_time_original", _text(offset)),
        ("make", make),
        ("model", model),
        ("lens_model", _text(sub.get(ExifTags.Base.LensModel))),
        ("iso", sub.get(ExifTags.Base.ISOSpeedRatings)),
        ("orientation", exif.get(ExifTags.Base.Orientation)),
    ):
        if value not in (None, ""):
            summary[name] = value if isinstance(value, str | int) else str(value)
    return shoot_date, camera, summary


def parse_exif_datetime(raw: Any, offset: Any = None) -> datetime | None:
    """EXIF writes "2026:11:03 14:05:09" and, separately, an offset like "+01:00".

    Without an offset the camera's local time is unknown; we keep it as UTC rather than
    guess the server's zone. Returns None for blank or impossible values ("0000:00:00")."""
    text = _text(raw)
    if not text:
        return None
    try:
        naive = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    tz: timezone = UTC
    off = _text(offset)
    if off and len(off) == 6 and off[0] in "+-" and off[3] == ":":
        try:
            minutes = int(off[1:3]) * 60 + int(off[4:6])
            tz = timezone(timedelta(minutes=minutes if off[0] == "+" else -minutes))
        except ValueError:
            tz = UTC
    return naive.replace(tzinfo=tz)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).strip("\x00 ").strip()
    return text or None
