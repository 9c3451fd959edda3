"""The object graph, built once per process: database, media store, Slack clients, clock,
the ingest executor. Handlers and jobs receive it; nothing reaches for globals."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot import imaging
from bot.admin import AdminDirectory, UserFacts
from bot.config import Settings
from bot.domain import PostedFile
from bot.finder import Memberships
from bot.library import IngestLimits, Ingestor, IngestOutcome
from bot.slack_files import DownloadError, posted_file_from_slack
from storage.db import make_engine, make_session_factory
from storage.media import CloudinaryStore, LocalStore, MediaStore

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    media: MediaStore
    clock: Callable[[], datetime] = utc_now
    _executor: ThreadPoolExecutor | None = None
    _ingestor: Ingestor | None = None
    _admins: AdminDirectory | None = None
    _memberships: Memberships | None = None

    @property
    def memberships(self) -> Memberships:
        if self._memberships is None:
            self._memberships = Memberships(lookup=self.channel_members)
        return self._memberships

    def channel_members(self, team_id: str, channel_id: str) -> frozenset[str] | None:
        """Everyone in a conversation (conversations.members, all pages), or None."""
        client = self.slack_client(team_id)
        members: set[str] = set()
        cursor = None
        for _ in range(100):  # 100 pages of 1000: more than any workspace has
            try:
                response = client.conversations_members(
                    channel=channel_id, limit=1000, cursor=cursor
                )
            except SlackApiError as exc:
                log.info("conversations.members %s: %s", channel_id, exc.response.get("error"))
                return None
            members.update(response.get("members") or [])
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return frozenset(members)

    @property
    def admins(self) -> AdminDirectory:
        if self._admins is None:
            self._admins = AdminDirectory(
                configured=self.settings.slack_admin_ids, lookup=self.user_facts
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
        return WebClient(
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

    def submit_ingest(self, job_ids: list[int]) -> None:
        """Run jobs in the background, off Bolt's listener threads (which ack commands)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.settings.ingest_workers, thread_name_prefix="ingest"
            )
        for job_id in job_ids:
            self._executor.submit(self._run_job, job_id)

    def _run_job(self, job_id: int) -> None:
        try:
            self.ingestor.run(job_id)
        except Exception:
            # The lease runs out and the worker's sweep picks the job up again.
            log.exception("ingest job %s could not be run; the sweep will retry it", job_id)

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
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=False)
        self.engine.dispose()


def media_signing_key(settings: Settings) -> bytes:
    """Key for signed local media links: derived from the signing secret so links survive
    restarts, or random (links last one process) when Slack is not configured."""
    if settings.slack_signing_secret:
        return hmac.new(
            settings.slack_signing_secret.encode(), b"image-library media links", hashlib.sha256
        ).digest()
    return secrets.token_bytes(32)


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
    engine = make_engine(settings.database_url)
    return Services(
        settings=settings,
        engine=engine,
        factory=make_session_factory(engine),
        media=build_media_store(settings),
        clock=clock,
    )
