"""The object graph the library's use cases run on, built once per process by the
composition root (`bot.wiring`): database, media store, clock, the ingest threads, and the
outside world through the library's own interfaces (`bot.ports`). Front doors and jobs
receive it; nothing reaches for globals."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.coalesce import Coalescer
from bot.config import Settings
from bot.ingest_runner import IngestRunner
from bot.ingestor import IngestLimits, Ingestor, IngestOutcome
from bot.people import People
from bot.ports import Directory, FileSource, Mailer, Notifier
from bot.prompts import claim_prompt, hide_duplicates, mark_told
from storage.db import session_scope
from storage.media import MediaStore
from storage.models import Image
from storage.search import Viewer

log = logging.getLogger(__name__)

# With Postgres, the web process runs at most this many ingest jobs at once (the ack shares its
# GIL: paired runs gave ack p99 71-99 ms with 1, 155-184 ms with 2, all stored as soon); the
# rest wait in the database for the worker (see bot.ingest_runner).
WEB_INGEST_LIMIT = 1
# A person's overview refreshed after ingests is refreshed at most this often per person.
HOME_REFRESH_SECONDS = 1.0
# A poster's visibility (for naming duplicates after an ingest) is remembered this long.
VIEWER_SECONDS = 30.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    media: MediaStore
    directory: Directory
    files: FileSource
    # None until a front door that can tell people is connected: then reminders and
    # prompts wait in the database instead of being claimed and lost.
    notifier: Notifier | None = None
    # None unless SMTP_URL is set: then client review links are e-mailed.
    mailer: Mailer | None = None
    clock: Callable[[], datetime] = utc_now
    _runner: IngestRunner | None = None
    _home: Coalescer[tuple[str, str]] | None = None
    _ingestor: Ingestor | None = None
    _people: People | None = None
    _viewers: dict[tuple[str, str], tuple[float, Viewer]] = field(default_factory=dict)
    _viewer_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def people(self) -> People:
        if self._people is None:
            self._people = People(
                self.directory, self.factory, configured_admins=self.settings.slack_admin_ids
            )
        return self._people

    @property
    def ingestor(self) -> Ingestor:
        if self._ingestor is None:
            self._ingestor = Ingestor(
                factory=self.factory,
                media=self.media,
                files=self.files,
                name_for=lambda team, user: self.people.facts(team, user).name,
                work_dir=self.settings.media_dir.parent / "downloads",
                limits=IngestLimits(
                    max_bytes=self.settings.max_image_bytes,
                    max_pixels=self.settings.max_image_pixels,
                ),
                clock=self.clock,
                on_settled=[self._after_ingest],
            )
        return self._ingestor

    def _after_ingest(self, outcome: IngestOutcome) -> None:
        """After every ingest attempt: once the whole message settled, tell the poster."""
        if outcome.state in ("stored", "failed"):
            self.prompt_if_settled(outcome.team_id, outcome.uploader_id, outcome.image_id)

    def prompt_if_settled(self, team_id: str, uploader: str, image_id: int) -> None:
        """Tell the poster about `image_id`'s message once all of it settled, unless someone
        has (bot.prompts.claim_prompt): after an ingest, and from the worker for a message
        whose last ingest's process died before telling (bot.scheduler.prompt_settled_posts)."""
        if self.notifier is None:
            return
        if not uploader:
            with session_scope(self.factory) as session:
                posted = session.get(Image, image_id)
                team_id, uploader = (posted.team_id, posted.uploader_id) if posted else ("", "")
            if not uploader:
                return
        plan = claim_prompt(
            self.factory,
            image_id=image_id,
            media=self.media,
            duplicate_distance=self.settings.duplicate_max_distance,
            # Outside any transaction: this may ask the directory who is where.
            viewer=self.viewer(team_id, uploader),
            now=self.clock(),
        )
        if plan is None:
            return
        if plan.user_id != uploader:
            # Someone else added the post (an admin's shortcut): they are told, and are
            # named only the duplicates they may see themselves.
            plan = hide_duplicates(self.factory, plan, self.viewer(team_id, plan.user_id))
        self.notifier.ingest_settled(plan)
        mark_told(self.factory, plan, now=self.clock())
        # Coalesced: a poster's burst of images refreshes their overview once or twice,
        # not once per message.
        for person in {plan.user_id, uploader}:
            self.refresh_home(plan.team_id, person)

    @property
    def ingest_runner(self) -> IngestRunner:
        if self._runner is None:
            workers = self.settings.ingest_workers
            self._runner = IngestRunner(
                lambda: self.ingestor,
                workers=workers,
                # With SQLite this process is the only one: it keeps a short backlog and
                # polls for the rest itself. With Postgres the worker takes what the web
                # process leaves queued, so the web process keeps the GIL for the acks.
                local_limit=(
                    3 * workers if self.settings.is_embedded_database else WEB_INGEST_LIMIT
                ),
            )
        return self._runner

    def submit_ingest(self, job_ids: list[int]) -> None:
        """Run just-recorded jobs in the background, off the threads that answer people,
        while this process keeps up; the rest wait in the database for a poller (the
        worker's, or this process's own with SQLite)."""
        self.ingest_runner.submit(job_ids)

    def start_ingest_polling(self, *, web: bool = False) -> None:
        """Claim due jobs from the database: in the worker (or the only process, with
        SQLite) with every ingest thread; in a web process beside a worker, only while it
        holds fewer than WEB_INGEST_LIMIT jobs (see bot.ingest_runner)."""
        self.ingest_runner.start_polling(bounded=web)

    def viewer(self, team_id: str, user_id: str) -> Viewer:
        """What `user_id` may see (bot.people), remembered for VIEWER_SECONDS: every ingest
        needs its poster's, to name duplicates only they may see, and a burst of posts
        should not cost a query each. Memberships behind it are cached for a minute."""
        key, now = (team_id, user_id), time.monotonic()
        with self._viewer_lock:
            hit = self._viewers.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        viewer = self.people.viewer(team_id, user_id)
        with self._viewer_lock:
            if len(self._viewers) > 10_000:
                self._viewers.clear()
            self._viewers[key] = (now + VIEWER_SECONDS, viewer)
        return viewer

    def refresh_home(self, team_id: str, user_id: str) -> None:
        """Refresh someone's overview soon, coalesced (see bot.coalesce)."""
        notifier = self.notifier
        if notifier is None:
            return
        if self._home is None:
            self._home = Coalescer(
                lambda key: notifier.home_changed(key[0], key[1]),
                min_interval=HOME_REFRESH_SECONDS,
                name="home",
            )
        self._home.request((team_id, user_id))

    def shutdown(self) -> None:
        if self._runner is not None:
            self._runner.shutdown()
        if self._home is not None:
            self._home.shutdown()
        self.engine.dispose()


def media_signing_key(settings: Settings) -> bytes:
    """Key for signed local media links. Every process that makes or serves links (web,
    worker, Socket Mode) must hold the same one, across restarts: MEDIA_SIGNING_KEY when
    set; else derived from the signing secret (HTTP mode: every process has it); else one
    generated once and kept beside the media, read by every process on this disk."""
    if settings.media_signing_key:
        return settings.media_signing_key.encode()
    if settings.slack_signing_secret:
        return hmac.new(
            settings.slack_signing_secret.encode(), b"image-library media links", hashlib.sha256
        ).digest()
    return kept_key(settings.media_dir / ".media-signing-key")


def kept_key(path: Path) -> bytes:
    """A random key made once: written to a temporary file, then linked into place, so
    processes starting together all end up with the one that won."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".key-")  # mode 0600
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):
            os.link(tmp_name, path)  # fails if another process won: use theirs
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return bytes.fromhex(path.read_text().strip())
