"""Composition: build the Bolt app for a given configuration and object graph."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import App

from bot.config import Settings
from bot.services import Services

log = logging.getLogger(__name__)


def create_app(settings: Settings, services: Services) -> App:
    """The Bolt app with every listener registered. Needs Slack credentials."""
    from handlers import register_listeners

    if settings.slack_mode == "unconfigured":
        raise ValueError("create_app needs SLACK_BOT_TOKEN and a signing secret or app token")
    app = App(
        client=services.slack_client(),
        signing_secret=settings.slack_signing_secret or "",
        request_verification_enabled=settings.slack_mode == "http",
        # Verified lazily on the first request: a Slack outage at boot must not crash-loop us.
        token_verification_enabled=False,
        process_before_response=False,
        listener_executor=ThreadPoolExecutor(max_workers=16, thread_name_prefix="bolt"),
        logger=logging.getLogger("slack_bolt"),
    )
    register_listeners(app, services)
    return app
