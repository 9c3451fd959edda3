"""Search: `/images search ...` (and `/images <words>`), paging, sharing a result into a
channel (and `/images <words>`: see handlers.slack.command)."""

from __future__ import annotations

from slack_bolt import App

from handlers.slack.routing import routed
from handlers.slack.search import ids
from handlers.slack.search.listeners import page, share


def register(app: App) -> None:
    for button in (ids.SEARCH_NEWER, ids.SEARCH_OLDER):
        app.action(routed(button, ids.OLD[button]))(page)
    app.action(routed(ids.SHARE_IMAGE, ids.OLD[ids.SHARE_IMAGE]))(share)
