"""The composition root's object graph: the library (`bot.services.Services`) with the
outside world plugged into its ports (Slack for people, files and messages; Cloudinary or
local disk for media), and the front doors built on it. With `bot/__main__.py`, the only
code that imports both the library and the front doors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

from flask import Flask
from slack_bolt import App

from bot import imaging
from bot.config import Settings
from bot.local import LOCAL_TEAM, LocalDirectory
from bot.mailer import SmtpMailer
from bot.services import Services, media_signing_key, utc_now
from bot.uploads import UploadedFiles
from handlers.slack.app import create_app
from handlers.slack.files import SlackFiles
from handlers.slack.gateway import SlackGateway
from handlers.slack.notifier import SlackNotifier
from handlers.web import create_web
from storage.db import make_engine, make_session_factory
from storage.media import CloudinaryStore, LocalStore, MediaStore


def slack_gateway(settings: Settings) -> SlackGateway:
    return SlackGateway(token=settings.slack_bot_token, api_url=settings.slack_api_url)


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
    gateway = slack_gateway(settings)
    slack_files = SlackFiles(gateway, api_host=urlparse(settings.slack_api_url).hostname)
    services = Services(
        settings=settings,
        engine=engine,
        factory=make_session_factory(engine),
        media=build_media_store(settings),
        # With no Slack app configured, the library belongs to its local owner alone.
        directory=gateway if settings.slack_bot_token else LocalDirectory(),
        files=UploadedFiles(slack_files, settings.media_dir.parent / "uploads"),
        clock=clock,
    )
    if settings.slack_bot_token:
        services.notifier = SlackNotifier(services, gateway)
    if settings.smtp_url and settings.smtp_from:
        services.mailer = SmtpMailer(settings.smtp_url, sender=settings.smtp_from)
    return services


def build_slack_app(settings: Settings, services: Services) -> App:
    return create_app(settings, services, slack_gateway(settings))


def build_web(settings: Settings, services: Services) -> Flask:
    """The WSGI app: the web library, Slack's requests (when Slack is configured for HTTP),
    health and media."""
    if settings.slack_mode == "unconfigured":
        return create_web(services, bolt_app=None, installed_team=lambda: LOCAL_TEAM)
    gateway = slack_gateway(settings)
    return create_web(
        services,
        bolt_app=build_slack_app(settings, services),
        installed_team=gateway.team_id,
    )


def build_media_store(settings: Settings) -> MediaStore:
    if settings.cloudinary_url:
        return CloudinaryStore(settings.cloudinary_url)
    return LocalStore(
        settings.media_dir,
        signing_key=media_signing_key(settings),
        public_base_url=settings.public_base_url,
        thumbnailer=_thumbnail,
    )


def _thumbnail(original: Path, dest: Path, width: int, height: int, crop: bool) -> None:
    imaging.write_thumbnail(original, dest, width=width, height=height, crop=crop)
