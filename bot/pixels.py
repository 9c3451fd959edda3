"""Decoding untrusted images at reduced size with libvips, inside a per-process memory budget.

libvips streams: a sequential load hands pixels down a pipeline a few lines at a time, and
JPEG and WebP shrink while they decode (`shrink`, `scale`), so a 100-megapixel picture never
needs 100 megapixels of memory. Each format still holds something while it decodes, and
`decode_cost` says what (measured here, see bench/README.md), so the budget counts what vips
really holds and a decode that cannot fit is refused before it starts.

HEIC is the exception: the libvips wheel ships no HEVC decoder (patents), so HEIC goes
through pillow_heif at full size, and its cost is the full pixel buffer.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyvips

# The operation cache would keep decoded images (and open files) alive after we are done.
pyvips.cache_set_max(0)
pyvips.cache_set_max_mem(0)
# Loaders that have not been fuzzed by the libvips project (ImageMagick, MATLAB, ...) are
# never reachable from our explicit loader calls, but block them anyway.
pyvips.block_untrusted_set(True)

MB = 1024 * 1024

# Explicit loaders: a file we sniffed as PNG is only ever read by the PNG loader.
LOADERS = {"JPEG": "jpegload", "PNG": "pngload", "GIF": "gifload", "WEBP": "webpload"}
# Lines a sequential loader keeps in flight (read-ahead and the line cache between the
# loader and the shrink). Measured: a 10000-pixel-wide PNG holds about 600 lines.
LINES_IN_FLIGHT = 1024


class InvalidImage(Exception):
    """The file is not an image we keep. The message says why, in words for the poster."""


class DecodeBudget:
    """Bounds the memory that decodes in this process hold at once, whatever the number of
    ingest and web threads. A decode reserves its `decode_cost` first; a decode that costs
    more than the whole budget is refused by the caller (see `check_fits`) and never queues."""

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
            # Hand the decode's freed buffers back to the OS before the next decode counts
            # on them being gone (glibc keeps them in the thread's arena otherwise: measured
            # +25 MB of RSS kept per thread that ever decoded a 100 MP PNG).
            _trim()
            with self._cond:
                self._used -= cost
                self._cond.notify_all()


_budget = DecodeBudget(256 * MB)
_max_pixels = 100_000_000  # MAX_IMAGE_MEGAPIXELS, set at start by bot.imaging.configure


def set_max_pixels(limit: int) -> None:
    global _max_pixels  # noqa: PLW0603 - one limit per process, from the settings
    _max_pixels = limit


def check_pixels(header: Header, limit: int | None = None) -> None:
    """Refuse a picture over the megapixel cap (a decompression bomb) before any decode."""
    limit = _max_pixels if limit is None else limit
    pixels = header.width * header.height
    if pixels > limit:
        raise InvalidImage(
            f"the image has {pixels / 1_000_000:.0f} megapixels; "
            f"the limit is {limit // 1_000_000} megapixels"
        )


def set_budget(limit_bytes: int) -> None:
    global _budget  # noqa: PLW0603 - one budget per process, sized from the settings
    if limit_bytes != _budget.limit:
        _budget = DecodeBudget(limit_bytes)


def budget() -> DecodeBudget:
    return _budget


@dataclass(frozen=True)
class Header:
    """What a loader says about a file before any pixel is decoded."""

    kind: str
    width: int
    height: int
    bands: int
    bytes_per_sample: int
    interlaced: bool  # progressive JPEG, Adam7 PNG: decoded whole, not streamed
    chroma: float  # samples per pixel a progressive JPEG keeps (4:2:0 -> 1.5)
    lossless_or_animated_webp: bool
    exif: bytes | None
    file_bytes: int


def read_header(path: Path, kind: str) -> Header:
    """Open with the loader for `kind` only and read the header (no pixels)."""
    header = _heif_header(path) if kind == "HEIF" else _vips_header(path, kind)
    if header.width <= 0 or header.height <= 0:
        raise InvalidImage(read_failure(kind, ValueError("no pixels")))
    return header


def _vips_header(path: Path, kind: str) -> Header:
    try:
        image = pyvips.Operation.call(LOADERS[kind], str(path), access="sequential")
    except pyvips.Error as exc:
        raise InvalidImage(read_failure(kind, exc)) from None
    fields = set(image.get_fields())
    exif = image.get("exif-data") if "exif-data" in fields else None
    chroma = 3.0
    if kind == "JPEG" and "jpeg-chroma-subsample" in fields:
        chroma = {"4:2:0": 1.5, "4:2:2": 2.0, "4:4:4": 3.0}.get(
            str(image.get("jpeg-chroma-subsample")), 3.0
        )
        chroma = chroma * image.bands / 3
    return Header(
        kind=kind,
        width=image.width,
        height=image.height,
        bands=image.bands,
        bytes_per_sample=2 if image.format in ("ushort", "short") else 1,
        interlaced=bool("interlaced" in fields and image.get("interlaced")),
        chroma=chroma,
        lossless_or_animated_webp=kind == "WEBP" and _webp_needs_full_canvas(path),
        exif=bytes(exif) if exif else None,
        file_bytes=path.stat().st_size,
    )


def decode_cost(header: Header, box: int) -> int:
    """Bytes a reduced decode of this file to fit `box` holds at its peak."""
    w, h, bands, depth = header.width, header.height, header.bands, header.bytes_per_sample
    full = w * h * bands * depth
    if header.kind == "HEIF":
        # pillow_heif's decoded buffer and our unpadded copy of it for libvips, briefly both.
        return 2 * w * h * 4 * depth
    if header.kind == "JPEG":
        if header.interlaced:
            # A progressive JPEG keeps every DCT coefficient (2 bytes per sample) until the
            # last scan, whatever the output scale; libjpeg's own tables and MCU padding come
            # on top (measured: 151 MB for a 48 MP 4:2:0 file, 2.2 bytes a sample).
            return int(w * h * header.chroma * 2.4) + _small(header, box)
        scale = _jpeg_scale(header, box)
        return math.ceil(w / scale) * bands * LINES_IN_FLIGHT + _small(header, box)
    if header.kind == "WEBP":
        if header.lossless_or_animated_webp:
            # libwebp decodes these at full size, ARGB, plus its transform buffers
            # (measured: 60 MB for 12 MP, 5 bytes a pixel).
            return w * h * 5 + header.file_bytes
        return _small(header, box) * 4 + header.file_bytes  # the scaled canvas, in memory
    if header.kind == "GIF":
        return 2 * w * h * 4  # the frame buffer and the previous frame
    # PNG
    if header.interlaced:
        # Adam7 needs the whole image before any row is complete, plus the passes' own
        # rows (measured: 1.3 x the pixels for 6 MP, with the reduced image).
        return full * 5 // 4 + w * bands * depth * 64 + _small(header, box)
    return w * bands * depth * LINES_IN_FLIGHT + _small(header, box)


def check_fits(header: Header, box: int) -> int:
    """Return the decode's cost, or refuse the file when it can never fit the budget."""
    cost = decode_cost(header, box)
    if cost > _budget.limit:
        how = ""
        if header.interlaced:
            how = " (progressive JPEG)" if header.kind == "JPEG" else " (interlaced PNG)"
        raise InvalidImage(
            f"the image is {header.width} x {header.height} pixels{how} and would need about "
            f"{cost / MB:.0f} MB to read; the limit is {_budget.limit / MB:.0f} MB"
        )
    return cost


