"""The library's use cases: record posted files, ingest them durably, watch channels.

Slack-agnostic: callers pass plain values (a `PostedFile` is what we need to know about a
Slack file, whoever parsed it) and get domain results back.

Ingest is a small state machine kept in `ingest_jobs`:

    queued --claim--> running --ok--> stored
                         |--retryable error--> queued (next_attempt_at = now + backoff)
                         |--permanent error / attempts used up--> failed (last_error)
    running with an expired lease (the process died) --sweep--> claimed again

Claims are conditional updates, so two processes never run the same job at once.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.domain import Post, PostedFile
from bot.imaging import ImageFacts, InvalidImage, inspect
from bot.slack_files import DownloadError, download
from storage.db import session_scope
from storage.media import MediaError, MediaInfo, MediaStore
from storage.models import (
    AuditEvent,
    Category,
    Channel,
    Image,
    IngestJob,
    IngestState,
    ProcessedEvent,
    WatchedChannel,
)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
LEASE = timedelta(minutes=10)
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class IngestOutcome:
    job_id: int
    image_id: int
    state: IngestState
    reason: str | None = None


@dataclass(frozen=True)
class IngestLimits:
    max_bytes: int
    max_pixels: int


# --------------------------------------------------------------------------------------------
# Watched channels


def is_watched(session: Session, *, team_id: str, channel_id: str) -> bool:
    return session.get(WatchedChannel, (team_id, channel_id)) is not None


# --------------------------------------------------------------------------------------------
# Recording posted files (on the ack path: database writes only, no network)


def record_posted_files(
    factory: sessionmaker[Session],
    *,
    post: Post,
    files: Sequence[PostedFile],
    event_id: str | None,
    now: datetime,
    require_watched: bool = True,
) -> list[int]:
    """Upsert an image and an ingest job per image file; return the ids of jobs to run.

    Safe against Slack's retries (same `event_id`) and against the two events Slack sends
    about one file (the image is unique per team and Slack file id). Non-image files are
    skipped. Returns nothing when the channel is not watched or the event was seen before.
    """
    wanted = [f for f in files if f.looks_like_image]
    if not wanted and not event_id:
        return []
    with session_scope(factory) as session:
        if require_watched and not is_watched(
            session, team_id=post.team_id, channel_id=post.channel_id
        ):
            return []
        if event_id and not _first_delivery(
            session, team_id=post.team_id, event_id=event_id, now=now
        ):
            return []
        _remember_channel(session, post=post, now=now)
        job_ids = []
        for posted in wanted:
            job_id = _upsert_image_and_job(session, post=post, posted=posted, now=now)
            if job_id is not None:
                job_ids.append(job_id)
        return job_ids


def _remember_channel(session: Session, *, post: Post, now: datetime) -> None:
    known = session.get(Channel, (post.team_id, post.channel_id))
    if known is not None:
        if post.channel_private and not known.is_private:
            # The channel became private: its earlier images are now for members only.
            known.is_private = True
            session.execute(
                update(Image)
                .where(Image.team_id == post.team_id, Image.channel_id == post.channel_id)
                .values(channel_private=True)
            )
        return
    try:
        with session.begin_nested():
            session.add(
                Channel(
                    team_id=post.team_id,
                    channel_id=post.channel_id,
                    is_private=post.channel_private,
                    checked_at=now,  # Slack's own channel_type on the event said it
                    created_at=now,
                )
            )
    except IntegrityError:
        pass  # remembered by a concurrent delivery


def _first_delivery(session: Session, *, team_id: str, event_id: str, now: datetime) -> bool:
    try:
        with session.begin_nested():
            session.add(ProcessedEvent(event_id=event_id, team_id=team_id, created_at=now))
    except IntegrityError:
        return False
    return True


def _upsert_image_and_job(
    session: Session, *, post: Post, posted: PostedFile, now: datetime
) -> int | None:
    existing = session.scalar(
        select(Image).where(Image.team_id == post.team_id, Image.slack_file_id == posted.file_id)
    )
    if existing is not None:
        job = session.scalar(select(IngestJob).where(IngestJob.image_id == existing.id))
        # A job that is queued may run now; stored, failed or running ones are left alone.
        if job is not None and job.state == IngestState.QUEUED:
            return job.id
        return None
    category_id = session.scalar(
        select(WatchedChannel.category_id).where(
            WatchedChannel.team_id == post.team_id, WatchedChannel.channel_id == post.channel_id
        )
    )
    image = Image(
        team_id=post.team_id,
        slack_file_id=posted.file_id,
        channel_id=post.channel_id,
        channel_private=post.channel_private,
        message_ts=post.message_ts,
        thread_ts=post.thread_ts,
        uploader_id=post.user_id,
        permalink=(posted.permalink or "")[:1024] or None,
        file_name=posted.name[:255],
        title=_title_from(posted)[:255],
        category_id=category_id,
        tags=[],
        tag_keys=[],
        exif={},
        sort_at=post.posted_at or now,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(image)
            session.flush()
            job = IngestJob(
                team_id=post.team_id,
                image_id=image.id,
                state=IngestState.QUEUED,
                attempts=0,
                next_attempt_at=now,
                download_url=posted.download_url,
                mimetype=posted.mimetype or None,
                size=posted.size,
                created_at=now,
                updated_at=now,
            )
            session.add(job)
            session.flush()
    except IntegrityError:
        # Another delivery of the same file won the race; it owns the job.
        return None
    return job.id


def _title_from(posted: PostedFile) -> str:
    title = posted.title.strip() or Path(posted.name).stem
    if title == posted.name or title == Path(posted.name).stem:
        title = Path(title).stem.replace("_", " ").replace("-", " ").strip()
    return title


# --------------------------------------------------------------------------------------------
# Ingest


FileResolver = Callable[[str, str], PostedFile]
"""(team_id, file_id) -> full file details, via Slack's files.info (for Slack Connect stubs)."""


