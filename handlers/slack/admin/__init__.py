"""Admin: the `/images` command (help, watch, unwatch, channels, categories, approvers; any
other words are a search, answered by the search surface)."""

from __future__ import annotations

from slack_bolt import App

from handlers.slack.admin.listeners import images_command


def register(app: App) -> None:
    app.command("/images")(images_command)
