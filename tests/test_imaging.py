"""What counts as an image, and what we read from it. Every refusal says why in plain words."""

from __future__ import annotations

import io
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import imagehash
import pytest
from PIL import ExifTags, Image

from bot.imaging import (
    DecodeBudget,
    InvalidImage,
    configure,
    inspect,
    parse_exif_datetime,
    phash_bands,
)
from tests import images

LIMIT = 100_000_000


@pytest.fixture(autouse=True)
def pillow_guard() -> None:
    configure(max_pixels=LIMIT)  # what build_services does at start


def write(tmp_path: Path, data: bytes, name: str = "upload.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_jpeg_facts_include_exif_shoot_date_with_offset_and_camera(tmp_path: Path) -> None:
    facts = inspect(write(tmp_path, images.jpeg(800, 600)), max_pixels=LIMIT)
    assert (facts.format, facts.width, facts.height) == ("JPEG", 800, 600)
    assert facts.shoot_date == datetime(2026, 11, 3, 14, 5, 9, tzinfo=timezone(timedelta(hours=1)))
    assert facts.camera == "Canon EOS R5"
    assert facts.exif["date_time_original"] == "2026:11:03 14:05:09"
    assert -(2**63) <= facts.phash < 2**63


def test_jpeg_without_exif_has_no_shoot_date(tmp_path: Path) -> None:
    data = images.jpeg(taken=None, offset=None, make=None, model=None)
    facts = inspect(write(tmp_path, data), max_pixels=LIMIT)
    assert facts.shoot_date is None
    assert facts.camera is None


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "WEBP", "HEIF"])
def test_other_kept_formats(tmp_path: Path, fmt: str) -> None:
    out = io.BytesIO()
    images.pattern(120, 90).save(out, fmt)
    facts = inspect(write(tmp_path, out.getvalue()), max_pixels=LIMIT)
    assert (facts.format, facts.width, facts.height) == (fmt, 120, 90)


def test_perceptual_hash_survives_reencoding_and_tells_pictures_apart(tmp_path: Path) -> None:
    a = inspect(write(tmp_path, images.jpeg(1200, 900, seed=3, quality=95), "a"), max_pixels=LIMIT)
    b = inspect(write(tmp_path, images.jpeg(600, 450, seed=3, quality=60), "b"), max_pixels=LIMIT)
    c = inspect(write(tmp_path, images.jpeg(1200, 900, seed=40), "c"), max_pixels=LIMIT)

    def distance(x: int, y: int) -> int:
        return bin((x ^ y) & (2**64 - 1)).count("1")

    assert distance(a.phash, b.phash) <= 3
    assert distance(a.phash, c.phash) > 10


def test_reduced_decode_hash_matches_full_decode(tmp_path: Path) -> None:
    data = images.jpeg(3000, 2000, seed=5)
    facts = inspect(write(tmp_path, data), max_pixels=LIMIT)
    full = Image.open(io.BytesIO(data))
    full.load()
    reference = int(str(imagehash.phash(full)), 16)
    assert bin((facts.phash ^ reference) & (2**64 - 1)).count("1") <= 4


def test_phash_bands_cover_all_64_bits() -> None:
    assert phash_bands(-1) == (0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF)
    assert phash_bands(0x0001_0002_0003_0004) == (1, 2, 3, 4)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (images.PDF, "this file is a PDF, only images are kept"),
        (b"", "the file is empty"),
        (images.SVG, "SVG drawings are not kept"),
        (images.HTML, "web page, not an image"),
        (b"just some text, not a picture", "not an image"),
        (images.png_claiming(40000, 40000), "1600 megapixels; the limit is 100 megapixels"),
        (images.png_claiming(12000, 10000), "120 megapixels; the limit is 100 megapixels"),
    ],
)
def test_refusals_say_why(tmp_path: Path, data: bytes, reason: str) -> None:
    with pytest.raises(InvalidImage) as caught:
        inspect(write(tmp_path, data), max_pixels=LIMIT)
    assert reason in str(caught.value)


def test_truncated_jpeg_is_caught_by_a_real_decode(tmp_path: Path) -> None:
    data = images.jpeg(1600, 1200)
    with pytest.raises(InvalidImage) as caught:
        inspect(write(tmp_path, data[: len(data) // 2]), max_pixels=LIMIT)
    assert "truncated" in str(caught.value) or "damaged" in str(caught.value)


def test_truncated_png_is_caught(tmp_path: Path) -> None:
    data = images.png(800, 600)
    with pytest.raises(InvalidImage):
        inspect(write(tmp_path, data[: len(data) // 2]), max_pixels=LIMIT)


def test_exif_dates() -> None:
    assert parse_exif_datetime("2026:01:02 03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_exif_datetime("2026:01:02 03:04:05", "-05:30") == datetime(
        2026, 1, 2, 3, 4, 5, tzinfo=timezone(-timedelta(hours=5, minutes=30))
    )
    assert parse_exif_datetime("0000:00:00 00:00:00") is None
    assert parse_exif_datetime("    ") is None
    assert parse_exif_datetime(b"2026:01:02 03:04:05\x00") is not None


def test_png_exif_is_still_read(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Phase One"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2025:06:01 10:00:00"
    out = io.BytesIO()
    images.pattern(200, 100).save(out, "PNG", exif=exif)
    facts = inspect(write(tmp_path, out.getvalue()), max_pixels=LIMIT)
    assert facts.shoot_date == datetime(2025, 6, 1, 10, 0, tzinfo=UTC)


def test_decode_budget_never_holds_more_than_its_limit() -> None:
    budget = DecodeBudget(100)
    held: list[int] = []
    peak: list[int] = [0]
    lock = threading.Lock()

    def decode(cost: int) -> None:
        with budget.reserve(cost):
            with lock:
                held.append(cost)
                peak[0] = max(peak[0], sum(held))
            time.sleep(0.02)
            with lock:
                held.remove(cost)

    threads = [threading.Thread(target=decode, args=(c,)) for c in (60, 60, 30, 500, 10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert not any(t.is_alive() for t in threads)
    # The oversized decode counts as the whole budget and runs alone; the others share it.
    assert peak[0] <= 100 or peak[0] == 500
    assert held == []
