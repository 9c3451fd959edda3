"""Images posted in watched channels: record them before the ack, ingest them after."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.channels import set_privacy
from bot.domain import Post
from bot.library import is_watched, record_posted_files
from bot.services import Services
from bot.slack_files import posted_file_from_slack
from storage.db import session_scope

log = logging.getLogger(__name__)

# Where only members can see a message (Slack's channel_type on message events).
PRIVATE_CHANNEL_TYPES = frozenset({"group", "im", "mpim"})

# Messages Slack posts in a channel whose privacy changed (message.channels / .groups).
PRIVACY_CHANGES = {"channel_convert_to_private": True, "channel_convert_to_public": False}

# Message subtypes that never carry a new image from a person.
IGNORED_SUBTYPES = frozenset(
    {"bot_message", "message_changed", "message_deleted", "channel_join", "channel_leave"}
)


def register(app: App, services: Services) -> None:
    def record_images(body: dict[str, Any], context: BoltContext, next: Callable[[], None]) -> None:
        """Listener middleware: runs before Bolt acknowledges the event, so the ingest job is
        in the database before Slack hears "got it". A database error here makes Bolt answer
        500 and Slack deliver the event again; nothing is lost."""
        event = body.get("event") or {}
        context["ingest_job_ids"] = []
        if _is_image_post(event, bot_user_id=context.bot_user_id):
            post = Post(
                team_id=str(context.team_id or body.get("team_id")),
                channel_id=str(event["channel"]),
                user_id=str(event["user"]),
                message_ts=event.get("ts"),
                thread_ts=event.get("thread_ts"),
                # No channel_type: we cannot tell, so only members will see the images.
                channel_private=event.get("channel_type", "group") in PRIVATE_CHANNEL_TYPES,
            )
            context["ingest_job_ids"] = record_posted_files(
                services.factory,
                post=post,
                files=[posted_file_from_slack(f) for f in event.get("files") or []],
                event_id=body.get("event_id"),
                now=services.clock(),
            )
        next()

    def start_ingest(event: dict[str, Any], context: BoltContext) -> None:
        services.submit_ingest(context["ingest_job_ids"])
        converted = PRIVACY_CHANGES.get(str(event.get("subtype")))
        if converted is not None and event.get("channel"):
            # "made this channel private": its images are for its members from now on.
            set_privacy(
                services.factory,
                team_id=str(context.team_id),
                channel_id=str(event["channel"]),
                private=converted,
                now=services.clock(),
            )

    def bot_joined(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        """Invited into a channel that is not watched: tell the inviter how to watch it."""
        if event.get("user") != context.bot_user_id or not event.get("inviter"):
            return
        channel_id, team_id = str(event["channel"]), str(context.team_id)
        with session_scope(services.factory) as session:
            if is_watched(session, team_id=team_id, channel_id=channel_id):
                return
        text = (
            f"Thanks for inviting me to <#{channel_id}>. I am not keeping its images yet: "
            f"an admin can start with `/images watch <#{channel_id}> [category]`."
        )
        try:
            client.chat_postEphemeral(channel=channel_id, user=event["inviter"], text=text)
        except SlackApiError as exc:
            log.info("could not tell the inviter: %s", exc.response.get("error"))

    # Every message event is matched, so that plain messages are acknowledged (Bolt would
    # otherwise answer 404 and Slack would retry them).
    app.event("message", middleware=[record_images])(start_ingest)
    app.event("member_joined_channel")(bot_joined)


def _is_image_post(event: dict[str, Any], *, bot_user_id: str | None) -> bool:
    if not event.get("files") or not event.get("user") or not event.get("channel"):
        return False
    if event.get("subtype") in IGNORED_SUBTYPES or event.get("bot_id"):
        return False
    return event.get("user") != bot_user_id