def reduced(path: Path, header: Header, box: int, *, orientation: int = 1) -> pyvips.Image:
    """Decode `path` to an 8-bit sRGB image in memory that fits `box` x `box` (never
    enlarged), turned upright per the EXIF orientation. Call inside the budget."""
    try:
        if header.kind == "HEIF":
            image = _heif_reduced(path, box)
        else:
            image = _load_shrunk(path, header, box)
            # copy_memory() runs the whole pipeline: the loader finishes here, so a truncated
            # or damaged file fails now and the full-size pipeline is gone afterwards.
            image = image.copy_memory()
        image = image.thumbnail_image(box, height=box, size="down", no_rotate=True)
        image = _srgb8(image)
        return _upright(image, orientation).copy_memory()
    except pyvips.Error as exc:
        raise InvalidImage(read_failure(header.kind, exc)) from None


# -- helpers ---------------------------------------------------------------------------------


def _find_malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc: nothing to do


_malloc_trim = _find_malloc_trim()


def _trim() -> None:
    if _malloc_trim is not None:
        _malloc_trim(0)


def _small(header: Header, box: int) -> int:
    """The reduced image and the buffers around it: a few times box x box pixels."""
    return 4 * (2 * box) * (2 * box) * 4


def _jpeg_scale(header: Header, box: int) -> int:
    scale = 1
    while scale < 8 and min(header.width, header.height) // (scale * 2) >= box:
        scale *= 2
    return scale


