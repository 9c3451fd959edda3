"""App Home: published when a person opens it (and refreshed by bot/notify.py on changes)."""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext

from bot.services import Services


def register(app: App, services: Services) -> None:
    def home_opened(event: dict[str, Any], context: BoltContext) -> None:
        if event.get("tab", "home") == "home":
            services.refresh_home(str(context.team_id), str(event["user"]))

    app.event("app_home_opened")(home_opened)
