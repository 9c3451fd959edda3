"""Home: the App Home is published when a person opens it (and refreshed, coalesced, when
what it shows changes: `Services.refresh_home`)."""

from __future__ import annotations

from typing import Any

from slack_bolt import BoltContext

from handlers.slack.context import services_of


def home_opened(event: dict[str, Any], context: BoltContext) -> None:
    services = services_of(context)
    if event.get("tab", "home") == "home":
        services.refresh_home(str(context.team_id), str(event["user"]))
