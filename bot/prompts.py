"""Telling a poster what became of their message's images, once, when all are settled.

A message with several images settles when every one of its ingest jobs is stored or failed.
Jobs settle on different threads (or processes); the `post_prompts` row is the claim that
makes one of them send the prompt (`prompted_at`), and the stamp that it was sent
(`told_at`). A process killed in between (kill -9, a crashed dyno) leaves a claim without a
stamp: it runs out after PROMPT_LEASE and the worker's look (bot.scheduler) tells the poster
then. Only a process killed after Slack took the prompt and before the stamp was written
tells it twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Row, bindparam, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from bot.domain import slack_ts_time
from bot.duplicates import Duplicate, find_duplicate, hamming
from bot.previews import Preview, preview_for
from storage.db import insert_unless_present, session_scope
from storage.media import MediaStore
from storage.models import Image, IngestJob, IngestState, PostPrompt
from storage.search import Viewer, visible_to

# A claim to tell a poster runs out this long after it was taken, unless the telling was
# stamped: its process died, and the worker's look tells them. Longer than a telling can
# take while Slack rate-limits (two calls, each retried up to 3 times after Retry-After).
PROMPT_LEASE = timedelta(minutes=2)
STAMP_WAITS = (0.5, 2.0, 5.0)  # between tries to stamp a telling done, the database away

log = logging.getLogger(__name__)


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


# Read after every ingest: built once, on Core tables, and only the columns a prompt needs.
_images, _jobs, _prompts = Image.__table__, IngestJob.__table__, PostPrompt.__table__
_POSTED = (
    _images.c.id,
    _images.c.team_id,
    _images.c.channel_id,
    _images.c.message_ts,
    _images.c.uploader_id,
    _images.c.slack_file_id,
    _images.c.file_name,
    _images.c.title,
    _images.c.storage_key,
    _images.c.format,
    _images.c.sha256,
    _images.c.phash,
    _images.c.duplicate_of_id,
    _images.c.details_added_at,
    _jobs.c.state.label("job_state"),
    _jobs.c.last_error,
)
_same_message = _images.alias("same_message")
# Every image posted in the message `image_id` was posted in, with its job's state.
_MESSAGE_OF_IMAGE = (
    select(*_POSTED)
    .select_from(
        _same_message.join(
            _images,
            (_images.c.team_id == _same_message.c.team_id)
            & (_images.c.channel_id == _same_message.c.channel_id)
            & (_images.c.message_ts == _same_message.c.message_ts),
        ).outerjoin(_jobs, _jobs.c.image_id == _images.c.id)
    )
    .where(_same_message.c.id == bindparam("image_id"))
    .order_by(_images.c.id)
)
_MESSAGE = (
    select(*_POSTED)
    .outerjoin(_jobs, _jobs.c.image_id == _images.c.id)
    .where(
        _images.c.team_id == bindparam("team_id"),
        _images.c.channel_id == bindparam("channel_id"),
        _images.c.message_ts == bindparam("message_ts"),
    )
    .order_by(_images.c.id)
)
# (An UPDATE may not name a bound parameter after a column.)
_THE_PROMPT = (
    (_prompts.c.team_id == bindparam("team"))
    & (_prompts.c.channel_id == bindparam("channel"))
    & (_prompts.c.message_ts == bindparam("message"))
)
_NEW_PROMPT = insert_unless_present(_prompts)
# A row is there: the shortcut registered its modal (not claimed yet), or a claim whose
# process died before telling has run out.
_CLAIM_UNTOLD = (
    update(_prompts)
    .where(
        _THE_PROMPT,
        _prompts.c.told_at.is_(None),
        or_(_prompts.c.prompted_at.is_(None), _prompts.c.prompted_at < bindparam("ran_out")),
    )
    .values(prompted_at=bindparam("now"))
    .returning(_prompts.c.user_id, _prompts.c.view_id)
)
_TOLD = update(_prompts).where(_THE_PROMPT).values(told_at=bindparam("now"))
_PROMPT = select(_prompts.c.user_id, _prompts.c.view_id).where(_THE_PROMPT)
_MARK_DUPLICATE = (
    update(_images)
    .where(_images.c.id == bindparam("image"))
    .values(duplicate_of_id=bindparam("duplicate"))
)


@dataclass(frozen=True)
class _Claimed:
    user_id: str
    view_id: str | None


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
        rows = session.execute(_MESSAGE_OF_IMAGE, {"image_id": image_id}).all()
        if not rows:
            return None  # gone, or not posted in a message
        if any(row.job_state in (IngestState.QUEUED, IngestState.RUNNING) for row in rows):
            return None  # not settled yet: the last one to settle tells the poster
        first = rows[0]
        key = {
            "team_id": first.team_id,
            "channel_id": first.channel_id,
            "message_ts": first.message_ts,
        }
        claimed = _claim(session, key=key, user_id=first.uploader_id, now=now)
        if claimed is None:
            return None
        duplicates = {}
        for row in rows:
            if row.job_state == IngestState.STORED and row.duplicate_of_id is None:
                found = find_duplicate(session, row, max_distance=duplicate_distance, viewer=viewer)
                if found is not None:
                    duplicates[row.id] = found
        if duplicates:
            session.execute(
                _MARK_DUPLICATE,
                [{"image": image, "duplicate": d.image_id} for image, d in duplicates.items()],
            )
        return _plan(session, key, rows, claimed, media=media, found=duplicates)


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


def _claim(
    session: Session, *, key: dict[str, str], user_id: str, now: datetime
) -> _Claimed | None:
    """Claim telling the poster about this message: who to tell, and the shortcut's modal to
    update, if one is waiting; None when someone else told them (or is telling them)."""
    dialect = session.get_bind().dialect.name
    inserted = session.execute(
        _NEW_PROMPT[dialect], {**key, "user_id": user_id, "prompted_at": now, "created_at": now}
    )
    if inserted.rowcount:  # type: ignore[attr-defined]
        return _Claimed(user_id=user_id, view_id=None)
    # The row was there: the shortcut registered its modal first (not claimed yet), someone
    # claimed it already, or their claim ran out before they told.
    untold = session.execute(
        _CLAIM_UNTOLD, {**_prompt_key(key), "now": now, "ran_out": now - PROMPT_LEASE}
    ).first()
    return None if untold is None else _Claimed(untold.user_id, untold.view_id)


def mark_told(factory: sessionmaker[Session], plan: PromptPlan, *, now: datetime) -> None:
    """The poster was told (or Slack refused for good): nobody tells them again. Tried again
    after each of STAMP_WAITS while the database is away (a restart, a failover): unstamped,
    the poster would be told twice."""
    key = {"team_id": plan.team_id, "channel_id": plan.channel_id, "message_ts": plan.message_ts}
    for wait in [*STAMP_WAITS, None]:
        try:
            with session_scope(factory) as session:
                session.execute(_TOLD, {**_prompt_key(key), "now": now})
            return
        except DBAPIError:
            if wait is None:
                raise
            log.warning("could not stamp the prompt of %s told; again in %s s", key, wait)
            time.sleep(wait)


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
            row.view_id, row.user_id = view_id, user_id
            row.prompted_at = row.told_at = None  # to be told again, in the modal


def _prompt_key(key: dict[str, str]) -> dict[str, str]:
    return {"team": key["team_id"], "channel": key["channel_id"], "message": key["message_ts"]}


def build_plan(
    factory: sessionmaker[Session],
    *,
    team_id: str,
    channel_id: str,
    message_ts: str,
    media: MediaStore,
) -> PromptPlan | None:
    """The current state of a message's images, for the prompt (or the shortcut's modal)."""
    key = {"team_id": team_id, "channel_id": channel_id, "message_ts": message_ts}
    with session_scope(factory) as session:
        rows = session.execute(_MESSAGE, key).all()
        if not rows:
            return None
        prompt = session.execute(_PROMPT, _prompt_key(key)).first()
        claimed = (
            _Claimed(rows[0].uploader_id, None)
            if prompt is None
            else _Claimed(prompt.user_id, prompt.view_id)
        )
        return _plan(session, key, rows, claimed, media=media, found={})


def _plan(
    session: Session,
    key: dict[str, str],
    rows: Sequence[Row[Any]],
    prompt: _Claimed,
    *,
    media: MediaStore,
    found: dict[int, Duplicate],
) -> PromptPlan:
    """The plan from the message's rows (`_POSTED`), with the duplicates just `found`."""
    notes = []
    for row in rows:
        stored = row.job_state == IngestState.STORED
        duplicate = found.get(row.id) if stored else None
        if stored and duplicate is None and row.duplicate_of_id is not None:
            duplicate = _known_duplicate(session, row)
        notes.append(
            ImageNote(
                image_id=row.id,
                slack_file_id=row.slack_file_id,
                file_name=row.file_name,
                title=row.title,
                stored=stored,
                reason=None if stored else row.last_error,
                duplicate=duplicate,
                has_details=row.details_added_at is not None,
                preview=preview_for(row, media) if stored else None,
            )
        )
    return PromptPlan(
        team_id=key["team_id"],
        channel_id=key["channel_id"],
        message_ts=key["message_ts"],
        user_id=prompt.user_id,
        view_id=prompt.view_id,
        images=notes,
    )


def _known_duplicate(session: Session, row: Row[Any]) -> Duplicate | None:
    """The duplicate marked on an image before (by an earlier prompt), if it still exists."""
    original = session.get(Image, row.duplicate_of_id)
    if original is None:
        return None
    return Duplicate(
        image_id=original.id,
        title=original.title,
        uploader_id=original.uploader_id,
        created_at=original.created_at,
        exact=original.sha256 == row.sha256,
        distance=hamming(original.phash or 0, row.phash or 0),
    )


def post_date(message_ts: str | None) -> date | None:
    """The day (UTC) a message was posted."""
    posted = slack_ts_time(message_ts)
    return posted.date() if posted else None
