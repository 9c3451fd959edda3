"""The object graph, built once per process: database, media store, Slack clients, clock,
the ingest executor. Handlers and jobs receive it; nothing reaches for globals."""

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
from urllib.parse import urlparse

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.web import SlackResponse
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot import imaging
from bot.admin import AdminDirectory, UserFacts
from bot.channels import ChannelFacts
from bot.coalesce import Coalescer
from bot.config import Settings
from bot.domain import PostedFile
from bot.finder import Memberships, viewer_for
from bot.ingest_runner import IngestRunner
from bot.library import IngestLimits, Ingestor, IngestOutcome
from bot.slack_client import SlackClient
from bot.slack_files import DownloadError, posted_file_from_slack
from storage.db import make_engine, make_session_factory
from storage.media import CloudinaryStore, LocalStore, MediaStore
from storage.search import Viewer

log = logging.getLogger(__name__)

# With Postgres, the web process runs at most this many ingest jobs at once (the ack shares its
# GIL: paired runs gave ack p99 71-99 ms with 1, 155-184 ms with 2, all stored as soon); the
# rest wait in the database for the worker (see bot.ingest_runner).
WEB_INGEST_LIMIT = 1
# An App Home refreshed after ingests is refreshed at most this often per person.
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
    clock: Callable[[], datetime] = utc_now
    _runner: IngestRunner | None = None
    _home: Coalescer[tuple[str, str]] | None = None
    _ingestor: Ingestor | None = None
    _viewers: dict[tuple[str, str], tuple[float, Viewer]] = field(default_factory=dict)
    _viewer_lock: threading.Lock = field(default_factory=threading.Lock)
    _admins: AdminDirectory | None = None
    _memberships: Memberships | None = None

    @property
    def memberships(self) -> Memberships:
        if self._memberships is None:
            self._memberships = Memberships(
                members=self.channel_members, conversations=self.user_conversations
            )
        return self._memberships

    def channel_members(self, team_id: str, channel_id: str) -> frozenset[str] | None:
        """Everyone in a conversation (conversations.members, all pages), or None."""
        pages = self._pages(
            team_id,
            "conversations.members",
            lambda client, cursor: client.conversations_members(
                channel=channel_id, limit=1000, cursor=cursor
            ),
        )
        return None if pages is None else frozenset(m for p in pages for m in p["members"] or [])

    def user_conversations(self, team_id: str, user_id: str) -> frozenset[str] | None:
        """The conversations a person is in that the bot can see (users.conversations, all
        pages: public channels, and private ones, DMs and group DMs the bot shares)."""
        pages = self._pages(
            team_id,
            "users.conversations",
            lambda client, cursor: client.users_conversations(
                user=user_id,
                types="public_channel,private_channel,mpim,im",
                limit=1000,
                cursor=cursor,
            ),
        )
        if pages is None:
            return None
        return frozenset(str(c["id"]) for p in pages for c in p["channels"] or [])

    def channel_facts(self, team_id: str, channel_id: str) -> ChannelFacts:
        """Whether Slack says a conversation is private (conversations.info)."""
        try:
            info = self.slack_client(team_id).conversations_info(channel=channel_id)["channel"]
        except SlackApiError as exc:
            log.info("conversations.info %s: %s", channel_id, exc.response.get("error"))
            return ChannelFacts(is_private=None)
        return ChannelFacts(
            is_private=bool(info.get("is_private") or info.get("is_im") or info.get("is_mpim"))
        )

    def guest_list(self, team_id: str) -> frozenset[str]:
        """Everyone in the workspace who is a guest (users.list, all pages)."""
        pages = self._pages(
            team_id,
            "users.list",
            lambda client, cursor: client.users_list(limit=1000, cursor=cursor),
        )
        return frozenset(
            str(u["id"])
            for p in pages or []
            for u in p["members"] or []
            if u.get("is_restricted") or u.get("is_ultra_restricted")
        )

    def _pages(
        self, team_id: str, method: str, call: Callable[[WebClient, str | None], SlackResponse]
    ) -> list[SlackResponse] | None:
        """Every page of a cursor-paginated Web API method, or None when Slack refused."""
        client = self.slack_client(team_id)
        pages: list[SlackResponse] = []
        cursor = None
        for _ in range(100):  # 100 pages of 1000: more than any workspace has
            try:
                response = call(client, cursor)
            except SlackApiError as exc:
                log.info("%s: %s", method, exc.response.get("error"))
                return None
            pages.append(response)
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return pages

    @property
    def admins(self) -> AdminDirectory:
        if self._admins is None:
            self._admins = AdminDirectory(
                configured=self.settings.slack_admin_ids,
                lookup=self.user_facts,
                guest_list=self.guest_list,
            )
        return self._admins

    def user_facts(self, team_id: str, user_id: str) -> UserFacts:
        """What Slack says about a person (users.info). Unknown people have no rights."""
        try:
            user = self.slack_client(team_id).users_info(user=user_id)["user"]
        except SlackApiError as exc:
            log.warning("users.info failed for %s: %s", user_id, exc.response.get("error"))
            return UserFacts(is_admin=False, is_guest=True, is_bot=False, deleted=True)
        profile = user.get("profile") or {}
        return UserFacts(
            name=str(
                profile.get("display_name") or profile.get("real_name") or user.get("name") or ""
            ),
            is_admin=bool(user.get("is_admin") or user.get("is_owner")),
            is_guest=bool(user.get("is_restricted") or user.get("is_ultra_restricted")),
            is_bot=bool(user.get("is_bot")),
            deleted=bool(user.get("deleted")),
        )

    def slack_client(self, team_id: str | None = None) -> WebClient:
        """A Web API client for `team_id` (one bot token today; per-install tokens later)."""
        return SlackClient(
            token=self.bot_token_for(team_id),
            base_url=self.settings.slack_api_url,
            timeout=10,
            retry_handlers=[
                ConnectionErrorRetryHandler(max_retry_count=2),
                RateLimitErrorRetryHandler(max_retry_count=3),
            ],
        )

    def bot_token_for(self, team_id: str | None) -> str | None:
        return self.settings.slack_bot_token

    @property
    def ingestor(self) -> Ingestor:
        if self._ingestor is None:
            self._ingestor = Ingestor(
                factory=self.factory,
                media=self.media,
                token_for=self.bot_token_for,
                resolve_file=self.resolve_file,
                name_for=lambda team, user: self.admins.user(team, user).name,
                api_host=urlparse(self.settings.slack_api_url).hostname,
                work_dir=self.settings.media_dir.parent / "downloads",
                limits=IngestLimits(
                    max_bytes=self.settings.max_image_bytes,
                    max_pixels=self.settings.max_image_pixels,
                ),
                clock=self.clock,
                on_settled=[self._notify_ingest],
            )
        return self._ingestor

    def _notify_ingest(self, outcome: IngestOutcome) -> None:
        from bot.notify import on_ingest_settled

        if self.settings.slack_bot_token:
            on_ingest_settled(self, outcome)

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
        """Run just-recorded jobs in the background, off Bolt's listener threads (which ack
        commands), while this process keeps up; the rest wait in the database for a poller
        (the worker's, or this process's own with SQLite)."""
        self.ingest_runner.submit(job_ids)

    def start_ingest_polling(self, *, web: bool = False) -> None:
        """Claim due jobs from the database: in the worker (or the only process, with
        SQLite) with every ingest thread; in a web process beside a worker, only while it
        holds fewer than WEB_INGEST_LIMIT jobs (see bot.ingest_runner)."""
        self.ingest_runner.start_polling(bounded=web)

    def viewer(self, team_id: str, user_id: str) -> Viewer:
        """What `user_id` may see (bot.finder.viewer_for), remembered for VIEWER_SECONDS:
        every ingest needs its poster's, to name duplicates only they may see, and a burst
        of posts should not cost a query (and maybe Slack calls) each. Channel memberships
        behind it are cached for a minute already."""
        key, now = (team_id, user_id), time.monotonic()
        with self._viewer_lock:
            hit = self._viewers.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        viewer = viewer_for(
            self.factory,
            team_id=team_id,
            user_id=user_id,
            admins=self.admins,
            memberships=self.memberships,
        )
        with self._viewer_lock:
            if len(self._viewers) > 10_000:
                self._viewers.clear()
            self._viewers[key] = (now + VIEWER_SECONDS, viewer)
        return viewer

    def refresh_home(self, team_id: str, user_id: str) -> None:
        """Refresh someone's App Home soon, coalesced (see bot.coalesce)."""
        if self._home is None:
            from bot.notify import publish_home

            self._home = Coalescer(
                lambda key: publish_home(self, team_id=key[0], user_id=key[1]),
                min_interval=HOME_REFRESH_SECONDS,
                name="home",
            )
        self._home.request((team_id, user_id))

    def resolve_file(self, team_id: str, file_id: str) -> PostedFile:
        """Full details of a file whose event carried a stub (Slack Connect)."""
        try:
            response = self.slack_client(team_id).files_info(file=file_id)
        except SlackApiError as exc:
            error = exc.response.get("error", "unknown_error")
            if error in ("file_not_found", "file_deleted"):
                raise DownloadError(
                    "the file was deleted from Slack before it could be saved", retryable=False
                ) from None
            raise DownloadError(f"Slack answered {error} to files.info", retryable=True) from None
        return posted_file_from_slack(response["file"])

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
    return _kept_key(settings.media_dir / ".media-signing-key")


def _kept_key(path: Path) -> bytes:
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


def build_media_store(settings: Settings) -> MediaStore:
    if settings.cloudinary_url:
        return CloudinaryStore(settings.cloudinary_url)
    return LocalStore(
        settings.media_dir,
        signing_key=media_signing_key(settings),
        public_base_url=settings.public_base_url,
        thumbnailer=_thumbnail,
    )


def _thumbnail(original: Path, dest: Path, width: int, height: int) -> None:
    imaging.write_thumbnail(original, dest, width=width, height=height)


def build_services(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> Services:
    imaging.configure(
        max_pixels=settings.max_image_pixels,
        decode_budget_bytes=settings.decode_memory_mb * 1024 * 1024,
    )
    # Enough connections (pool + as many overflow) for gunicorn's 16 threads, the ingest
    # threads and the App Home refreshes at once, so that an ack never waits for one.
    engine = make_engine(
        settings.database_url, pool_size=max(10, (16 + settings.ingest_workers + 2 + 1) // 2)
    )
    return Services(
        settings=settings,
        engine=engine,
        factory=make_session_factory(engine),
        media=build_media_store(settings),
        clock=clock,
    )
