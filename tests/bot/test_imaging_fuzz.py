"""Fuzz the ingest's image path with mutated files: whatever the bytes, `inspect` and the
thumbnail path either succeed or raise InvalidImage with a reason, nothing else.

Seeds are small real files of every kept format (with EXIF where the format carries it);
mutations flip, overwrite, insert, duplicate and cut bytes. EXIF blocks are fuzzed on their
own too, inside a JPEG's APP1 segment and raw through the EXIF reader, and so are the values
a well-formed block carries (texts of any length and character, dates of any year and
offset). Bounded for CI: a fixed number of examples per test and a wall-clock cap
(FUZZ_SECONDS, ~1 minute in all).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
import unittest
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image

from bot import exif as exif_reader
from bot.imaging import ImageFacts, InvalidImage, configure, inspect, write_thumbnail
from tests import images

# Pillow warns about every corrupt EXIF entry it skips: expected here, by the thousand.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")

LIMIT = 100_000_000
SECONDS_PER_TEST = float(os.environ.get("FUZZ_SECONDS", "60")) / 7
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2000"))


def camera_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Canon"
    exif[ExifTags.Base.Model] = "Canon EOS R5"
    exif[ExifTags.Base.Orientation] = 6
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.DateTimeOriginal] = "2026:11:03 14:05:09"
    sub[ExifTags.Base.OffsetTimeOriginal] = "+01:00"
    sub[ExifTags.Base.LensModel] = "RF 24-70mm"
    return exif


def seed(fmt: str) -> bytes:
    picture = images.pattern(96, 64, seed=4)
    out = io.BytesIO()
    if fmt == "GIF":
        picture.convert("P").save(out, "GIF")
    elif fmt == "PNG":
        picture.convert("RGBA").save(out, "PNG", exif=camera_exif())
    else:
        picture.save(out, fmt, exif=camera_exif())
    return out.getvalue()


SEEDS = {fmt: seed(fmt) for fmt in ("JPEG", "PNG", "GIF", "WEBP", "HEIF")}
EXIF_BLOCK = camera_exif().tobytes()


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "overwrite", "insert", "duplicate", "cut", "tail"]))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at : at + len(chunk)] = chunk
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
        elif kind == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        else:
            del data[at:]
    return bytes(data)


class TimeUp(unittest.SkipTest):
    """Past the cap. Hypothesis lets a skip through at once (no shrinking, no more
    examples), and `Deadline.bounds` catches it: the test passes with what it ran."""


class Deadline:
    """Hypothesis has no time limit; this is one. Skipping the rest of the examples in the
    test body is not enough: drawing 2,000 examples costs seconds on its own. Once an
    example has failed, time no longer counts: hypothesis shrinks it and reports it."""

    def __init__(self, seconds: float) -> None:
        self.ends = time.monotonic() + seconds
        self.failed = False

    @contextlib.contextmanager
    def example(self) -> Iterator[None]:
        if not self.failed and time.monotonic() > self.ends:
            raise TimeUp
        try:
            yield
        except Exception:
            self.failed = True
            raise

    @contextlib.contextmanager
    def bounds(self) -> Iterator[None]:
        with contextlib.suppress(TimeUp):
            yield


def check_file(data: bytes, work: Path) -> None:
    path = work / "upload.bin"
    path.write_bytes(data)
    try:
        facts = inspect(path, max_pixels=LIMIT)
    except InvalidImage as refused:
        assert str(refused).strip(), "a refusal must say why"
    else:
        assert facts.width > 0
        assert facts.height > 0
        assert_database_safe(facts)
    # The thumbnail path reads the same bytes (a stored original) on its own.
    thumb = work / "thumb.jpg"
    try:
        write_thumbnail(path, thumb, width=120, height=80)
    except InvalidImage as refused:
        assert str(refused).strip()
    else:
        with Image.open(thumb) as made:
            assert made.format == "JPEG"
            assert made.width <= 120
            assert made.height <= 80


def assert_database_safe(facts: ImageFacts) -> None:
    """What Postgres refuses (NUL in text and JSON) or String(255) cannot hold never gets
    that far: not in the camera, not anywhere in the EXIF summary."""
    assert facts.camera is None or ("\x00" not in facts.camera and len(facts.camera) <= 255)
    summary = json.dumps(facts.exif, ensure_ascii=False, default=str)
    assert "\\u0000" not in summary  # how json.dumps writes a NUL
    for value in facts.exif.values():
        assert not isinstance(value, str) or len(value) <= 255


FUZZ = settings(
    deadline=None,
    max_examples=EXAMPLES,
    # The same examples on every run (a CI failure reproduces locally); FUZZ_RANDOM=1 explores.
    derandomize=not os.environ.get("FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)


@pytest.fixture(autouse=True)
def pixel_cap() -> None:
    configure(max_pixels=LIMIT, decode_budget_bytes=256 * 1024 * 1024)


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_mutated_images_are_kept_or_refused_with_a_reason(fmt: str, tmp_path: Path) -> None:
    deadline = Deadline(SECONDS_PER_TEST)
    check_file(SEEDS[fmt], tmp_path)  # the seed itself is a good image

    @FUZZ
    @given(data=mutated(SEEDS[fmt]))
    def run(data: bytes) -> None:
        with deadline.example():
            check_file(data, tmp_path)

    with deadline.bounds():
        run()


def test_mutated_exif_blocks_in_a_jpeg_never_break_ingest(tmp_path: Path) -> None:
    deadline = Deadline(SECONDS_PER_TEST)
    jpeg = images.tiny_jpeg(64, 48)

    @FUZZ
    @given(block=mutated(EXIF_BLOCK))
    def run(block: bytes) -> None:
        with deadline.example():
            # The reader alone, on the raw block...
            facts = exif_reader.read(block)
            assert facts.camera is None or len(facts.camera) <= 255
            assert 1 <= facts.orientation <= 8
            # ...and inside a JPEG, through inspect and the thumbnail path.
            check_file(images.with_app1(jpeg, block[:65000]), tmp_path)

    with deadline.bounds():
        run()


# EXIF texts as cameras and editors write them, and as they should not: NULs, control
# characters, any Unicode, past the 255 the database keeps.
exif_text = st.text(st.characters(codec="utf-8"), max_size=400)
exif_date = st.one_of(
    st.text(max_size=30),
    st.builds(
        "{:04d}:{:02d}:{:02d} {:02d}:{:02d}:{:02d}".format,
        st.integers(0, 9999),
        st.integers(0, 13),
        st.integers(0, 32),
        st.integers(0, 25),
        st.integers(0, 61),
        st.integers(0, 61),
    ),
)
exif_offset = st.one_of(st.none(), st.from_regex(r"[+-][0-9]{2}:[0-9]{2}", fullmatch=True))


def test_any_exif_values_in_a_jpeg_never_break_ingest(tmp_path: Path) -> None:
    deadline = Deadline(SECONDS_PER_TEST)

    @FUZZ
    @given(make=exif_text, model=exif_text, taken=exif_date, offset=exif_offset)
    def run(make: str, model: str, taken: str, offset: str | None) -> None:
        with deadline.example():
            data = images.jpeg_with_exif_text(
                make=make, model=model, lens=model, taken=taken, offset=offset
            )
            path = tmp_path / "upload.jpg"
            path.write_bytes(data)
            facts = inspect(path, max_pixels=LIMIT)  # a good picture: never refused for its EXIF
            assert (facts.width, facts.height) == (64, 48)
            assert_database_safe(facts)
            if facts.shoot_date is not None:
                assert facts.shoot_date.year in exif_reader.SHOOT_YEARS  # the camera's year
                # What storing it does (to UTC, then text for the database and the modal)
                # must not overflow.
                facts.shoot_date.astimezone(UTC).isoformat()

    with deadline.bounds():
        run()
