"""Thin Slack listeners: read the payload, call a use case in `bot/`, reply."""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import App, BoltContext

from bot.services import Services
from handlers import approvals, commands, home, messages, search, tagging


def register_listeners(app: App, services: Services) -> None:
    def our_client(context: BoltContext, next: Callable[[], None]) -> None:
        """Bolt hands every listener a plain WebClient of its own making: give them ours,
        which keeps the app's error policy (messages that survive a preview Slack cannot
        load)."""
        context["client"] = services.slack_client(context.team_id)
        next()

    app.use(our_client)
    messages.register(app, services)
    commands.register(app, services)
    tagging.register(app, services)
    home.register(app, services)
    search.register(app, services)
    approvals.register(app, services)
