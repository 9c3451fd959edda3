"""Real image files (and convincing fakes) for the tests, made with Pillow at run time."""

from __future__ import annotations

import io
import random
import struct
import zlib

from PIL import ExifTags, Image, ImageDraw


def jpeg(
    width: int = 640,
    height: int = 480,
    *,
    taken: str | None = "2026:11:03 14:05:09",
    offset: str | None = "+01:00",
    make: str | None = "Canon",
    model: str | None = "Canon EOS R5",
    seed: int = 0,
    quality: int = 85,
) -> bytes:
    image = pattern(width, height, seed=seed)
    exif = Image.Exif()
    if make:
        exif[ExifTags.Base.Make] = make
    if model:
        exif[ExifTags.Base.Model] = model
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    if taken:
        sub[ExifTags.Base.DateTimeOriginal] = taken
    if offset:
        sub[ExifTags.Base.OffsetTimeOriginal] = offset
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, exif=exif)
    return out.getvalue()


def png(width: int = 320, height: int = 240, *, seed: int = 0) -> bytes:
    out = io.BytesIO()
    pattern(width, height, seed=seed).save(out, "PNG")
    return out.getvalue()


def pattern(width: int, height: int, *, seed: int = 0) -> Image.Image:
    """A picture with large shapes (so perceptual hashes are stable and differ by seed)."""
    rng = random.Random(seed)
    base = Image.new("RGB", (256, 192), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(base)
    for _ in range(6):
        x, y = rng.randrange(0, 200), rng.randrange(0, 150)
        w, h = rng.randrange(30, 120), rng.randrange(30, 100)
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x, y, x + w, y + h), fill=colour)
    return base.resize((width, height), Image.Resampling.BICUBIC)


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
HTML = b"<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in</body></html>"


def noisy_jpeg(width: int, height: int) -> bytes:
    """Random pixels compress badly: a large file from a modest picture."""
    rng = random.Random(width * height)
    noise = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    out = io.BytesIO()
    noise.save(out, "JPEG", quality=100)
    return out.getvalue()
