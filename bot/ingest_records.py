"""What an ingest run writes when it stores an image: the original's sha256 announced before
the bytes are stored, then the image's facts, its job settled and the audit event. Each
returns False, writing nothing, when the run no longer holds its job (its lease ran out and
another run took it over).

Every stored image makes these writes, so the statements are built once, on Core tables with
bound parameters: building them per image, and loading the ORM's objects to change, cost
more CPU than running them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Update, bindparam, insert, select, update
from sqlalchemy.orm import Session

from bot.imaging import ImageFacts
from bot.ingest_queue import Claim, lock_content, still_holds
from storage.models import AuditEvent, Image, IngestJob, IngestState

_images = Image.__table__
_jobs = IngestJob.__table__


def _set_image(*columns: str) -> Update:
    """UPDATE images SET each column = its bound parameter (of the same name, in the
    parameters it is run with) WHERE id = :image_id."""
    return (
        update(_images)
        .where(_images.c.id == bindparam("image_id"))
        .values({c: bindparam(c, type_=_images.c[c].type) for c in columns})
    )


_STORED_COLUMNS = (
    "width", "height", "format", "bytes", "sha256", "phash", "phash_b0", "phash_b1",
    "phash_b2", "phash_b3", "camera", "exif", "uploader_name", "storage_key", "delivery_url",
    "updated_at",
)  # fmt: skip
_STORED_IMAGE = _set_image(*_STORED_COLUMNS)
_STORED_IMAGE_DATED = _set_image(*_STORED_COLUMNS, "shoot_date", "sort_at")
_SET_SHA256 = _set_image("sha256")
# Locked (on Postgres) until the write: a date or name saved meanwhile is then kept, not
# overwritten by the file's.
_KEPT_DETAILS = (
    select(_images.c.shoot_date, _images.c.uploader_name)
    .where(_images.c.id == bindparam("image_id"))
    .with_for_update()
)
# Only while this run holds the job: `bot.ingest_queue.holds`, in the WHERE clause.
_STORED_JOB = (
    update(_jobs)
    .where(
        _jobs.c.id == bindparam("job_id"),
        _jobs.c.state == IngestState.RUNNING,
        _jobs.c.attempts == bindparam("claimed_attempts"),
    )
    .values(
        state=IngestState.STORED,
        lease_until=None,
        last_error=None,
        updated_at=bindparam("now", type_=_jobs.c.updated_at.type),
    )
)
# The columns of an INSERT are the keys of the parameters it is run with.
_AUDIT = insert(AuditEvent.__table__)


def reserve(session: Session, claimed: Claim, sha256: str) -> bool:
    """Record the original's sha256 on the image before it is stored, under the content
    lock a discard of the same bytes takes (see `bot.discards.discard_image`)."""
    lock_content(session, sha256)
    if not still_holds(session, claimed):
        return False
    session.execute(_SET_SHA256, {"image_id": claimed.image_id, "sha256": sha256})
    return True


def mark_stored(
    session: Session,
    claimed: Claim,
    *,
    uploader_name: str,
    facts: ImageFacts,
    sha256: str,
    size: int,
    key: str,
    url: str,
    now: datetime,
) -> bool:
    """Record the stored original. A shoot date or uploader name already on the image (the
    details form, an upload link's label) is kept."""
    b0, b1, b2, b3 = facts.phash_bands
    # Settling the job first checks, under its row lock, that this run still holds it.
    settled = session.execute(
        _STORED_JOB, {"job_id": claimed.job_id, "claimed_attempts": claimed.attempts, "now": now}
    )
    if not settled.rowcount:  # type: ignore[attr-defined]
        return False
    kept = session.execute(_KEPT_DETAILS, {"image_id": claimed.image_id}).one()
    dated = kept.shoot_date is None and facts.shoot_date is not None
    session.execute(
        _STORED_IMAGE_DATED if dated else _STORED_IMAGE,
        {
            "image_id": claimed.image_id,
            "width": facts.width,
            "height": facts.height,
            "format": facts.format,
            "bytes": size,
            "sha256": sha256,
            "phash": facts.phash,
            "phash_b0": b0,
            "phash_b1": b1,
            "phash_b2": b2,
            "phash_b3": b3,
            "camera": facts.camera,
            "exif": facts.exif,
            "uploader_name": kept.uploader_name or uploader_name[:255],
            "storage_key": key,
            "delivery_url": url,
            "updated_at": now,
        }
        | ({"shoot_date": facts.shoot_date, "sort_at": facts.shoot_date} if dated else {}),
    )
    session.execute(
        _AUDIT,
        {
            "team_id": claimed.team_id,
            "image_id": claimed.image_id,
            "actor_id": claimed.uploader_id,
            "action": "uploaded",
            "detail": {"slack_file_id": claimed.file_id, "sha256": sha256},
            "created_at": now,
        },
    )
    return True
