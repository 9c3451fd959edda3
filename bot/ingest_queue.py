"""The ingest queue in `ingest_jobs`: claiming jobs, leases, retries and giving up.

    queued --claim--> running --ok--> stored
                         |--retryable error--> queued (next_attempt_at = now + backoff)
                         |--permanent error / attempts used up--> failed (last_error)
    running with an expired lease (the process died) --claim--> running again, or failed
        once MAX_ATTEMPTS attempts have started ("gave up after N attempts: <last reason>")

A job is claimed one at a time, just before its work starts. Claims lock the row (`FOR
UPDATE`, and `SKIP LOCKED` when taking the next due job on Postgres; SQLite has one writer at
a time), so two processes never run the same job at once. A run knows its claim by the
attempt number it took (every claim counts one): it may write its result only while the row
is still `running` that attempt.

The lease is short (LEASE) and the process working on a job renews it every RENEW_SECONDS
(`renew`, from bot.ingestor.LeaseKeeper): a job whose process was killed (kill -9, a crashed
dyno) is taken over about a minute later, not after the longest attempt could last, while a
slow attempt (a 50 MB download) keeps its job as long as its process lives.

Attempts are counted when claimed, and capped there too: a job whose process dies on every
attempt (out of memory, killed) would otherwise be claimed again after every lease forever.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, bindparam, or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from storage.access import still_installed
from storage.db import session_scope
from storage.models import Category, Image, IngestJob, IngestState

MAX_ATTEMPTS = 6
LEASE = timedelta(seconds=60)
RENEW_SECONDS = 15.0  # a live run renews its lease four times a lease: a stall must be long
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600
UNFINISHED = "an attempt did not finish (the process running it stopped or hung)"

Clock = Callable[[], datetime]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    """This run holds the job while the row is `running` its attempt (`attempts`), with
    what the work needs to know, read in the claiming transaction."""

    job_id: int
    image_id: int
    attempts: int  # including this one: the run's claim
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
        job = session.execute(_CLAIMABLE_JOB, {"job_id": job_id, "now": now}).first()
        return _take(session, job, now) if job is not None else None


def claim_next(
    factory: sessionmaker[Session], *, now: datetime, queued_for: timedelta = timedelta(0)
) -> Claim | GaveUp | None:
    """Take the lease on an abandoned job (its lease ran out), else on the queued job due
    longest, if it has been due for `queued_for`; None when nothing is. On Postgres, rows
    another worker is claiming at this moment are skipped rather than waited for."""
    when = {"now": now, "due_by": now - queued_for}
    with session_scope(factory) as session:
        for next_job in _NEXT_DUE_JOBS:
            job = session.execute(next_job, when).first()
            if job is not None:
                return _take(session, job, now)
        return None


def _take(session: Session, job: Row[Any], now: datetime) -> Claim | GaveUp:
    # A last attempt that never reported is said so: the reason is never empty.
    last_error = UNFINISHED if job.state == IngestState.RUNNING else job.last_error
    if job.attempts >= MAX_ATTEMPTS:
        reason = f"gave up after {job.attempts} attempts: {last_error or UNFINISHED}"
        session.execute(
            _SETTLE_CLAIMED,
            {"job_id": job.id, "state": IngestState.FAILED, "attempts": job.attempts}
            | {"lease_until": None, "last_error": reason[:1000], "updated_at": now},
        )
        return GaveUp(job.id, job.image_id, reason, job.team_id, job.uploader_id)
    attempts = job.attempts + 1
    session.execute(
        _SETTLE_CLAIMED,
        {"job_id": job.id, "state": IngestState.RUNNING, "attempts": attempts}
        | {"lease_until": now + LEASE, "last_error": last_error, "updated_at": now},
    )
    return Claim(
        job_id=job.id,
        image_id=job.image_id,
        attempts=attempts,
        team_id=job.team_id,
        file_id=job.slack_file_id,
        uploader_id=job.uploader_id,
        url=job.download_url,
        size=job.size,
        category=job.category,
    )


# Claims run before every ingest: built once, on Core tables, one statement reading the job
# and what the run needs to know of its image, and one writing the claim.
_jobs, _images, _categories = IngestJob.__table__, Image.__table__, Category.__table__
_QUEUED_DUE = and_(_jobs.c.state == IngestState.QUEUED, _jobs.c.next_attempt_at <= bindparam("now"))
_LEASE_RAN_OUT = and_(_jobs.c.state == IngestState.RUNNING, _jobs.c.lease_until < bindparam("now"))
_DUE = (or_(_QUEUED_DUE, _LEASE_RAN_OUT), still_installed(_jobs.c.team_id))
_CLAIMING = select(
    _jobs.c.id,
    _jobs.c.image_id,
    _jobs.c.team_id,
    _jobs.c.state,
    _jobs.c.attempts,
    _jobs.c.last_error,
    _jobs.c.download_url,
    _jobs.c.size,
    _images.c.slack_file_id,
    _images.c.uploader_id,
    _categories.c.name.label("category"),
).select_from(
    _jobs.join(_images, _images.c.id == _jobs.c.image_id).outerjoin(
        _categories, _categories.c.id == _images.c.category_id
    )
)
# The job's row is locked (Postgres; SQLite has one writer at a time), not its image's.
_CLAIMABLE_JOB = _CLAIMING.where(_jobs.c.id == bindparam("job_id"), *_DUE).with_for_update(of=_jobs)
# The next due job: an abandoned one first (its process died), else the queued one due
# longest. One statement per kind, each reading (state, next_attempt_at) in order and
# stopping at its first rows (running jobs are few: one per ingest thread). One statement
# for both kinds (an OR) gathered and sorted every due job on every claim: 67 ms a claim
# with 100,000 jobs queued on Postgres, 25 ms on SQLite (bench/claims.py), the queue
# draining slower the longer it was.
_NEXT_DUE_JOBS = tuple(
    _CLAIMING.where(due, still_installed(_jobs.c.team_id))
    .order_by(_jobs.c.next_attempt_at, _jobs.c.id)
    .limit(1)
    .with_for_update(of=_jobs, skip_locked=True)
    for due in (
        _LEASE_RAN_OUT,
        and_(_jobs.c.state == IngestState.QUEUED, _jobs.c.next_attempt_at <= bindparam("due_by")),
    )
)
_SETTLE_CLAIMED = (
    update(_jobs)
    .where(_jobs.c.id == bindparam("job_id"))
    .values(
        {
            column: bindparam(column, type_=_jobs.c[column].type)
            for column in ("state", "attempts", "lease_until", "last_error", "updated_at")
        }
    )
)


def holds(job: IngestJob, claimed: Claim) -> bool:
    """Does the run of `claimed` still own the job (no later claim took it over)?"""
    return job.state == IngestState.RUNNING and job.attempts == claimed.attempts


_LEASE_OF = (
    select(IngestJob.__table__.c.state, IngestJob.__table__.c.attempts)
    .where(IngestJob.__table__.c.id == bindparam("job_id"))
    .with_for_update()
)


def still_holds(session: Session, claimed: Claim) -> bool:
    """`holds`, read under a row lock without loading the job (the write that follows in
    this transaction is then the run's own)."""
    row = session.execute(_LEASE_OF, {"job_id": claimed.job_id}).one()
    return bool(row.state == IngestState.RUNNING and row.attempts == claimed.attempts)


def renew(factory: sessionmaker[Session], claims: list[Claim], *, now: datetime) -> int:
    """Push back the lease of each job whose run is still the one holding it (a run that
    was taken over renews nothing); returns how many were renewed."""
    renewed = 0
    with session_scope(factory) as session:
        for claimed in claims:
            result = session.execute(
                update(IngestJob)
                .where(
                    IngestJob.id == claimed.job_id,
                    IngestJob.state == IngestState.RUNNING,
                    IngestJob.attempts == claimed.attempts,
                )
                .values(lease_until=now + LEASE)
            )
            renewed += result.rowcount  # type: ignore[attr-defined]
    return renewed


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


class LeaseKeeper:
    """Renews, every `every` seconds, the leases of the jobs this process is working on
    (`with keeper.keep(claimed): ...`). Its thread runs only while some job is kept."""

    def __init__(
        self, factory: sessionmaker[Session], clock: Clock, *, every: float = RENEW_SECONDS
    ) -> None:
        self._factory, self._clock, self._every = factory, clock, every
        self._kept: dict[int, Claim] = {}
        self._lock = threading.Lock()
        self._renewing = threading.Lock()
        self._thread: threading.Thread | None = None

    @contextmanager
    def keep(self, claimed: Claim) -> Iterator[None]:
        with self._lock:
            self._kept[claimed.job_id] = claimed
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="leases", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            # Once this returns, the job's lease is never pushed back again (a renewal under
            # way is waited for): a run that ended, or is treated as dead, lets it run out.
            with self._renewing, self._lock:
                self._kept.pop(claimed.job_id, None)

    def _run(self) -> None:
        while True:
            time.sleep(self._every)
            with self._renewing:
                with self._lock:
                    kept = list(self._kept.values())
                    if not kept:
                        self._thread = None
                        return
                try:
                    renew(self._factory, kept, now=self._clock())
                except Exception:
                    # The database is away: the leases run out unless a later renewal gets
                    # through, and then another process takes the jobs over.
                    log.warning("could not renew the leases of %s ingest jobs", len(kept))
