"""Details: the "Add details" / "Edit details" buttons, the details modal (tag and category
suggestions, its submission) and the summary that replaces the prompt."""

from __future__ import annotations

from slack_bolt import App

from handlers.slack.details import ids
from handlers.slack.details.listeners import (
    category_suggestions,
    open_details,
    submit_details,
    tag_suggestions,
)
from handlers.slack.routing import routed


def register(app: App) -> None:
    for button in (ids.ADD_DETAILS, ids.EDIT_DETAILS):
        app.action(routed(button, ids.OLD[button]))(open_details)
    app.options(routed(ids.TAGS, ids.OLD[ids.TAGS]))(tag_suggestions)
    app.options(routed(ids.CATEGORY, ids.OLD[ids.CATEGORY]))(category_suggestions)
    app.view(routed(ids.DETAILS_MODAL, ids.OLD[ids.DETAILS_MODAL]))(submit_details)