def _load_shrunk(path: Path, header: Header, box: int) -> pyvips.Image:
    loader = LOADERS[header.kind]
    options: dict[str, object] = {"access": "sequential", "fail_on": "truncated"}
    if header.kind == "JPEG":
        options["shrink"] = _jpeg_scale(header, box)
    elif header.kind == "WEBP":
        options["scale"] = min(1.0, 2 * box / max(1, min(header.width, header.height)))
    image = pyvips.Operation.call(loader, str(path), **options)
    factor = max(1, min(image.width, image.height) // (2 * box))
    if factor > 1:
        # Block-average across first: the line buffer between the loader and the vertical
        # shrink then holds narrow lines (measured: half the memory of vertical first).
        image = image.shrinkh(factor).shrinkv(factor)
    return image


def _srgb8(image: pyvips.Image) -> pyvips.Image:
    if image.interpretation not in ("srgb", "b-w") or image.format != "uchar":
        image = image.colourspace("srgb")
        if image.format != "uchar":
            image = image.cast("uchar")
    if image.bands in (1, 2):
        alpha = image[1] if image.bands == 2 else None
        image = image[0].bandjoin([image[0], image[0]])
        if alpha is not None:
            image = image.bandjoin(alpha)
    return image[:4] if image.bands > 4 else image


def _upright(image: pyvips.Image, orientation: int) -> pyvips.Image:
    """What Pillow's ImageOps.exif_transpose does, for EXIF orientations 2-8."""
    if orientation == 2:
        return image.fliphor()
    if orientation == 3:
        return image.rot("d180")
    if orientation == 4:
        return image.flipver()
    if orientation == 5:
        return image.rot("d90").fliphor()
    if orientation == 6:
        return image.rot("d90")
    if orientation == 7:
        return image.rot("d270").fliphor()
    if orientation == 8:
        return image.rot("d270")
    return image


def _webp_needs_full_canvas(path: Path) -> bool:
    """Lossless (VP8L) and animated WebP decode at full size whatever the scale asked."""
    with path.open("rb") as fh:
        head = fh.read(64)
    chunk = head[12:16]
    if chunk == b"VP8L":
        return True
    if chunk == b"VP8X":
        flags = head[20] if len(head) > 20 else 0
        return bool(flags & 0x02)  # the animation flag
    return False


def _heif_header(path: Path) -> Header:
    import pillow_heif

    try:
        heif = pillow_heif.open_heif(str(path), convert_hdr_to_8bit=True)
        width, height = heif.size
        exif = heif.info.get("exif")
        bands = 4 if heif.has_alpha else 3
    except Exception as exc:  # libheif's parser answers damage with any of half a dozen types
        raise InvalidImage(read_failure("HEIF", exc)) from None
    return Header(
        kind="HEIF",
        width=width,
        height=height,
        bands=bands,
        bytes_per_sample=1,
        interlaced=False,
        chroma=3.0,
        lossless_or_animated_webp=False,
        exif=bytes(exif) if exif else None,
        file_bytes=path.stat().st_size,
    )


def _heif_reduced(path: Path, box: int) -> pyvips.Image:
    import pillow_heif

    try:
        heif = pillow_heif.open_heif(str(path), convert_hdr_to_8bit=True)
        mode = heif.mode  # "RGB" or "RGBA" after the 8-bit conversion
        data = heif.data  # decodes here
        stride = heif.stride
        width, height = heif.size
    except Exception as exc:  # libheif's parser answers damage with any of half a dozen types
        raise InvalidImage(read_failure("HEIF", exc)) from None
    bands = len(mode)
    if width <= 0 or height <= 0 or stride < width * bands or len(data) < stride * height:
        raise InvalidImage(read_failure("HEIF", ValueError("decoded size does not match")))
    full = pyvips.Image.new_from_memory(
        _unpadded(data, width=width, height=height, bands=bands, stride=stride),
        width,
        height,
        bands,
        "uchar",
    )
    factor = max(1, min(width, height) // (2 * box))
    small = full.shrink(factor, factor) if factor > 1 else full
    return small.copy_memory()


def _unpadded(data: bytes, *, width: int, height: int, bands: int, stride: int) -> bytes:
    row = width * bands
    if stride == row:
        return bytes(data)
    view = memoryview(data)
    return b"".join(view[y * stride : y * stride + row] for y in range(height))


def read_failure(kind: str, exc: Exception) -> str:
    text = str(exc).lower()
    name = "HEIC" if kind == "HEIF" else kind
    if any(word in text for word in ("truncat", "premature end", "unexpected end", "eof")):
        return f"the {name} file is truncated and cannot be read"
    return f"the {name} file is damaged and cannot be read"
