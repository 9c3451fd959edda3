"""Real image files (and convincing fakes) for the tests, made with Pillow at run time."""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

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


def with_app1(data: bytes, payload: bytes) -> bytes:
    """The JPEG `data` with an extra APP1 segment (where EXIF lives) holding `payload`."""
    assert data[:2] == b"\xff\xd8"
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def tiny_jpeg(width: int = 8, height: int = 8) -> bytes:
    out = io.BytesIO()
    pattern(width, height).save(out, "JPEG", quality=80)
    return out.getvalue()


# An Exif segment whose TIFF header is neither "II*\0" nor "MM\0*".
BAD_TIFF_HEADER_EXIF = b"Exif\x00\x00XX\x00\x2a\x00\x00\x00\x08" + b"\x00" * 18


def jpeg_with_exif_text(
    *, make: str, model: str, lens: str, taken: str, offset: str | None = None
) -> bytes:
    """A small JPEG whose EXIF text fields are exactly what we pass (NULs, any length)."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = make
    exif[ExifTags.Base.Model] = model
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.LensModel] = lens
    sub[ExifTags.Base.DateTimeOriginal] = taken
    if offset is not None:
        sub[ExifTags.Base.OffsetTimeOriginal] = offset
    out = io.BytesIO()
    pattern(64, 48).save(out, "JPEG", quality=80, exif=exif)
    return out.getvalue()


def write_big_png(path: Path, width: int, height: int, *, interlaced: bool = False) -> Path:
    """An RGBA PNG of width x height written a row at a time (the test never holds its
    pixels): colour ramps in bands, so it compresses to a few MB like a flat graphic."""
    bands = [
        bytes(
            b"\x00"
            + b"".join(
                bytes(((x * 255) // width, (band * 37) % 256, 255 - (x * 255) // width, 200))
                for x in range(width)
            )
        )
        for band in range(8)
    ]
    compressor = zlib.compressobj(1)
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 1 if interlaced else 0)
    with path.open("wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header))
        if interlaced:
            # Adam7: the same rows, in seven passes of sub-images (filter byte per row).
            for x0, y0, dx, dy in _ADAM7:
                pass_width = (width - x0 + dx - 1) // dx
                for y in range(y0, height, dy):
                    if pass_width <= 0:
                        break
                    row = bands[(y * 8) // height]
                    pixels = b"".join(row[1 + 4 * x : 5 + 4 * x] for x in range(x0, width, dx))
                    data = compressor.compress(b"\x00" + pixels)
                    if data:
                        out.write(_chunk(b"IDAT", data))
        else:
            for y in range(height):
                data = compressor.compress(bands[(y * 8) // height])
                if data:
                    out.write(_chunk(b"IDAT", data))
        out.write(_chunk(b"IDAT", compressor.flush()))
        out.write(_chunk(b"IEND", b""))
    return path


_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
