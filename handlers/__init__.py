"""Thin Slack listeners: read the payload, call a use case in `bot/`, reply."""

from __future__ import annotations

from slack_bolt import App

from bot.services import Services
from handlers import approvals, commands, home, messages, search, tagging


def register_listeners(app: App, services: Services) -> None:
    messages.register(app, services)
    commands.register(app, services)
    tagging.register(app, services)
    home.register(app, services)
    search.register(app, services)
    approvals.register(app, services)
