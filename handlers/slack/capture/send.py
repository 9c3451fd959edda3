"""Capture: telling the poster, once every image of their message is stored or failed."""

from __future__ import annotations

from slack_sdk import WebClient

from bot.prompts import PromptPlan
from bot.services import Services
from handlers.slack.capture.views import prompt_blocks
from handlers.slack.details.send import details_or_reasons
from handlers.slack.gateway import send

STORED_REACTION = "frame_with_picture"
FAILED_REACTION = "warning"


def tell_poster(services: Services, client: WebClient, plan: PromptPlan) -> None:
    """React on the message, then fill in the shortcut's modal if one is waiting, or else
    prompt the poster privately in the channel."""
    for reaction, wanted in ((STORED_REACTION, plan.stored), (FAILED_REACTION, plan.failed)):
        if wanted:
            send(
                "reactions.add",
                lambda r=reaction: client.reactions_add(
                    channel=plan.channel_id, timestamp=plan.message_ts, name=r
                ),
                ignore=("already_reacted", "message_not_found", "not_in_channel"),
            )
    if plan.view_id:
        view_id = plan.view_id
        send(
            "views.update",
            lambda: client.views_update(view_id=view_id, view=details_or_reasons(services, plan)),
            ignore=("not_found", "view_not_found"),
        )
    else:
        text, prompt = prompt_blocks(plan)
        send(
            "chat.postEphemeral",
            lambda: client.chat_postEphemeral(
                channel=plan.channel_id, user=plan.user_id, text=text, blocks=prompt
            ),
            ignore=("user_not_in_channel", "channel_not_found", "not_in_channel"),
        )