class Ingestor:
    """Runs ingest jobs: download, validate, hash, store, mark stored."""

    def __init__(
        self,
        *,
        factory: sessionmaker[Session],
        media: MediaStore,
        token_for: Callable[[str], str | None],
        resolve_file: FileResolver,
        name_for: Callable[[str, str], str],
        api_host: str | None,
        work_dir: Path,
        limits: IngestLimits,
        clock: Clock,
        on_settled: Iterable[Callable[[IngestOutcome], None]] = (),
    ) -> None:
        self._factory = factory
        self._media = media
        self._token_for = token_for
        self._resolve_file = resolve_file
        self._name_for = name_for
        self._api_host = api_host
        self._work_dir = work_dir
        self._limits = limits
        self._clock = clock
        self._on_settled = list(on_settled)

    # -- claiming -----------------------------------------------------------------------

    def claim(self, job_id: int) -> bool:
        """Take the lease on one job if it is due (or its previous lease ran out)."""
        now = self._clock()
        with session_scope(self._factory) as session:
            result = session.execute(
                update(IngestJob)
                .where(IngestJob.id == job_id, _claimable(now))
                .values(
                    state=IngestState.RUNNING,
                    lease_until=now + LEASE,
                    attempts=IngestJob.attempts + 1,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def claim_due(self, *, limit: int = 20) -> list[int]:
        """Claim up to `limit` due or abandoned jobs. On Postgres, rows locked by another
        worker are skipped (`FOR UPDATE SKIP LOCKED`), so two workers never share a job."""
        now = self._clock()
        with session_scope(self._factory) as session:
            query = (
                select(IngestJob.id)
                .where(_claimable(now))
                .order_by(IngestJob.next_attempt_at, IngestJob.id)
                .limit(limit)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            ids = list(session.scalars(query))
            if ids:
                session.execute(
                    update(IngestJob)
                    .where(IngestJob.id.in_(ids))
                    .values(
                        state=IngestState.RUNNING,
                        lease_until=now + LEASE,
                        attempts=IngestJob.attempts + 1,
                        updated_at=now,
                    )
                    .execution_options(synchronize_session=False)
                )
            return ids

    def sweep(self, *, limit: int = 20) -> list[IngestOutcome]:
        """The worker's periodic job: resume retries due now and jobs whose process died."""
        return [self.process(job_id) for job_id in self.claim_due(limit=limit)]

    def run(self, job_id: int) -> IngestOutcome | None:
        """Claim and process one job; None when someone else has it or it is not due."""
        if not self.claim(job_id):
            return None
        return self.process(job_id)

    # -- the work -------------------------------------------------------------------------

    def process(self, job_id: int) -> IngestOutcome:
        """Do the work for a job this process has claimed. Never raises for bad input."""
        with session_scope(self._factory) as session:
            job = session.get_one(IngestJob, job_id)
            image = session.get_one(Image, job.image_id)
            team_id, file_id = image.team_id, image.slack_file_id
            uploader_id = image.uploader_id
            url, size, attempts = job.download_url, job.size, job.attempts
            lease = job.lease_until
            category = (
                session.scalar(select(Category.name).where(Category.id == image.category_id))
                if image.category_id
                else None
            )
            image_id = image.id
        try:
            outcome = self._ingest(
                job_id=job_id,
                lease=lease,
                image_id=image_id,
                team_id=team_id,
                uploader_id=uploader_id,
                file_id=file_id,
                url=url,
                size=size,
                category=category,
            )
        except (DownloadError, MediaError) as exc:
            outcome = self._failed(
                job_id, image_id, str(exc), retryable=exc.retryable, attempts=attempts, lease=lease
            )
        except LeaseLost:
            with session_scope(self._factory) as session:
                state = IngestState(session.get_one(IngestJob, job_id).state)
            log.info(
                "ingest job %s: finished after its lease; the newer run's result stands", job_id
            )
            outcome = IngestOutcome(job_id, image_id, state)
        except InvalidImage as exc:
            outcome = self._failed(
                job_id, image_id, str(exc), retryable=False, attempts=attempts, lease=lease
            )
        except Exception:
            # Our bug or an outage we did not foresee (the database going away): keep the job
            # for a later try rather than lose the image.
            log.exception("ingest job %s crashed", job_id)
            outcome = self._failed(
                job_id,
                image_id,
                "an internal error; will retry",
                retryable=True,
                attempts=attempts,
                lease=lease,
            )
        for callback in self._on_settled:
            try:
                callback(outcome)
            except Exception:
                log.exception("ingest callback failed for job %s", job_id)
        return outcome

    def _ingest(
        self,
        *,
        job_id: int,
        lease: datetime | None,
        image_id: int,
        team_id: str,
        uploader_id: str,
        file_id: str,
        url: str | None,
        size: int | None,
        category: str | None,
    ) -> IngestOutcome:
        token = self._token_for(team_id)
        if not token:
            raise DownloadError("the app is not installed in this workspace", retryable=False)
        if url is None:
            resolved = self._resolve_file(team_id, file_id)
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
        fetched = download(
            url,
            token=token,
            api_host=self._api_host,
            dest_dir=self._work_dir,
            max_bytes=self._limits.max_bytes,
        )
        try:
            facts = inspect(fetched.path, max_pixels=self._limits.max_pixels)
            stored = self._media.put(
                fetched.path,
                MediaInfo(
                    sha256=fetched.sha256,
                    format=facts.format,
                    team_id=team_id,
                    category=category,
                    context=(("slack_file_id", file_id),),
                ),
            )
        finally:
            fetched.path.unlink(missing_ok=True)
        if not self._mark_stored(
            job_id=job_id,
            lease=lease,
            image_id=image_id,
            # Looked up before the write transaction: no network call while holding it.
            uploader_name=self._name_for(team_id, uploader_id),
            facts=facts,
            sha256=fetched.sha256,
            size=fetched.size,
            key=stored.key,
            url=stored.url,
        ):
            raise LeaseLost
        return IngestOutcome(job_id=job_id, image_id=image_id, state=IngestState.STORED)

    def _mark_stored(
        self,
        *,
        job_id: int,
        lease: datetime | None,
        image_id: int,
        uploader_name: str,
        facts: ImageFacts,
        sha256: str,
        size: int,
        key: str,
        url: str,
    ) -> bool:
        """Record the stored original; False when this run no longer holds the job (its
        lease ran out and another run took it over), in which case nothing is written."""
        now = self._clock()
        b0, b1, b2, b3 = facts.phash_bands
        with session_scope(self._factory) as session:
            job = session.get_one(IngestJob, job_id, with_for_update=True)
            if not _holds(job, lease):
                return False
            image = session.get_one(Image, image_id)
            image.width, image.height, image.format = facts.width, facts.height, facts.format
            image.bytes, image.sha256 = size, sha256
            image.phash = facts.phash
            image.phash_b0, image.phash_b1, image.phash_b2, image.phash_b3 = b0, b1, b2, b3
            image.camera = facts.camera
            image.exif = facts.exif
            if image.shoot_date is None and facts.shoot_date is not None:
                image.shoot_date = facts.shoot_date
                image.sort_at = facts.shoot_date
            image.uploader_name = uploader_name[:255]
            image.storage_key, image.delivery_url = key, url
            image.updated_at = now
            job.state, job.lease_until, job.last_error = IngestState.STORED, None, None
            job.updated_at = now
            session.add(
                AuditEvent(
                    team_id=image.team_id,
                    image_id=image.id,
                    actor_id=image.uploader_id,
                    action="uploaded",
                    detail={"slack_file_id": image.slack_file_id, "sha256": sha256},
                    created_at=now,
                )
            )

    def _failed(
        self,
        job_id: int,
        image_id: int,
        reason: str,
        *,
        retryable: bool,
        attempts: int,
        lease: datetime | None,
    ) -> IngestOutcome:
        now = self._clock()
        give_up = not retryable or attempts >= MAX_ATTEMPTS
        with session_scope(self._factory) as session:
            job = session.get_one(IngestJob, job_id, with_for_update=True)
            if not _holds(job, lease):
                # Another run took the job over after our lease ran out: its result stands.
                log.info("ingest job %s: result of an expired run dropped (%s)", job_id, reason)
                return IngestOutcome(job_id, image_id, IngestState(job.state), job.last_error)
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


def _holds(job: IngestJob, lease: datetime | None) -> bool:
    return job.state == IngestState.RUNNING and job.lease_until == lease


def _claimable(now: datetime):  # type: ignore[no-untyped-def]
    return or_(
        and_(IngestJob.state == IngestState.QUEUED, IngestJob.next_attempt_at <= now),
        and_(IngestJob.state == IngestState.RUNNING, IngestJob.lease_until < now),
    )


def backoff(attempts: int) -> timedelta:
    """Exponential backoff with jitter: 30 s, 60 s, 120 s ... capped at an hour."""
    base = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return timedelta(seconds=base * random.uniform(0.8, 1.2))
