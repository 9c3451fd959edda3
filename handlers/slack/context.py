"""What every listener gets from the app's middleware (see handlers.slack.app)."""

from __future__ import annotations

from typing import cast

from slack_bolt import BoltContext

from bot.services import Services


def services_of(context: BoltContext) -> Services:
    """The library, as the app's middleware put it in the listener's context."""
    return cast(Services, context["services"])
