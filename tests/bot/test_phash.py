"""bot.phash gives ImageHash's phash: hashes stored before it replaced ImageHash
(numpy and scipy, about 35 MB a process) still find the same duplicates."""

from __future__ import annotations

import random

import imagehash
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from bot.phash import phash
from tests import images


def reference(picture: Image.Image) -> int:
    return int(str(imagehash.phash(picture)), 16)


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
    """Noise under some flat rectangles: a coefficient exactly at the median (a tie only
    float noise decides, in ImageHash too) is left to the flat cases above."""
    picture = noise(width, height, "RGB", seed)
    rnd = random.Random(seed)
    draw = ImageDraw.Draw(picture)
    for _ in range(shapes):
        x0, x1 = sorted(rnd.randrange(width + 1) for _ in range(2))
        y0, y1 = sorted(rnd.randrange(height + 1) for _ in range(2))
        draw.rectangle((x0, y0, x1, y1), fill=tuple(rnd.randrange(256) for _ in range(3)))
    assert phash(picture) == reference(picture)
