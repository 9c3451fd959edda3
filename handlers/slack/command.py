"""`/images ...`: one slash command, routed by its first word to the admin surface (help,
watch, unwatch, channels, categories, approvers) or else to search."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from handlers.slack.admin.listeners import admin_answer
from handlers.slack.context import services_of
from handlers.slack.search.listeners import run_search


def images_command(
    ack: Ack, command: dict[str, Any], respond: Respond, context: BoltContext, client: WebClient
) -> None:
    services = services_of(context)
    ack()
    text = " ".join(str(command.get("text") or "").split())
    word, _, rest = text.partition(" ")
    team_id, user_id = str(context.team_id), str(command["user_id"])
    answer = admin_answer(services, client, word.lower(), rest, team_id=team_id, user_id=user_id)
    if answer is None:
        query = rest if word.lower() == "search" else text
        run_search(services, respond, team_id=team_id, user_id=user_id, text=query)
        return
    respond(text=answer[0], blocks=answer[1], response_type="ephemeral")


def register(app: App) -> None:
    app.command("/images")(images_command)
