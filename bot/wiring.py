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
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot import imaging
from bot.config import Settings
from bot.local import LOCAL_TEAM, LocalDirectory
from bot.mailer import SmtpMailer
from bot.services import Services, media_signing_key, utc_now
from bot.uploads import UploadedFiles
from handlers.slack.app import create_app
from handlers.slack.files import SlackFiles
from handlers.slack.gateway import SlackGateway
from handlers.slack.install import Installations
from handlers.slack.notifier import SlackNotifier
from handlers.web import Workspaces, create_web
from handlers.web.system import install_page
from storage.db import make_engine, make_session_factory
from storage.media import CloudinaryStore, LocalStore, MediaStore


def slack_gateway(
    settings: Settings,
    *,
    engine: Engine | None = None,
    factory: sessionmaker[Session] | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> SlackGateway:
    """The Web API gateway: the one bot token's, or (installed from /slack/install) each
    installed workspace's, read from the installation store on `engine`."""
    installations = None
    if settings.slack_mode == "oauth":
        if engine is None or factory is None:
            raise ValueError("an app installed in any workspace keeps its tokens in the database")
        installations = Installations(settings, engine, factory, clock, page=install_page)
    return SlackGateway(
        api_url=settings.slack_api_url, token=settings.slack_bot_token, installations=installations
    )


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
    factory = make_session_factory(engine)
    gateway = slack_gateway(settings, engine=engine, factory=factory, clock=clock)
    slack_files = SlackFiles(gateway, api_host=urlparse(settings.slack_api_url).hostname)
    connected = settings.slack_mode != "unconfigured"
    services = Services(
        settings=settings,
        engine=engine,
        factory=factory,
        media=build_media_store(settings),
        # With no Slack app configured, the library belongs to its local owner alone.
        directory=gateway if connected else LocalDirectory(),
        files=UploadedFiles(slack_files, settings.media_dir.parent / "uploads"),
        clock=clock,
    )
    if connected:
        services.notifier = SlackNotifier(services, gateway)
    if settings.smtp_url and settings.smtp_from:
        services.mailer = SmtpMailer(settings.smtp_url, sender=settings.smtp_from)
    return services


def gateway_of(services: Services) -> SlackGateway:
    """The gateway `build_services` plugged in as the directory (Slack connected)."""
    if not isinstance(services.directory, SlackGateway):
        raise ValueError("Slack is not connected: set SLACK_BOT_TOKEN or SLACK_CLIENT_ID")
    return services.directory


def build_slack_app(settings: Settings, services: Services) -> App:
    return create_app(settings, services, gateway_of(services))


def build_web(settings: Settings, services: Services) -> Flask:
    """The WSGI app: the web library, Slack's requests (when Slack is configured for HTTP),
    health and media."""
    if settings.slack_mode == "unconfigured":
        return create_web(services, bolt_app=None, workspaces=Workspaces.only(LOCAL_TEAM))
    gateway = gateway_of(services)
    installations = gateway.installations
    return create_web(
        services,
        bolt_app=build_slack_app(settings, services),
        workspaces=(
            Workspaces.any_installed(installations.is_installed)
            if installations is not None
            else Workspaces.single(gateway.team_id)
        ),
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
