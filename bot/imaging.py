"""Decide whether a downloaded file really is an image we keep, and read what it says.

Decoding is where untrusted bytes meet C code, so the order matters: sniff the magic bytes,
open with the one libvips loader for that format, check the pixel count against our own
limit and the decode's memory against the budget before any pixel is decoded, then decode
for real at reduced size (a truncated file only shows itself then). The perceptual hash
needs 32 x 32 pixels, not 48 megapixels: `bot.pixels` decodes to fit HASH_EDGE, shrinking
while it loads where the format allows. EXIF comes from the header (`bot.exif`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyvips
from PIL import Image

from bot import exif as exif_reader
from bot.exif import orientation_of, parse_exif_datetime
from bot.phash import phash as perceptual_hash
from bot.pixels import (
    DecodeBudget,
    InvalidImage,
    budget,
    check_fits,
    check_pixels,
    read_failure,
    read_header,
    reduced,
    set_budget,
    set_max_pixels,
)

__all__ = [
    "DecodeBudget",
    "ImageFacts",
    "InvalidImage",
    "configure",
    "inspect",
    "parse_exif_datetime",
    "phash_bands",
    "sniff",
    "write_thumbnail",
]


def configure(*, max_pixels: int, decode_budget_bytes: int | None = None) -> None:
    """Align Pillow's own bomb guard with ours and size the decode budget (process-wide,
    set once at start)."""
    Image.MAX_IMAGE_PIXELS = max_pixels
    set_max_pixels(max_pixels)
    # One libvips thread per image: images already run side by side (the ingest pool, the
    # web threads), and libvips' helper threads for one sequential decode only add CPU
    # (measured, interleaved: decode + hash of a 48 MP JPEG 2-9 % less CPU with one).
    pyvips.concurrency_set(1)
    _return_freed_pixels_to_the_os()
    if decode_budget_bytes is not None:
        set_budget(decode_budget_bytes)


KEPT_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "HEIF")
HASH_EDGE = 256  # the reduced image fits HASH_EDGE x HASH_EDGE before hashing


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


def sniff_file(path: Path) -> str:
    """The kept format of the file at `path`, or InvalidImage saying what it is instead."""
    if path.stat().st_size == 0:
        raise InvalidImage("the file is empty")
    with path.open("rb") as fh:
        head = fh.read(1024)
    kind = sniff(head)
    if kind in NOT_KEPT:
        raise InvalidImage(NOT_KEPT[kind])
    if kind is None:
        raise InvalidImage("this file is not an image (JPEG, PNG, GIF, WebP or HEIC are kept)")
    return kind


def inspect(path: Path, *, max_pixels: int) -> ImageFacts:
    """Validate the image at `path` and return its facts, or raise InvalidImage."""
    kind = sniff_file(path)
    header = read_header(path, kind)
    width, height = header.width, header.height
    check_pixels(header, max_pixels)
    cost = check_fits(header, HASH_EDGE)
    facts = exif_reader.read(header.exif)
    with budget().reserve(cost):
        small = reduced(path, header, HASH_EDGE, orientation=facts.orientation)
    # The hash wants a PIL image; the reduced one is at most 512 x 512, so this is cheap.
    rgb = small[:3] if small.bands == 4 else small
    picture = Image.frombytes("RGB", (rgb.width, rgb.height), rgb.write_to_memory())
    phash = _signed64(perceptual_hash(picture))
    if facts.orientation in (5, 6, 7, 8):
        width, height = height, width
    return ImageFacts(
        format=kind,
        width=width,
        height=height,
        phash=phash,
        shoot_date=facts.shoot_date,
        camera=facts.camera,
        exif=facts.summary,
    )


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


def write_thumbnail(
    source: Path, dest: Path, *, width: int, height: int, crop: bool = False
) -> None:
    """Write a JPEG preview of `source` fitting width x height (or filling it, cut from the
    centre, with `crop`) to `dest`, within the budget (the web threads decode too).
    Transparent areas become white, not black."""
    kind = sniff_file(source)
    header = read_header(source, kind)
    check_pixels(header)  # originals were checked at ingest, but the cap may have changed
    box = max(width, height)
    if crop:  # the short side must still cover the box: decode that much larger
        long, short = max(header.width, header.height), min(header.width, header.height)
        box = min(long, -(-box * long // short))
    cost = check_fits(header, box)
    with budget().reserve(cost):
        image = reduced(source, header, box, orientation=orientation_of(header.exif))
    if crop:  # smaller than the box: the largest centre cut of the box's shape, not upscaled
        shrink = min(1.0, image.width / width, image.height / height)
        width, height = max(1, round(width * shrink)), max(1, round(height * shrink))
    try:
        image = image.thumbnail_image(
            width, height=height, size="down", no_rotate=True, crop="centre" if crop else "none"
        )
        if image.hasalpha():
            image = image.flatten(background=[255, 255, 255])
        image.jpegsave(str(dest), Q=85, keep="none", optimize_coding=True)
    except pyvips.Error as exc:
        raise InvalidImage(read_failure(kind, exc)) from None
