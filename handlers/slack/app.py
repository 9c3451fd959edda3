"""The Bolt app: one listener per button, command, modal, option list and event, each in its
surface's folder, with the library and our Web API client handed to every one of them."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from slack_bolt import App, BoltContext

from bot.config import Settings
from bot.services import Services
from handlers.slack import approvals, capture, command, details, home, search
from handlers.slack.blocks import OPEN_ORIGINAL
from handlers.slack.clicks import acknowledge
from handlers.slack.gateway import SlackGateway
from handlers.slack.install import register_uninstalls
from handlers.slack.routing import routed
from handlers.slack.telemetry import ContextExecutor, name_the_request

log = logging.getLogger(__name__)

OAUTH_VARIABLES = ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET")


def create_app(settings: Settings, services: Services, gateway: SlackGateway) -> App:
    """The Bolt app with every listener registered. Needs Slack credentials."""
    if settings.slack_mode == "unconfigured":
        raise ValueError(
            "create_app needs SLACK_BOT_TOKEN and a signing secret or app token, "
            "or SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and a signing secret"
        )
    with _without_oauth_environment():
        app = _bolt_app(settings, gateway)

    def inject(context: BoltContext, next: Callable[[], None]) -> None:
        """Every listener finds the library in `context["services"]`, and Bolt's `client`
        is ours (its error policy: messages that survive a preview Slack cannot load),
        acting in the workspace the request came from."""
        context["services"] = services
        context["client"] = gateway.client(context.team_id, token=context.bot_token)
        next()

    app.use(name_the_request)
    app.use(inject)
    for surface in (capture, details, search, approvals, home, command):
        surface.register(app)
    if gateway.installations is not None:
        register_uninstalls(app, gateway.installations)
    # Link buttons (Open original): Slack opens the URL and still sends the click.
    app.action(routed(OPEN_ORIGINAL, "open_original"))(acknowledge)
    return app


def _bolt_app(settings: Settings, gateway: SlackGateway) -> App:
    installations = gateway.installations
    return App(
        client=gateway.client(),
        signing_secret=settings.slack_signing_secret or "",
        # Installed from /slack/install: Bolt's OAuth flow, and each request authorized with
        # its workspace's token from the installation store.
        oauth_settings=(
            installations.oauth_settings(settings.public_base_url) if installations else None
        ),
        authorize=installations.authorize() if installations else None,
        request_verification_enabled=settings.serves_slack_over_http,
        # Verified lazily on the first request: a Slack outage at boot must not crash-loop us.
        token_verification_enabled=False,
        process_before_response=False,
        listener_executor=ContextExecutor(max_workers=16, thread_name_prefix="bolt"),
        logger=logging.getLogger("slack_bolt"),
    )


@contextmanager
def _without_oauth_environment() -> Iterator[None]:
    """Bolt turns its own OAuth install flow on when SLACK_CLIENT_ID and SLACK_CLIENT_SECRET
    are in the environment, and then ignores the bot token (SLACK.md). With a bot token they
    are for Sign in with Slack on the web: that app stays a single-workspace app. Installed in
    any workspace, the OAuth settings are given explicitly (`Installations`)."""
    hidden = {k: os.environ.pop(k) for k in OAUTH_VARIABLES if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(hidden)
