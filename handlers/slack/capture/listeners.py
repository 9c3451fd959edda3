"""Capture: images posted in watched channels (recorded before the ack, ingested after),
the message shortcut that adds a message's images, and the prompt's duplicate choices."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot.channels import set_privacy
from bot.domain import Post
from bot.editing import settle_duplicate
from bot.library import is_watched, record_posted_files, still_pending
from bot.prompts import build_plan, register_view
from handlers.slack.blocks import message_modal, section
from handlers.slack.capture import ids
from handlers.slack.capture.views import prompt_blocks
from handlers.slack.clicks import open_modal
from handlers.slack.context import services_of
from handlers.slack.details.listeners import clicked_images
from handlers.slack.details.send import details_or_reasons
from handlers.slack.files import posted_file_from_slack
from handlers.slack.gateway import respond_with_fallback, send
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


def record_images(body: dict[str, Any], context: BoltContext, next: Callable[[], None]) -> None:
    """Listener middleware: runs before Bolt acknowledges the event, so the ingest job is
    in the database before Slack hears "got it". A database error here makes Bolt answer
    500 and Slack deliver the event again; nothing is lost."""
    services = services_of(context)
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
    services = services_of(context)
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


def file_shared() -> None:
    """Slack's `file_shared` event is the companion of the `message` event carrying the same
    files: the message records and ingests them (deduplicated on the file id), so this one
    is only acknowledged. Unanswered, Bolt would say 404 and Slack would deliver it three
    more times, to whichever process is up."""


def bot_joined(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    """Invited into a channel that is not watched: tell the inviter how to watch it."""
    services = services_of(context)
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
    send(
        "chat.postEphemeral",
        lambda: client.chat_postEphemeral(channel=channel_id, user=event["inviter"], text=text),
    )


def _is_image_post(event: dict[str, Any], *, bot_user_id: str | None) -> bool:
    if not event.get("files") or not event.get("user") or not event.get("channel"):
        return False
    if event.get("subtype") in IGNORED_SUBTYPES or event.get("bot_id"):
        return False
    return event.get("user") != bot_user_id


def add_to_library(
    ack: Ack,
    body: dict[str, Any],
    shortcut: dict[str, Any],
    context: BoltContext,
    client: WebClient,
) -> None:
    services = services_of(context)
    ack()
    team_id, user_id = str(context.team_id), str(body["user"]["id"])
    message = shortcut.get("message") or {}
    channel_id = str((shortcut.get("channel") or {}).get("id") or "")
    files = [posted_file_from_slack(f) for f in message.get("files") or []]
    images = [f for f in files if f.looks_like_image]
    if not images:
        open_modal(
            client,
            body,
            message_modal(
                "Image library",
                "This message has no images to add. Use the shortcut on a "
                "message with photos (JPEG, PNG, GIF, WebP or HEIC).",
            ),
        )
        return
    poster = str(message.get("user") or user_id)
    post = Post(
        team_id=team_id,
        channel_id=channel_id,
        user_id=poster,
        message_ts=message.get("ts"),
        thread_ts=message.get("thread_ts"),
        # Only members see a private channel's or a DM's images; when Slack will not say,
        # the channel counts as private (hiding too much is safer than showing too much).
        channel_private=services.directory.is_private(team_id, channel_id) is not False,
    )
    now = services.clock()
    job_ids = record_posted_files(
        services.factory,
        post=post,
        files=images,
        event_id=None,
        now=now,
        require_watched=False,
    )
    may_edit = poster == user_id or services.people.is_admin(team_id, user_id)
    if not may_edit:
        services.submit_ingest(job_ids)
        open_modal(
            client,
            body,
            message_modal(
                "Image library",
                f"Adding {len(images)} image(s) to the library. Only "
                f"<@{poster}>, who posted them, or an admin can add their details.",
            ),
        )
        return
    file_ids = [f.file_id for f in images]
    pending = still_pending(services.factory, team_id=team_id, file_ids=file_ids)

    def settled_view() -> dict[str, Any]:
        plan = build_plan(
            services.factory,
            team_id=team_id,
            channel_id=channel_id,
            message_ts=str(message.get("ts")),
            media=services.media,
        )
        if plan is None:  # discarded meanwhile
            return message_modal("Image library", "These images were discarded.")
        return details_or_reasons(services, plan)

    if not pending:
        open_modal(client, body, settled_view())
        return
    opened = open_modal(
        client,
        body,
        message_modal(
            "Image library",
            f":hourglass_flowing_sand: Saving {len(images)} image(s)... "
            "The form appears here in a moment.",
        ),
    )
    if opened:
        register_view(
            services.factory,
            team_id=team_id,
            channel_id=channel_id,
            message_ts=str(message.get("ts")),
            user_id=user_id,
            view_id=opened,
            now=now,
        )
        if not still_pending(services.factory, team_id=team_id, file_ids=file_ids):
            # They settled while the modal opened (ingest had started from the channel).
            client.views_update(view_id=opened, view=settled_view())
    services.submit_ingest(job_ids)


def duplicate_choice(
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    context: BoltContext,
    client: WebClient,
    respond: Respond,
) -> None:
    services = services_of(context)
    ack()
    allowed = clicked_images(services, body, action, context, client, respond)
    if allowed is None:
        return
    team_id, user_id, image_ids = allowed
    image = settle_duplicate(
        services,
        services.people.person(team_id, user_id),
        image_id=image_ids[0],
        keep=action["action_id"] in (ids.KEEP_DUPLICATE, ids.OLD[ids.KEEP_DUPLICATE]),
    )
    if image is None or image.message_ts is None:
        return
    plan = build_plan(
        services.factory,
        team_id=team_id,
        channel_id=image.channel_id,
        message_ts=image.message_ts,
        media=services.media,
    )
    if plan is None:
        text = "Discarded. Nothing from that message is in the library now."
        respond(replace_original=True, text=text, blocks=[section(text)])
    else:
        text, body_blocks = prompt_blocks(plan)
        respond_with_fallback(respond, replace_original=True, text=text, blocks=body_blocks)
