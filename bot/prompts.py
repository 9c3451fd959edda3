"""Telling a poster what became of their message's images, once, when all are settled.

A message with several images settles when every one of its ingest jobs is stored or failed.
Jobs settle on different threads (or processes); the `post_prompts` row is the claim that
makes exactly one of them send the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from bot.domain import WEB_FILE_PREFIX, slack_ts_time
from bot.duplicates import Duplicate, find_duplicate, hamming
from storage.db import session_scope
from storage.media import MediaStore
from storage.models import Image, IngestJob, IngestState, PostPrompt
from storage.search import Viewer, visible_to


@dataclass(frozen=True)
class Preview:
    """How to show an image: a URL Slack can fetch, else the original Slack file."""

    alt: str
    image_url: str | None = None
    slack_file_id: str | None = None
    link: str | None = None  # to open the original, when we have one


@dataclass(frozen=True)
class ImageNote:
    image_id: int
    slack_file_id: str
    file_name: str
    title: str
    stored: bool
    reason: str | None = None
    duplicate: Duplicate | None = None
    has_details: bool = False
    preview: Preview | None = None


@dataclass(frozen=True)
class PromptPlan:
    team_id: str
    channel_id: str
    message_ts: str
    user_id: str
    view_id: str | None
    images: list[ImageNote] = field(default_factory=list)

    @property
    def stored(self) -> list[ImageNote]:
        return [n for n in self.images if n.stored]

    @property
    def failed(self) -> list[ImageNote]:
        return [n for n in self.images if not n.stored]

    @property
    def needing_details(self) -> list[ImageNote]:
        return [n for n in self.stored if not n.has_details]


def preview_for(image: Image, media: MediaStore, *, width: int = 360, height: int = 240) -> Preview:
    alt = image.title or image.file_name or "image"
    if image.storage_key:
        url = media.thumbnail_url(image.storage_key, width=width, height=height)
        if url:
            return Preview(alt=alt, image_url=url, link=media.original_url(image.storage_key))
    # Slack can show its own copy of a png/jpg/gif the bot can see (not of a web upload).
    from_slack = not image.slack_file_id.startswith(WEB_FILE_PREFIX)
    if from_slack and (image.format or "").upper() in ("JPEG", "PNG", "GIF"):
        return Preview(alt=alt, slack_file_id=image.slack_file_id)
    return Preview(alt=alt)


# Read after every ingest: built once, and only the columns needed (not the whole image).
_POSTED_IN = select(
    Image.__table__.c.team_id,
    Image.__table__.c.channel_id,
    Image.__table__.c.message_ts,
    Image.__table__.c.uploader_id,
).where(Image.__table__.c.id == bindparam("image_id"))


def claim_prompt(
    factory: sessionmaker[Session],
    *,
    image_id: int,
    media: MediaStore,
    duplicate_distance: int,
    viewer: Viewer,
    now: datetime,
) -> PromptPlan | None:
    """After `image_id`'s job settled: if its whole message is settled and nobody has told
    the poster yet, mark duplicates, claim the prompt and return what to tell. It runs
    after every ingest, so it is one transaction of few statements: the message's images
    and their jobs are read once, for the check, the duplicates and the plan."""
    with session_scope(factory) as session:
        image = session.execute(_POSTED_IN, {"image_id": image_id}).first()
        if image is None or image.message_ts is None:
            return None
        key = (image.team_id, image.channel_id, image.message_ts)
        rows = _message_images_and_jobs(session, *key)
        if any(job and job.state in (IngestState.QUEUED, IngestState.RUNNING) for _, job in rows):
            return None  # not settled yet: the last one to settle tells the poster
        if not _claim(session, key=key, user_id=image.uploader_id, now=now):
            return None
        for sibling, job in rows:
            if job and job.state == IngestState.STORED and sibling.duplicate_of_id is None:
                duplicate = find_duplicate(
                    session, sibling, max_distance=duplicate_distance, viewer=viewer
                )
                if duplicate is not None:
                    sibling.duplicate_of_id = duplicate.image_id
        session.flush()
        return _build_plan(
            session, team_id=key[0], channel_id=key[1], message_ts=key[2], media=media, rows=rows
        )


def hide_duplicates(factory: sessionmaker[Session], plan: PromptPlan, viewer: Viewer) -> PromptPlan:
    """`plan` without the duplicates `viewer` may not see (told as if there were none)."""
    named = {n.duplicate.image_id for n in plan.images if n.duplicate is not None}
    if not named:
        return plan
    with session_scope(factory) as session:
        seen = set(session.scalars(select(Image.id).where(Image.id.in_(named), visible_to(viewer))))
    return replace(
        plan,
        images=[
            n if n.duplicate is None or n.duplicate.image_id in seen else replace(n, duplicate=None)
            for n in plan.images
        ],
    )


def _message_images_and_jobs(
    session: Session, team_id: str, channel_id: str, message_ts: str
) -> list[tuple[Image, IngestJob | None]]:
    return [
        (row[0], row[1])
        for row in session.execute(
            select(Image, IngestJob)
            .outerjoin(IngestJob, IngestJob.image_id == Image.id)
            .where(
                Image.team_id == team_id,
                Image.channel_id == channel_id,
                Image.message_ts == message_ts,
            )
            .order_by(Image.id)
        )
    ]


def _claim(session: Session, *, key: tuple[str, str, str], user_id: str, now: datetime) -> bool:
    team_id, channel_id, message_ts = key
    claimed = session.execute(
        update(PostPrompt)
        .where(
            PostPrompt.team_id == team_id,
            PostPrompt.channel_id == channel_id,
            PostPrompt.message_ts == message_ts,
            PostPrompt.prompted_at.is_(None),
        )
        .values(prompted_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount:  # type: ignore[attr-defined]
        return True
    # No row yet (the shortcut registers one first): the first to insert it claims it; one
    # that exists was claimed already (someone else told the poster, or is telling them).
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    inserted = session.execute(
        insert(PostPrompt)
        .values(
            team_id=team_id,
            channel_id=channel_id,
            message_ts=message_ts,
            user_id=user_id,
            prompted_at=now,
            created_at=now,
        )
        .on_conflict_do_nothing()
    )
    return bool(inserted.rowcount)  # type: ignore[attr-defined]


def register_view(
    factory: sessionmaker[Session],
    *,
    team_id: str,
    channel_id: str,
    message_ts: str,
    user_id: str,
    view_id: str,
    now: datetime,
) -> None:
    """The message shortcut opened a "saving..." modal: when the images settle, update it
    instead of posting a prompt."""
    with session_scope(factory) as session:
        row = session.get(PostPrompt, (team_id, channel_id, message_ts))
        if row is None:
            session.add(
                PostPrompt(
                    team_id=team_id,
                    channel_id=channel_id,
                    message_ts=message_ts,
                    user_id=user_id,
                    view_id=view_id,
                    created_at=now,
                )
            )
        else:
            row.view_id, row.user_id, row.prompted_at = view_id, user_id, None


def build_plan(
    factory: sessionmaker[Session],
    *,
    team_id: str,
    channel_id: str,
    message_ts: str,
    media: MediaStore,
) -> PromptPlan | None:
    """The current state of a message's images, for the prompt (or the shortcut's modal)."""
    with session_scope(factory) as session:
        return _build_plan(
            session, team_id=team_id, channel_id=channel_id, message_ts=message_ts, media=media
        )


def _build_plan(
    session: Session,
    *,
    team_id: str,
    channel_id: str,
    message_ts: str,
    media: MediaStore,
    rows: list[tuple[Image, IngestJob | None]] | None = None,
) -> PromptPlan | None:
    if rows is None:
        rows = _message_images_and_jobs(session, team_id, channel_id, message_ts)
    images = [image for image, _ in rows]
    if not images:
        return None
    prompt = session.get(PostPrompt, (team_id, channel_id, message_ts))
    jobs = {job.image_id: job for _, job in rows if job is not None}
    notes = []
    for image in images:
        job = jobs.get(image.id)
        stored = job is not None and job.state == IngestState.STORED
        duplicate = None
        if stored and image.duplicate_of_id is not None:
            original = session.get(Image, image.duplicate_of_id)
            if original is not None:
                duplicate = Duplicate(
                    image_id=original.id,
                    title=original.title,
                    uploader_id=original.uploader_id,
                    created_at=original.created_at,
                    exact=original.sha256 == image.sha256,
                    distance=hamming(original.phash or 0, image.phash or 0),
                )
        notes.append(
            ImageNote(
                image_id=image.id,
                slack_file_id=image.slack_file_id,
                file_name=image.file_name,
                title=image.title,
                stored=stored,
                reason=None if stored else (job.last_error if job else None),
                duplicate=duplicate,
                has_details=image.details_added_at is not None,
                preview=preview_for(image, media) if stored else None,
            )
        )
    return PromptPlan(
        team_id=team_id,
        channel_id=channel_id,
        message_ts=message_ts,
        user_id=prompt.user_id if prompt else images[0].uploader_id,
        view_id=prompt.view_id if prompt else None,
        images=notes,
    )


def post_date(message_ts: str | None) -> date | None:
    """The day (UTC) a message was posted."""
    posted = slack_ts_time(message_ts)
    return posted.date() if posted else None
