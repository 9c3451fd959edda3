"""What counts as an image, and what we read from it. Every refusal says why in plain words."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import imagehash
import pytest
from PIL import ExifTags, Image, ImageOps

from bot.imaging import (
    DecodeBudget,
    InvalidImage,
    configure,
    inspect,
    parse_exif_datetime,
    phash_bands,
    write_thumbnail,
)
from storage.media import LocalStore, MediaInfo
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


# -- libvips: bounded memory, the budget, orientation ------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
MEASURE = """
import json, sys
from pathlib import Path
from bot import imaging, pixels
from storage.media import EXTENSIONS, LocalStore

imaging.configure(max_pixels=100_000_000, decode_budget_bytes=256 * 2**20)
action, path, work = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
kind = imaging.sniff_file(path)
ext = EXTENSIONS[kind]
store = LocalStore(
    work, signing_key=b"k" * 32,
    thumbnailer=lambda src, dest, w, h, crop: imaging.write_thumbnail(
        src, dest, width=w, height=h, crop=crop
    ),
)
# Warm up on a small file of the same format: imports, scipy, the loader's start-up.
warm_key = f"T1/00/{'0' * 64}.{ext}"
store.path_for(warm_key).parent.mkdir(parents=True)
store.path_for(warm_key).write_bytes(sys.stdin.buffer.read())
imaging.inspect(store.path_for(warm_key), max_pixels=100_000_000)
store.thumbnail_path(warm_key, width=36, height=24)
key = f"T1/ab/{'a' * 64}.{ext}"
store.path_for(key).parent.mkdir(parents=True)
path.rename(store.path_for(key))

def hwm_kb():
    return int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0])

Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from here
before = hwm_kb()
header = pixels.read_header(store.path_for(key), kind)
if action == "inspect":
    facts = imaging.inspect(store.path_for(key), max_pixels=100_000_000)
    out = {"size": [facts.width, facts.height], "cost": pixels.decode_cost(header, 256)}
else:
    thumb = store.thumbnail_path(key, width=360, height=240)
    out = {"thumb": str(thumb), "cost": pixels.decode_cost(header, 360)}
out["grew"] = (hwm_kb() - before) * 1024
print(json.dumps(out))
"""


def peak_growth(action: str, path: Path, work: Path, warm: bytes) -> dict:  # type: ignore[type-arg]
    """Run `action` on `path` in a fresh interpreter and report how far its peak RSS grew."""
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", MEASURE, action, str(path), str(work)],
        input=warm,
        capture_output=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return dict(json.loads(done.stdout.decode().strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def rgba_100mp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10000 x 10000 RGBA (400 MB of pixels) in a PNG of a few MB."""
    return images.write_big_png(tmp_path_factory.mktemp("big") / "big.png", 10000, 10000)


MIB = 1024 * 1024


def test_a_100_megapixel_rgba_png_is_inspected_in_bounded_memory(
    rgba_100mp: Path, tmp_path: Path
) -> None:
    source = tmp_path / "copy.png"
    source.write_bytes(rgba_100mp.read_bytes())
    result = peak_growth("inspect", source, tmp_path / "media", images.png(64, 48))
    assert result["size"] == [10000, 10000]
    # A full decode holds 400 MB of pixels (Pillow peaked at ~800 MB here).
    assert result["grew"] < 80 * MIB
    # The budget counts at least what the decode really held.
    assert result["grew"] <= result["cost"]


def test_its_first_thumbnail_is_made_in_bounded_memory(rgba_100mp: Path, tmp_path: Path) -> None:
    source = tmp_path / "copy.png"
    source.write_bytes(rgba_100mp.read_bytes())
    result = peak_growth("thumbnail", source, tmp_path / "media", images.png(64, 48))
    assert result["grew"] < 80 * MIB
    assert result["grew"] <= result["cost"]
    with Image.open(result["thumb"]) as thumb:
        assert thumb.format == "JPEG"
        assert thumb.size == (240, 240)  # fits 360 x 240, square like the original


