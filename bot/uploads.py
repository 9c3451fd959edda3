"""Images uploaded on the web: the same ingest as a post in Slack (the same checks, refusal
reasons and duplicate warning), for one file at a time, answered when it is settled.

The browser's file is kept under `<data>/uploads/<token>` and its ingest job points at
`upload:<token>`; `UploadedFiles` hands it to the ingestor like a download from Slack, so a
retry (the media store was away) finds it again. An upload is shared with the whole
workspace (its members, not guests) or with one conversation the uploader is in.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from bot.domain import WEB_FILE_PREFIX, Post, PostedFile
from bot.duplicates import find_duplicate
from bot.library import record_posted_files
from bot.people import Person
from bot.ports import Downloaded, DownloadError, FileSource
from bot.services import Services
from storage.db import session_scope
from storage.models import Image, IngestJob, IngestState

log = logging.getLogger(__name__)

# The conversation id of images shared with the whole workspace from the web: a public
# "conversation" every member sees and no guest does (the rule of `storage.visibility`).
WORKSPACE = "WEB"
SCHEME = "upload:"
WAIT_SECONDS = 60.0  # for an upload someone else's poller is ingesting
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")

GUESTS_PICK_A_CONVERSATION = (
    "Guests can only share images with a conversation they are in: choose one."
)
NOT_A_MEMBER = "You can only share an upload with a conversation you are in."
PRIVACY_UNKNOWN = (
    "Slack did not say right now who may see that conversation, so nothing was uploaded. "
    "Try again in a minute."
)


class UploadRefused(Exception):
    """The upload cannot be taken as asked; the message says what to do."""


@dataclass(frozen=True)
class Audience:
    """Who will see an upload: the workspace (members) or one conversation."""

    conversation_id: str
    private: bool


@dataclass(frozen=True)
class UploadResult:
    image_id: int
    state: str  # stored, failed, or queued (a retry will finish it)
    reason: str | None
    duplicate_of: int | None
    title: str


def audience_for(services: Services, person: Person, choice: str) -> Audience:
    """`choice` is "workspace" or the id of a conversation `person` is in."""
    if choice in ("", "workspace"):
        if person.is_guest:
            raise UploadRefused(GUESTS_PICK_A_CONVERSATION)
        return Audience(WORKSPACE, private=False)
    if choice not in services.people.conversations_of(person.team_id, person.user_id):
        raise UploadRefused(NOT_A_MEMBER)
    private = services.directory.is_private(person.team_id, choice)
    if private is None:
        # Guessing "private" would mark the whole channel (and its earlier images) private.
        raise UploadRefused(PRIVACY_UNKNOWN)
    return Audience(choice, private=private)


def receive(
    services: Services,
    person: Person,
    *,
    path: Path,
    name: str,
    content_type: str,
    audience: Audience,
    category_id: int | None = None,
    uploader_name: str = "",
) -> UploadResult:
    """Take the file at `path` (moved into the uploads folder) into the library for
    `person`, ingest it now and say how it went. `category_id` and `uploader_name` (kept
    instead of the person's own name) are for files that arrive on someone's behalf."""
    token = secrets.token_urlsafe(24)
    kept = uploads_dir(services) / token
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(path, kept)
    size = kept.stat().st_size
    job_ids = record_posted_files(
        services.factory,
        post=Post(
            team_id=person.team_id,
            channel_id=audience.conversation_id,
            user_id=person.user_id,
            channel_private=audience.private,
        ),
        files=[
            PostedFile(
                file_id=f"{WEB_FILE_PREFIX}{secrets.token_hex(8)}",
                name=name[:255] or "upload",
                mimetype=content_type,
                size=size,
                download_url=SCHEME + token,
                judged_by_bytes=True,
            )
        ],
        event_id=None,
        now=services.clock(),
        require_watched=False,
    )
    [job_id] = job_ids
    if category_id is not None or uploader_name:
        with session_scope(services.factory) as session:
            job = session.get_one(IngestJob, job_id)
            image = session.get_one(Image, job.image_id)
            image.category_id, image.uploader_name = category_id, uploader_name[:255]
    # Run it here, now; a poller (the worker's) that claimed it first runs it instead.
    if services.ingestor.run(job_id) is None:
        _wait_for(services, job_id)
    with session_scope(services.factory) as session:
        job = session.get(IngestJob, job_id)
        image = session.get(Image, job.image_id) if job is not None else None
        if job is None or image is None:
            raise UploadRefused("The upload was removed meanwhile. Upload it again.")
        image_id, state, reason, title = image.id, job.state, job.last_error, image.title
    if state in (IngestState.STORED, IngestState.FAILED):
        kept.unlink(missing_ok=True)
    duplicate = _mark_duplicate(services, person, image_id)
    services.refresh_home(person.team_id, person.user_id)
    return UploadResult(
        image_id=image_id,
        state=str(state),
        reason=reason if state != IngestState.STORED else None,
        duplicate_of=duplicate,
        title=title,
    )


def _wait_for(services: Services, job_id: int, *, timeout: float = WAIT_SECONDS) -> None:
    """Until whoever claimed the job has settled this attempt (or `timeout` passed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(services.factory) as session:
            state = session.scalar(select(IngestJob.state).where(IngestJob.id == job_id))
        if state != IngestState.RUNNING:
            return
        time.sleep(0.1)


def _mark_duplicate(services: Services, person: Person, image_id: int) -> int | None:
    """The image this upload duplicates, among those `person` may see (the Slack rule)."""
    with session_scope(services.factory) as session:
        image = session.get(Image, image_id)
        stored = session.scalar(select(IngestJob.state).where(IngestJob.image_id == image_id))
        if image is None or stored != IngestState.STORED:
            return None
        found = find_duplicate(
            session,
            image,
            max_distance=services.settings.duplicate_max_distance,
            viewer=person.viewer,
        )
        if found is None:
            return None
        image.duplicate_of_id = found.image_id
        return found.image_id


PRUNE_BATCH = 500  # uploaded files whose jobs are looked up in one statement


def prune(services: Services, *, grace_seconds: float = 3600.0) -> int:
    """Delete uploaded files nothing needs any more: their ingest ended (stored or failed),
    or no job ever pointed at them and they are older than `grace_seconds` (a request that
    died half-way). Files of jobs still queued or running stay for their next attempt.
    Their jobs are looked up PRUNE_BATCH files at a time, not one statement per file:
    download_url has no index (long URLs, written by every ack, for a look once an hour)."""
    folder = uploads_dir(services)
    if not folder.is_dir():
        return 0
    removed = 0
    old = time.time() - grace_seconds
    files = [path for path in folder.iterdir() if path.is_file()]
    for start in range(0, len(files), PRUNE_BATCH):
        batch = {SCHEME + path.name: path for path in files[start : start + PRUNE_BATCH]}
        with session_scope(services.factory) as session:
            found = select(IngestJob.download_url, IngestJob.state).where(
                IngestJob.download_url.in_(batch)
            )
            states = dict(session.execute(found).all())
        for url, path in batch.items():
            state = states.get(url)
            done = state in (IngestState.STORED, IngestState.FAILED)
            if done or (state is None and path.stat().st_mtime < old):
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def uploads_dir(services: Services) -> Path:
    return services.settings.media_dir.parent / "uploads"


class UploadedFiles:
    """The `FileSource` of the ingestor: web uploads from the uploads folder, everything
    else from `inner` (the chat platform)."""

    def __init__(self, inner: FileSource, folder: Path) -> None:
        self._inner = inner
        self._folder = folder

    def resolve(self, team_id: str, file_id: str) -> PostedFile:
        return self._inner.resolve(team_id, file_id)

    def fetch(self, team_id: str, url: str, *, dest_dir: Path, max_bytes: int) -> Downloaded:
        if not url.startswith(SCHEME):
            return self._inner.fetch(team_id, url, dest_dir=dest_dir, max_bytes=max_bytes)
        token = url.removeprefix(SCHEME)
        if not _TOKEN.fullmatch(token):
            raise DownloadError("the uploaded file is gone; upload it again", retryable=False)
        source = self._folder / token
        if not source.is_file():
            # Kept on the disk of the web process that took it: a worker elsewhere leaves
            # the retry to that process's own polling (the attempts cap still ends it).
            raise DownloadError(
                "the uploaded file is on another machine's disk; its web process will retry",
                retryable=True,
            )
        if source.stat().st_size > max_bytes:
            raise DownloadError(
                f"the file is over {max_bytes // (1024 * 1024)} MB, the limit for the library",
                retryable=False,
            )
        dest_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=dest_dir, suffix=".upload")
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            while chunk := src.read(1024 * 1024):
                digest.update(chunk)
                out.write(chunk)
        copy = Path(name)
        return Downloaded(
            path=copy,
            size=copy.stat().st_size,
            sha256=digest.hexdigest(),
            content_type="application/octet-stream",  # the ingest sniffs the bytes
        )
