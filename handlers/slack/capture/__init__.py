"""Capture: images posted in watched channels, the "Add to image library" shortcut, the
reaction and private prompt once they are stored, and the prompt's duplicate choices."""

from __future__ import annotations

from slack_bolt import App

from handlers.slack.capture import ids
from handlers.slack.capture.listeners import (
    add_to_library,
    bot_joined,
    duplicate_choice,
    file_shared,
    record_images,
    start_ingest,
)
from handlers.slack.routing import routed


def register(app: App) -> None:
    # Every message event is matched, so that plain messages are acknowledged (Bolt would
    # otherwise answer 404 and Slack would retry them).
    app.event("message", middleware=[record_images])(start_ingest)
    app.event("member_joined_channel")(bot_joined)
    app.event("file_shared")(file_shared)
    app.shortcut(routed(ids.ADD_TO_LIBRARY_SHORTCUT, ids.OLD[ids.ADD_TO_LIBRARY_SHORTCUT]))(
        add_to_library
    )
    for choice in (ids.KEEP_DUPLICATE, ids.DISCARD_DUPLICATE):
        app.action(routed(choice, ids.OLD[choice]))(duplicate_choice)
