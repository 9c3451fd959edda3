"""Ingest: fetch a posted file, check it, store the original, record it, report.

Ingest is a small state machine kept in `ingest_jobs`; claiming, leases, retries and the
attempts cap are in `bot.ingest_queue`, the work of one attempt is `Ingestor.process`, and
what it writes when the image is stored is in `bot.ingest_records`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from bot import ingest_queue, ingest_records
from bot.imaging import InvalidImage, inspect
from bot.ingest_queue import (
    MAX_ATTEMPTS,
    Claim,
    GaveUp,
    LeaseKeeper,
    backoff,
    holds,
)
from bot.logs import about
from bot.ports import DownloadError, FileSource
from storage.db import session_scope
from storage.media import MediaError, MediaInfo, MediaStore
from storage.models import (
    IngestJob,
    IngestState,
)

log = logging.getLogger(__name__)

INTERNAL_ERROR = "an internal error; will retry"

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class IngestOutcome:
    job_id: int
    image_id: int
    state: IngestState
    reason: str | None = None
    # Whose image it is, when known, so that telling them costs no extra read.
    team_id: str = ""
    uploader_id: str = ""


@dataclass(frozen=True)
class IngestLimits:
    max_bytes: int
    max_pixels: int


# --------------------------------------------------------------------------------------------
# Ingest


class Ingestor:
    """Runs ingest jobs: claim, download, validate, hash, store, mark stored, report.

    Every attempt ends with its result recorded (stored, queued for a retry, or failed with
    a reason) and reported to `on_settled`, whatever goes wrong in it; only losing the
    database itself can leave a job `running`, and then its lease runs out and the next
    claim records why."""

    def __init__(
        self,
        *,
        factory: sessionmaker[Session],
        media: MediaStore,
        files: FileSource,
        name_for: Callable[[str, str], str],
        work_dir: Path,
        limits: IngestLimits,
        clock: Clock,
        on_settled: Iterable[Callable[[IngestOutcome], None]] = (),
    ) -> None:
        self._factory = factory
        self._media = media
        self._files = files
        self._name_for = name_for
        self._work_dir = work_dir
        self._limits = limits
        self._clock = clock
        self._on_settled = list(on_settled)
        self._leases = LeaseKeeper(factory, clock)

    # -- claiming -----------------------------------------------------------------------

    def claim(self, job_id: int) -> Claim | GaveUp | None:
        """Take the lease on one job if it is due (or its previous lease ran out)."""
        return ingest_queue.claim(self._factory, job_id, now=self._clock())

    def run(self, job_id: int) -> IngestOutcome | None:
        """Claim and process one job; None when someone else has it or it is not due."""
        return self.settle(self.claim(job_id))

    def claim_next(self, *, queued_for: timedelta = timedelta(0)) -> Claim | GaveUp | None:
        """Take the lease on the job due longest (a queued one only if it has waited
        `queued_for` since it came due); None when nothing is due."""
        return ingest_queue.claim_next(self._factory, now=self._clock(), queued_for=queued_for)

    def run_next(self) -> IngestOutcome | None:
        """Claim and process the job due longest; None when nothing is due."""
        return self.settle(self.claim_next())

    def sweep(self, *, limit: int = 20) -> list[IngestOutcome]:
        """Run due retries and jobs whose process died, one claim at a time, until none is
        due or `limit` ran. One job's trouble never stops the others."""
        outcomes: list[IngestOutcome] = []
        for _ in range(limit):
            try:
                outcome = self.run_next()
            except Exception:
                # Claiming itself failed (the database is away): the next sweep tries again.
                log.exception("ingest sweep could not claim a job")
                break
            if outcome is None:
                break
            outcomes.append(outcome)
        return outcomes

    def settle(self, claimed: Claim | GaveUp | None) -> IngestOutcome | None:
        """Process a claimed job, or report one that gave up; None for no claim. Every line
        logged meanwhile names the job's team and image."""
        if claimed is None:
            return None
        with about(team=claimed.team_id, image_id=claimed.image_id):
            return self._settle(claimed)

    def _settle(self, claimed: Claim | GaveUp) -> IngestOutcome:
        if isinstance(claimed, GaveUp):
            log.warning("ingest job %s failed: %s", claimed.job_id, claimed.reason)
            outcome = IngestOutcome(
                claimed.job_id,
                claimed.image_id,
                IngestState.FAILED,
                claimed.reason,
                team_id=claimed.team_id,
                uploader_id=claimed.uploader_id,
            )
            self._report(outcome)
            return outcome
        return self.process(claimed)

    # -- the work -------------------------------------------------------------------------

    def process(self, claimed: Claim) -> IngestOutcome:
        """Do the work for a job this process has claimed, renewing its lease meanwhile.
        Never raises."""
        with self._leases.keep(claimed):
            return self._process(claimed)

    def _process(self, claimed: Claim) -> IngestOutcome:
        job_id, image_id = claimed.job_id, claimed.image_id
        try:
            try:
                outcome = self._ingest(claimed)
            except (DownloadError, MediaError) as exc:
                outcome = self._failed(claimed, str(exc), retryable=exc.retryable)
            except InvalidImage as exc:
                outcome = self._failed(claimed, str(exc), retryable=False)
            except LeaseLost:
                with session_scope(self._factory) as session:
                    job = session.get_one(IngestJob, job_id)
                    state, reason = IngestState(job.state), job.last_error
                log.info(
                    "ingest job %s: finished after its lease; the newer run's result stands",
                    job_id,
                )
                outcome = IngestOutcome(job_id, image_id, state, reason)
            except Exception:
                # Our bug, a surprise from Slack, or an outage we did not foresee (the database
                # going away): keep the job for a later try rather than lose the image; the
                # attempts cap ends it if it keeps happening.
                # The poster sees the reason: the details are for the log, not for them.
                log.exception("ingest job %s crashed", job_id)
                outcome = self._failed(claimed, INTERNAL_ERROR, retryable=True)
        except Exception:
            # Not even the failure could be recorded (the database is away): the lease runs
            # out and the next claim records that this attempt did not finish.
            log.exception("ingest job %s: could not record the result of its attempt", job_id)
            return IngestOutcome(job_id, image_id, IngestState.RUNNING, None)
        outcome = replace(outcome, team_id=claimed.team_id, uploader_id=claimed.uploader_id)
        self._report(outcome)
        return outcome

    def _report(self, outcome: IngestOutcome) -> None:
        for callback in self._on_settled:
            try:
                callback(outcome)
            except Exception:
                log.exception("ingest callback failed for job %s", outcome.job_id)

    def _ingest(self, claimed: Claim) -> IngestOutcome:
        team_id, file_id, url, size = claimed.team_id, claimed.file_id, claimed.url, claimed.size
        if url is None:
            resolved = self._files.resolve(team_id, file_id)
            if not resolved.looks_like_image:
                raise InvalidImage("this file is not an image, only images are kept")
            url, size = resolved.download_url, resolved.size
            if url is None:
                raise DownloadError(
                    "Slack did not give a download link for the file", retryable=False
                )
        if size is not None and size > self._limits.max_bytes:
            raise InvalidImage(
                f"the file is over {self._limits.max_bytes // (1024 * 1024)} MB, "
                "the limit for the library"
            )
        fetched = self._files.fetch(
            team_id, url, dest_dir=self._work_dir, max_bytes=self._limits.max_bytes
        )
        try:
            facts = inspect(fetched.path, max_pixels=self._limits.max_pixels)
            # Announce the bytes before storing them, so that a discard of another image
            # with the same bytes does not delete the original under us (see bot.discards).
            with session_scope(self._factory) as session:
                if not ingest_records.reserve(session, claimed, fetched.sha256):
                    raise LeaseLost
            stored = self._media.put(
                fetched.path,
                MediaInfo(
                    sha256=fetched.sha256,
                    format=facts.format,
                    team_id=team_id,
                    category=claimed.category,
                    context=(("slack_file_id", file_id),),
                ),
            )
        finally:
            fetched.path.unlink(missing_ok=True)
        # Looked up before the write transaction: no network call while holding it.
        uploader_name = self._name_for(team_id, claimed.uploader_id)
        with session_scope(self._factory) as session:
            if not ingest_records.mark_stored(
                session,
                claimed,
                uploader_name=uploader_name,
                facts=facts,
                sha256=fetched.sha256,
                size=fetched.size,
                key=stored.key,
                url=stored.url,
                now=self._clock(),
            ):
                raise LeaseLost
        # One line per image stored: which process did the work (bench/scale.py counts them).
        log.info("ingest job %s stored image %s", claimed.job_id, claimed.image_id)
        return IngestOutcome(
            job_id=claimed.job_id, image_id=claimed.image_id, state=IngestState.STORED
        )

    def _failed(self, claimed: Claim, reason: str, *, retryable: bool) -> IngestOutcome:
        """Record a failed attempt: queued for a retry with backoff, or failed for good when
        it cannot help or the attempts are used up. A run that lost its lease changes
        nothing: the newer run's result stands."""
        job_id, image_id, attempts = claimed.job_id, claimed.image_id, claimed.attempts
        now = self._clock()
        give_up = not retryable or attempts >= MAX_ATTEMPTS
        with session_scope(self._factory) as session:
            job = session.get_one(IngestJob, job_id, with_for_update=True)
            if not holds(job, claimed):
                log.info("ingest job %s: result of an expired run dropped (%s)", job_id, reason)
                return IngestOutcome(job_id, image_id, IngestState(job.state), job.last_error)
            if give_up and retryable:
                reason = f"gave up after {attempts} attempts: {reason}"
            job.last_error = reason[:1000]
            job.lease_until = None
            job.updated_at = now
            if give_up:
                job.state = IngestState.FAILED
            else:
                job.state = IngestState.QUEUED
                job.next_attempt_at = now + backoff(attempts)
        if give_up:
            log.warning("ingest job %s failed: %s", job_id, reason)
            return IngestOutcome(job_id, image_id, IngestState.FAILED, reason)
        log.info("ingest job %s will retry (attempt %s): %s", job_id, attempts, reason)
        return IngestOutcome(job_id, image_id, IngestState.QUEUED, reason)


class LeaseLost(Exception):
    """This run's lease on the job ran out and another run took it over."""
