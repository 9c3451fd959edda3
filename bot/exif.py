"""EXIF is whatever the camera, an editor or an attacker wrote: read it defensively.

Pillow parses the raw block (the bytes libvips or pillow_heif found in the header, no pixel
decode needed). Anything it cannot parse means "no EXIF", never a refused image: the picture
itself is fine. Every text we keep is made safe for the database: no NUL (Postgres refuses
\\x00 in text and JSON), no other control characters, and at most 255 characters (the
`camera` column is String(255)).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from PIL import ExifTags, Image

from storage.query import FIRST_PHOTO_YEAR

log = logging.getLogger(__name__)

MAX_TEXT = 255
# A shoot date is kept only inside these years: none before the first photograph, and 9999
# (like 0001) overflows once its offset moves it to UTC.
SHOOT_YEARS = range(FIRST_PHOTO_YEAR, 9999)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ExifFacts:
    shoot_date: datetime | None = None
    camera: str | None = None
    orientation: int = 1
    summary: dict[str, Any] = field(default_factory=dict)


def parse(raw: bytes | None) -> Image.Exif | None:
    """The parsed block, or None when there is none or it is not valid TIFF data."""
    if not raw:
        return None
    exif = Image.Exif()
    try:
        exif.load(raw)
        # Force the lazy parts now, inside the try: the Exif sub-IFD is read on demand.
        exif.get_ifd(ExifTags.IFD.Exif)
        dict(exif)
    except Exception:
        log.info("EXIF block ignored: Pillow could not parse it")
        return None
    return exif


def orientation_of(raw: bytes | None) -> int:
    exif = parse(raw)
    return _orientation(exif) if exif is not None else 1


def read(raw: bytes | None) -> ExifFacts:
    """Shoot date, camera, orientation and a short summary; empty when unreadable."""
    exif = parse(raw)
    if exif is None:
        return ExifFacts()
    try:
        return _facts(exif)
    except Exception:
        log.info("EXIF values ignored: unexpected types")
        return ExifFacts()


def _facts(exif: Image.Exif) -> ExifFacts:
    # DateTimeOriginal lives in the Exif sub-IFD, not IFD0 (a common mistake).
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    taken = sub.get(ExifTags.Base.DateTimeOriginal) or exif.get(ExifTags.Base.DateTime)
    offset = sub.get(ExifTags.Base.OffsetTimeOriginal) or sub.get(ExifTags.Base.OffsetTime)
    shoot_date = parse_exif_datetime(taken, offset)
    make = text(exif.get(ExifTags.Base.Make))
    model = text(exif.get(ExifTags.Base.Model))
    if make and model and model.lower().startswith(make.lower()):
        camera: str | None = model
    else:
        camera = " ".join(part for part in (make, model) if part) or None
    if camera and len(camera) > MAX_TEXT:
        camera = None
    summary: dict[str, Any] = {}
    for name, value in (
        ("date_time_original", text(taken)),
        ("offset_time_original", text(offset)),
        ("make", make),
        ("model", model),
        ("lens_model", text(sub.get(ExifTags.Base.LensModel))),
        ("iso", _number(sub.get(ExifTags.Base.ISOSpeedRatings))),
        ("orientation", _orientation(exif)),
    ):
        if value not in (None, ""):
            summary[name] = value
    return ExifFacts(
        shoot_date=shoot_date,
        camera=camera,
        orientation=_orientation(exif),
        summary=summary,
    )


def _orientation(exif: Image.Exif) -> int:
    value = exif.get(ExifTags.Base.Orientation)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _number(value: Any) -> int | None:
    """ISO is a SHORT, sometimes a tuple of them; anything else is not kept."""
    if isinstance(value, tuple) and value:
        value = value[0]
    if isinstance(value, int) and 0 <= value < 2**31:
        return value
    return None


def parse_exif_datetime(raw: Any, offset: Any = None) -> datetime | None:
    """EXIF writes "2026:11:03 14:05:09" and, separately, an offset like "+01:00".

    Without an offset the camera's local time is unknown; we keep it as UTC rather than
    guess the server's zone. Returns None for blank or impossible values ("0000:00:00", a
    year outside SHOOT_YEARS)."""
    value = text(raw)
    if not value:
        return None
    try:
        naive = datetime.strptime(value[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if naive.year not in SHOOT_YEARS:
        return None
    tz: timezone = UTC
    off = text(offset)
    if off and len(off) == 6 and off[0] in "+-" and off[3] == ":":
        try:
            minutes = int(off[1:3]) * 60 + int(off[4:6])
            tz = timezone(timedelta(minutes=minutes if off[0] == "+" else -minutes))
        except ValueError:
            tz = UTC
    return naive.replace(tzinfo=tz)


def text(value: Any) -> str | None:
    """A printable, database-safe string of at most 255 characters, or None. Longer values
    are left out rather than cut: no camera writes 255 characters into a tag, so such a value
    is junk, and half of it is no better."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str | int | float):
        return None
    # Cameras pad with NULs; anything after the first one is padding or garbage.
    cleaned = str(value).split("\x00", 1)[0]
    cleaned = _CONTROL.sub(" ", cleaned).strip()
    # Lone surrogates cannot be encoded for the database either.
    cleaned = cleaned.encode("utf-8", "replace").decode("utf-8")
    if len(cleaned) > MAX_TEXT:
        return None
    return cleaned or None
