"""Recording posted files: the moment an image is posted in a watched channel (or added with
the shortcut), before anyone is answered. Safe against retried deliveries and duplicate
events; the work of fetching and storing happens later, in `bot.ingestor`.

Platform-agnostic: callers pass plain values (a `PostedFile` is what we need to know about a
posted file, whoever parsed it) and get job ids back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.domain import Post, PostedFile
from storage.db import insert_unless_present, priority_writes, session_scope
from storage.models import (
    Channel,
    Image,
    IngestJob,
    IngestState,
    ProcessedEvent,
    WatchedChannel,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Watched channels


def is_watched(session: Session, *, team_id: str, channel_id: str) -> bool:
    return session.get(WatchedChannel, (team_id, channel_id)) is not None


# --------------------------------------------------------------------------------------------
# Recording posted files (on the ack path: database writes only, no network)
#
# Slack is waiting while these run, once per posted image, so the statements are built once
# with bound parameters, on Core tables: building a statement per call (and its cache key,
# from every value), and the ORM's objects, cost more CPU than running it.

_images = Image.__table__
_jobs = IngestJob.__table__
_watched, _channels = WatchedChannel.__table__, Channel.__table__
_WATCHED_HERE = select(_watched.c.category_id).where(
    _watched.c.team_id == bindparam("team_id"), _watched.c.channel_id == bindparam("channel_id")
)
_CHANNEL_IS_PRIVATE = select(_channels.c.is_private).where(
    _channels.c.team_id == bindparam("team_id"), _channels.c.channel_id == bindparam("channel_id")
)
# Is the channel watched, into which category, and is it known to be private: one round trip.
_CHANNEL_FACTS = select(
    _WATCHED_HERE.exists().label("watched"),
    _WATCHED_HERE.scalar_subquery().label("category_id"),
    _CHANNEL_IS_PRIVATE.scalar_subquery().label("is_private"),
)
_JOB_OF_FILE = (
    select(_jobs.c.id, _jobs.c.state)
    .join(_images, _images.c.id == _jobs.c.image_id)
    .where(
        _images.c.team_id == bindparam("team_id"), _images.c.slack_file_id == bindparam("file_id")
    )
)
# The columns of an INSERT are the keys of the parameters it is run with.
_NEW_JOB = insert(_jobs).returning(_jobs.c.id)


_NEW_EVENT = insert_unless_present(ProcessedEvent.__table__)
_NEW_CHANNEL = insert_unless_present(Channel.__table__)
_NEW_IMAGE = insert_unless_present(_images, returning=_images.c.id)


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
    where = {"team_id": post.team_id, "channel_id": post.channel_id}
    # Slack is waiting for this transaction: it goes first for SQLite's write lock, and it
    # is kept to few round trips (conflicts are settled by ON CONFLICT, not savepoints).
    with priority_writes(), session_scope(factory) as session:
        dialect = session.get_bind().dialect.name
        channel = session.execute(_CHANNEL_FACTS, where).one()
        if require_watched and not channel.watched:
            return []
        if event_id:
            first = session.execute(
                _NEW_EVENT[dialect],
                {"event_id": event_id, "team_id": post.team_id, "created_at": now},
            )
            if not first.rowcount:  # type: ignore[attr-defined]
                return []
        _remember_channel(session, dialect, post=post, is_private=channel.is_private, now=now)
        job_ids = []
        for posted in wanted:
            job_id = _upsert_image_and_job(
                session, dialect, post=post, posted=posted, category_id=channel.category_id, now=now
            )
            if job_id is not None:
                job_ids.append(job_id)
        return job_ids


def _remember_channel(
    session: Session, dialect: str, *, post: Post, is_private: bool | None, now: datetime
) -> None:
    """Remember the channel (`is_private`: what we knew of it, None if nothing), and follow
    it when the event says it is private now."""
    where = {"team_id": post.team_id, "channel_id": post.channel_id}
    if is_private is None:
        new = {
            "is_private": post.channel_private,
            "checked_at": now,  # Slack's own channel_type on the event said it
            "created_at": now,
        }
        inserted = session.execute(_NEW_CHANNEL[dialect], where | new)
        if inserted.rowcount or not post.channel_private:  # type: ignore[attr-defined]
            return
        # A concurrent first post remembered it first, and may have seen it still public.
        is_private = session.scalar(_CHANNEL_IS_PRIVATE, where)
    if post.channel_private and not is_private:
        # The channel became private: its earlier images are now for members only.
        session.execute(
            update(Channel)
            .where(Channel.team_id == post.team_id, Channel.channel_id == post.channel_id)
            .values(is_private=True)
        )
        session.execute(
            update(Image)
            .where(Image.team_id == post.team_id, Image.channel_id == post.channel_id)
            .values(channel_private=True)
        )


def _upsert_image_and_job(
    session: Session,
    dialect: str,
    *,
    post: Post,
    posted: PostedFile,
    category_id: int | None,
    now: datetime,
) -> int | None:
    image_id = session.scalar(
        _NEW_IMAGE[dialect],
        {
            "team_id": post.team_id,
            "slack_file_id": posted.file_id,
            "channel_id": post.channel_id,
            "channel_private": post.channel_private,
            "message_ts": post.message_ts,
            "thread_ts": post.thread_ts,
            "uploader_id": post.user_id,
            "permalink": (posted.permalink or "")[:1024] or None,
            "file_name": posted.name[:255],
            "title": _title_from(posted)[:255],
            "category_id": category_id,
            "tags": [],
            "tag_keys": [],
            "exif": {},
            "sort_at": post.posted_at or now,
            "created_at": now,
            "updated_at": now,
        },
    )
    if image_id is None:
        # Known already (a retry, the other event about the same file, or a concurrent
        # delivery, whose transaction we waited for): a job that is queued may run now;
        # stored, failed or running ones are left alone.
        job = session.execute(
            _JOB_OF_FILE, {"team_id": post.team_id, "file_id": posted.file_id}
        ).first()
        if job is not None and job.state == IngestState.QUEUED:
            return int(job.id)
        return None
    return session.scalar(
        _NEW_JOB,
        {
            "team_id": post.team_id,
            "image_id": image_id,
            "state": IngestState.QUEUED,
            "attempts": 0,
            "next_attempt_at": now,
            "download_url": posted.download_url,
            "mimetype": posted.mimetype or None,
            "size": posted.size,
            "created_at": now,
            "updated_at": now,
        },
    )


def _title_from(posted: PostedFile) -> str:
    title = posted.title.strip() or Path(posted.name).stem
    if title == posted.name or title == Path(posted.name).stem:
        title = Path(title).stem.replace("_", " ").replace("-", " ").strip()
    return title


def still_pending(factory: sessionmaker[Session], *, team_id: str, file_ids: list[str]) -> bool:
    """True while any of these posted files is waiting to be (or being) ingested."""
    with session_scope(factory) as session:
        states = session.scalars(
            select(IngestJob.state)
            .join(Image, Image.id == IngestJob.image_id)
            .where(Image.team_id == team_id, Image.slack_file_id.in_(file_ids))
        ).all()
    return any(s in (IngestState.QUEUED, IngestState.RUNNING) for s in states)
