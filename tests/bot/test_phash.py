"""bot.phash gives ImageHash's phash: hashes stored before it replaced ImageHash
(numpy and scipy, about 35 MB a process) still find the same duplicates."""

from __future__ import annotations

import random

import imagehash
import numpy
import pytest
import scipy.fftpack
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from bot.phash import CORNER, EDGE, TIE, phash
from tests import images


def reference(picture: Image.Image) -> int:
    return int(str(imagehash.phash(picture)), 16)


def decided_by_float_noise(picture: Image.Image) -> bool:
    """Is a coefficient of the hash's 8 x 8 corner a tie with the median that only float
    noise breaks (within TIE of it, not equal)? ImageHash's FFT then sets or clears its bit
    by the noise (a picture 2 pixels wide does it); ours calls it equal."""
    grey = picture.convert("L").resize((EDGE, EDGE), Image.Resampling.LANCZOS)
    pixels = numpy.asarray(grey, dtype=float)
    dct = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)
    corner = dct[:CORNER, :CORNER]
    gap = numpy.abs(corner - numpy.median(corner))
    return bool(numpy.any((gap > 0) & (gap <= TIE)))


def noise(width: int, height: int, mode: str, seed: int) -> Image.Image:
    rnd = random.Random(seed)
    bands = len(mode)
    data = bytes(rnd.randrange(256) for _ in range(width * height * bands))
    return Image.frombytes(mode, (width, height), data)


@pytest.mark.parametrize(
    "picture",
    [
        images.pattern(640, 400, seed=1),
        images.pattern(512, 341, seed=2),
        images.pattern(33, 2000, seed=3),
        noise(512, 512, "RGB", seed=4),
        noise(31, 17, "L", seed=5),
        noise(100, 60, "RGBA", seed=6),
        Image.new("RGB", (300, 200), (40, 90, 200)),  # flat: every AC coefficient is 0
        Image.new("L", (1, 1), 255),
        Image.linear_gradient("L").resize((320, 240)),
    ],
    ids=["photo", "photo-odd", "tall", "noise", "tiny", "rgba", "flat", "one-pixel", "gradient"],
)
def test_the_hash_is_imagehash_phash(picture: Image.Image) -> None:
    assert phash(picture) == reference(picture)


@settings(max_examples=100, deadline=None)
@given(
    width=st.integers(1, 96),
    height=st.integers(1, 96),
    seed=st.integers(0, 2**32),
    shapes=st.integers(0, 12),
)
def test_the_hash_is_imagehash_phash_for_any_picture(
    width: int, height: int, seed: int, shapes: int
) -> None:
    """Noise under some flat rectangles. A coefficient at the median that only float noise
    tells from it (a tie, in ImageHash too) is left out; the flat cases above have exact
    ties."""
    picture = noise(width, height, "RGB", seed)
    rnd = random.Random(seed)
    draw = ImageDraw.Draw(picture)
    for _ in range(shapes):
        x0, x1 = sorted(rnd.randrange(width + 1) for _ in range(2))
        y0, y1 = sorted(rnd.randrange(height + 1) for _ in range(2))
        draw.rectangle((x0, y0, x1, y1), fill=tuple(rnd.randrange(256) for _ in range(3)))
    assume(not decided_by_float_noise(picture))
    assert phash(picture) == reference(picture)
