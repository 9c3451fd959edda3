"""Home: the App Home tab, published when a person opens it and refreshed on changes."""

from __future__ import annotations

from slack_bolt import App

from handlers.slack.home.listeners import home_opened


def register(app: App) -> None:
    app.event("app_home_opened")(home_opened)
