"""The ingest queue in `ingest_jobs`: claiming jobs, leases, retries and giving up.

    queued --claim--> running --ok--> stored
                         |--retryable error--> queued (next_attempt_at = now + backoff)
                         |--permanent error / attempts used up--> failed (last_error)
    running with an expired lease (the process died) --claim--> running again, or failed
        once MAX_ATTEMPTS attempts have started ("gave up after N attempts: <last reason>")

A job is claimed one at a time, just before its work starts, so a lease (LEASE) measures one
attempt and never a batch waiting its turn. Claims lock the row (`FOR UPDATE`, and `SKIP
LOCKED` when taking the next due job on Postgres; SQLite has one writer at a time), so two
processes never run the same job at once. A run knows its claim by the lease's expiry
(`lease_until`): it may write its result only while the row still carries that lease.

Attempts are counted when claimed, and capped there too: a job whose process dies on every
attempt (out of memory, killed) would otherwise be claimed again after every lease forever.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from storage.access import still_installed
from storage.db import session_scope
from storage.models import Category, Image, IngestJob, IngestState

MAX_ATTEMPTS = 6
LEASE = timedelta(minutes=10)
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600
UNFINISHED = "an attempt did not finish (the process running it stopped or hung)"

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Claim:
    """This run holds the job until `lease` (or until someone takes it after that), with
    what the work needs to know, read in the claiming transaction."""

    job_id: int
    image_id: int
    lease: datetime
    attempts: int  # including this one
    team_id: str
    file_id: str
    uploader_id: str
    url: str | None
    size: int | None
    category: str | None


@dataclass(frozen=True)
class GaveUp:
    """The job was due again but had used its attempts: it is now failed."""

    job_id: int
    image_id: int
    reason: str
    team_id: str
    uploader_id: str


def claim(factory: sessionmaker[Session], job_id: int, *, now: datetime) -> Claim | GaveUp | None:
    """Take the lease on one job if it is due (or its previous lease ran out); None when it
    is not due, already settled, or another run holds it."""
    with session_scope(factory) as session:
        job = session.scalar(
            select(IngestJob).where(IngestJob.id == job_id, claimable(now)).with_for_update()
        )
        return _take(session, job, now) if job is not None else None


def claim_next(factory: sessionmaker[Session], *, now: datetime) -> Claim | GaveUp | None:
    """Take the lease on the job due longest; None when nothing is due. On Postgres, rows
    another worker is claiming at this moment are skipped rather than waited for."""
    with session_scope(factory) as session:
        query = (
            select(IngestJob)
            .where(claimable(now))
            .order_by(IngestJob.next_attempt_at, IngestJob.id)
            .limit(1)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        job = session.scalar(query)
        return _take(session, job, now) if job is not None else None


def _take(session: Session, job: IngestJob, now: datetime) -> Claim | GaveUp:
    if job.state == IngestState.RUNNING:
        # Its last attempt never reported: say so, so that the reason is never empty.
        job.last_error = UNFINISHED
    job.updated_at = now
    if job.attempts >= MAX_ATTEMPTS:
        reason = f"gave up after {job.attempts} attempts: {job.last_error or UNFINISHED}"
        job.state, job.lease_until, job.last_error = IngestState.FAILED, None, reason[:1000]
        uploader = session.scalar(select(Image.uploader_id).where(Image.id == job.image_id))
        return GaveUp(job.id, job.image_id, reason, job.team_id, uploader or "")
    job.state = IngestState.RUNNING
    job.lease_until = now + LEASE
    job.attempts += 1
    image = session.get_one(Image, job.image_id)
    category = (
        session.scalar(select(Category.name).where(Category.id == image.category_id))
        if image.category_id
        else None
    )
    return Claim(
        job_id=job.id,
        image_id=image.id,
        lease=job.lease_until,
        attempts=job.attempts,
        team_id=image.team_id,
        file_id=image.slack_file_id,
        uploader_id=image.uploader_id,
        url=job.download_url,
        size=job.size,
        category=category,
    )


def holds(job: IngestJob, lease: datetime | None) -> bool:
    """Does the run that claimed `job` with `lease` still own it?"""
    return job.state == IngestState.RUNNING and job.lease_until == lease


def claimable(now: datetime):  # type: ignore[no-untyped-def]
    return and_(
        or_(
            and_(IngestJob.state == IngestState.QUEUED, IngestJob.next_attempt_at <= now),
            and_(IngestJob.state == IngestState.RUNNING, IngestJob.lease_until < now),
        ),
        still_installed(IngestJob.team_id),
    )


def backoff(attempts: int) -> timedelta:
    """Exponential backoff with jitter: 30 s, 60 s, 120 s ... capped at an hour."""
    base = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return timedelta(seconds=base * random.uniform(0.8, 1.2))


def retry_failed(
    factory: sessionmaker[Session],
    *,
    now: datetime,
    team_id: str | None = None,
    failed_since: datetime | None = None,
) -> int:
    """Queue failed jobs again, due now with all their attempts (an operator's retry, once
    the cause is fixed: a scope added, Cloudinary back); returns how many. Only `team_id`'s,
    and only those that failed at or after `failed_since`, when given. Their last reason is
    kept until an attempt replaces it."""
    query = update(IngestJob).where(IngestJob.state == IngestState.FAILED)
    if team_id is not None:
        query = query.where(IngestJob.team_id == team_id)
    if failed_since is not None:
        query = query.where(IngestJob.updated_at >= failed_since)
    with session_scope(factory) as session:
        result = session.execute(
            query.values(
                state=IngestState.QUEUED,
                attempts=0,
                next_attempt_at=now,
                lease_until=None,
                updated_at=now,
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def lock_content(session: Session, sha256: str) -> None:
    """Serialise, per original, "an ingest is about to store these bytes" against "a discard
    is about to delete them" (the stores are content-addressed, so two images can share one
    original). A transaction-scoped advisory lock on Postgres; on SQLite every transaction
    already holds the database's single write lock."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": int(sha256[:15], 16)})
