"""Is a new image already in the team's library? Same sha256, or a perceptual hash within a
small Hamming distance.

The near-duplicate lookup never scans the table: two 64-bit hashes within distance 3 agree
exactly on at least one of their four 16-bit bands (pigeonhole), and each band has an index.
So the candidates are four indexed equality probes; the exact distance is checked on those.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Row, Select, bindparam, case, exists, select, union
from sqlalchemy.orm import Session

from bot.imaging import phash_bands
from storage.models import Image, IngestJob, IngestState
from storage.visibility import Viewer, viewer_params, visible_to, visible_to_any

MAX_INDEXED_DISTANCE = 3  # what four bands can guarantee to find
LOOK_ALIKES_LIMIT = 200  # candidates read at most (a flood of blank images shares bands)


@dataclass(frozen=True)
class Duplicate:
    image_id: int
    title: str
    uploader_id: str
    created_at: datetime
    exact: bool
    distance: int


def hamming(a: int, b: int) -> int:
    return ((a ^ b) & 0xFFFF_FFFF_FFFF_FFFF).bit_count()


class Hashed(Protocol):
    """What finding an image's duplicate reads of it: an `Image`, or a row of those columns."""

    @property
    def id(self) -> int: ...
    @property
    def team_id(self) -> str: ...
    @property
    def sha256(self) -> str | None: ...
    @property
    def phash(self) -> int | None: ...


_images = Image.__table__
# What a Duplicate names, and the hashes to rank by: not the whole image.
_CANDIDATE = (
    _images.c.id,
    _images.c.title,
    _images.c.uploader_id,
    _images.c.created_at,
    _images.c.sha256,
    _images.c.phash,
)


def find_duplicate(
    session: Session, image: Hashed, *, max_distance: int, viewer: Viewer
) -> Duplicate | None:
    """The closest stored image of the same team that `viewer` (the poster) may see: a
    duplicate they could not see is not named to them. The same bytes win (the oldest
    such image), else the nearest perceptual hash. One statement: it runs after every
    ingest."""
    if image.sha256 is None or image.phash is None:
        return None
    max_distance = min(max_distance, MAX_INDEXED_DISTANCE)
    lookup = _duplicate_lookup(
        sqlite=session.get_bind().dialect.name == "sqlite",
        is_guest=viewer.is_guest,
        has_channels=bool(viewer.channels),
    )
    bands = dict(zip(_BANDS, phash_bands(image.phash), strict=True))
    candidates = session.execute(
        lookup,
        {"team_id": image.team_id, "sha256": image.sha256, "image_id": image.id}
        | bands
        | viewer_params(viewer),
    )
    best: Duplicate | None = None
    for candidate in candidates:
        if candidate.sha256 == image.sha256:
            return _duplicate(candidate, exact=True, distance=0)
        if candidate.phash is None:
            continue
        distance = hamming(candidate.phash, image.phash)
        if distance <= max_distance and (best is None or distance < best.distance):
            best = _duplicate(candidate, exact=False, distance=distance)
    return best


_BANDS = ("band_0", "band_1", "band_2", "band_3")


@functools.cache
def _duplicate_lookup(*, sqlite: bool, is_guest: bool, has_channels: bool) -> Select[Any]:
    """`find_duplicate`'s statement, built once for each kind of viewer: built on every
    ingest, it cost more than running it (bench/README.md)."""
    team_id = bindparam("team_id")
    same_bytes = _images.c.sha256 == bindparam("sha256")
    probes = [
        select(_images.c.id).where(_images.c.team_id == team_id, same_bytes),
        *_band_probes(team_id, [bindparam(name) for name in _BANDS]),
    ]
    return (
        select(*_CANDIDATE)
        .where(
            _images.c.id.in_(union(*probes)),
            _images.c.id != bindparam("image_id"),
            _stored(),
            visible_to_any(is_guest=is_guest, has_channels=has_channels, team_unindexed=sqlite),
        )
        .order_by(case((same_bytes, 0), else_=1), _images.c.id)
        .limit(LOOK_ALIKES_LIMIT)
    )


def look_alikes(
    team_id: str,
    phash: int,
    *,
    exclude: int,
    viewer: Viewer,
    sqlite: bool,
    limit: int = LOOK_ALIKES_LIMIT,
) -> Select[tuple[Image]]:
    """Stored images of the team sharing a 16-bit band with `phash` that `viewer` may see:
    four indexed probes, united before anything else is checked. (As one OR beside the
    visibility rule, SQLite walked the team's whole range instead: 40-160 ms at 100k
    images, 0.3 ms like this; bench/web.py.)"""
    return (
        select(Image)
        .where(
            Image.id.in_(union(*_band_probes(team_id, phash_bands(phash)))),
            Image.id != exclude,
            _stored(),
            visible_to(viewer, team_unindexed=sqlite),
        )
        .limit(limit)
    )


def _band_probes(team_id: Any, values: Sequence[Any]) -> list[Select[tuple[int]]]:
    """The ids of the team's images sharing each 16-bit band with a hash (its four `values`,
    or bind parameters for them), one index each."""
    bands = (_images.c.phash_b0, _images.c.phash_b1, _images.c.phash_b2, _images.c.phash_b3)
    return [
        select(_images.c.id).where(_images.c.team_id == team_id, band == value)
        for band, value in zip(bands, values, strict=True)
    ]


def _stored() -> ColumnElement[bool]:
    """The image's ingest finished (one indexed probe per candidate, not a list of every
    stored image)."""
    return exists().where(IngestJob.image_id == Image.id, IngestJob.state == IngestState.STORED)


def _duplicate(image: Row[Any], *, exact: bool, distance: int) -> Duplicate:
    return Duplicate(
        image_id=image.id,
        title=image.title,
        uploader_id=image.uploader_id,
        created_at=image.created_at,
        exact=exact,
        distance=distance,
    )