def encoded(picture: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    picture.save(out, fmt, **options)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "fmt", "options"),
    [
        ("progressive JPEG", "JPEG", {"progressive": True, "quality": 90}),
        ("lossless WebP", "WEBP", {"lossless": True, "method": 0}),
        ("GIF", "GIF", {}),
        ("HEIC", "HEIF", {"quality": 60}),
        ("interlaced PNG", "PNG", {}),
    ],
)
@pytest.mark.parametrize("action", ["inspect", "thumbnail"])
def test_the_budget_counts_at_least_what_each_format_holds(
    tmp_path: Path, name: str, fmt: str, options: dict[str, object], action: str
) -> None:
    """Formats that decode whole (not streamed) cost what the budget says, or less."""
    source = tmp_path / "source.bin"
    if name == "interlaced PNG":
        images.write_big_png(source, 3000, 2000, interlaced=True)
    else:
        picture = images.pattern(3000, 2000, seed=2)
        if fmt == "GIF":
            picture = picture.convert("P")
        source.write_bytes(encoded(picture, fmt, **options))
    warm = encoded(images.pattern(64, 48, seed=1), fmt, **options)
    result = peak_growth(action, source, tmp_path / "media", warm)
    assert result["grew"] <= result["cost"], (name, result)


@pytest.fixture
def small_budget() -> Iterator[None]:
    configure(max_pixels=LIMIT, decode_budget_bytes=16 * MIB)
    yield
    configure(max_pixels=LIMIT, decode_budget_bytes=256 * MIB)


@pytest.mark.usefixtures("small_budget")
def test_a_decode_that_cannot_fit_the_budget_is_refused_naming_its_size(tmp_path: Path) -> None:
    # Adam7 interlacing needs every row before the first one is complete: a full-size decode.
    path = images.write_big_png(tmp_path / "interlaced.png", 3000, 2000, interlaced=True)
    with pytest.raises(InvalidImage) as caught:
        inspect(path, max_pixels=LIMIT)
    reason = str(caught.value)
    assert "3000 x 2000 pixels (interlaced PNG)" in reason
    assert "the limit is 16 MB" in reason
    # The same picture, not interlaced, streams within the same budget.
    plain = images.write_big_png(tmp_path / "plain.png", 3000, 2000)
    assert inspect(plain, max_pixels=LIMIT).width == 3000


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_turns_the_picture_upright_like_pillow(
    tmp_path: Path, orientation: int
) -> None:
    picture = images.pattern(640, 400, seed=11)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=92, exif=exif)
    facts = inspect(write(tmp_path, out.getvalue()), max_pixels=LIMIT)
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(out.getvalue())))
    assert (facts.width, facts.height) == upright.size
    reference = int(str(imagehash.phash(upright)), 16)
    assert bin((facts.phash ^ reference) & (2**64 - 1)).count("1") <= 4


def test_slack_fetching_one_preview_several_times_at_once_decodes_once(tmp_path: Path) -> None:
    made: list[Path] = []

    def thumbnailer(src: Path, dest: Path, width: int, height: int, crop: bool) -> None:
        made.append(src)
        time.sleep(0.2)  # a slow decode, so the other requests arrive while it runs
        write_thumbnail(src, dest, width=width, height=height)

    store = LocalStore(tmp_path / "media", signing_key=b"k" * 32, thumbnailer=thumbnailer)
    original = tmp_path / "up.png"
    original.write_bytes(images.png(1200, 800))
    key = store.put(original, MediaInfo(sha256="b" * 64, format="PNG", team_id="T1")).key
    gate = threading.Barrier(6)
    paths: list[Path] = []

    def fetch() -> None:
        gate.wait()
        paths.append(store.thumbnail_path(key, width=360, height=240))

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(made) == 1
    assert len(paths) == 6
    assert len(set(paths)) == 1
    with Image.open(paths[0]) as thumb:
        assert thumb.format == "JPEG"
        assert thumb.size == (360, 240)


def test_a_cropped_size_of_a_smaller_image_is_its_largest_centre_cut(tmp_path: Path) -> None:
    """Square 1080 of a 640 x 480 photo: a 480 x 480 square, not the photo unchanged."""
    source = tmp_path / "small.jpg"
    source.write_bytes(images.jpeg(640, 480, seed=3))
    for (width, height), expected in (((1080, 1080), (480, 480)), ((300, 200), (300, 200))):
        dest = tmp_path / f"{width}x{height}.jpg"
        write_thumbnail(source, dest, width=width, height=height, crop=True)
        with Image.open(dest) as made:
            assert made.size == expected
    fitted = tmp_path / "fitted.jpg"
    write_thumbnail(source, fitted, width=1080, height=1080)
    with Image.open(fitted) as made:
        assert made.size == (640, 480)  # fitting never upscales either
