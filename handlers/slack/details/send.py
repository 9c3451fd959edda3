"""Details: the modal built for a set of images, and the reminder to add details."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.details_form import details_form
from bot.link_notices import LinkNotice
from bot.prompts import PromptPlan
from bot.reminders import DetailsReminder
from bot.services import Services
from handlers.slack.blocks import Block, button, escape, message_modal, section
from handlers.slack.details import ids
from handlers.slack.details.views import MAX_TITLES_IN_MODAL, details_modal
from handlers.slack.gateway import send

log = logging.getLogger(__name__)

GONE = "These images are no longer in the library."


def details_modal_for(
    services: Services, *, team_id: str, image_ids: list[int], response_url: str | None
) -> Block:
    """The details modal for these images, prefilled with what is known. `response_url`:
    the prompt the summary replaces once saved."""
    form = details_form(
        services.factory,
        services.media,
        team_id=team_id,
        image_ids=image_ids[:MAX_TITLES_IN_MODAL],  # one title input each
    )
    if form is None:
        return message_modal("Image library", GONE)
    metadata = {"images": [i.image_id for i in form.images], "response_url": response_url}
    return details_modal(
        images=form.images,
        has_categories=form.has_categories,
        prefill=form.prefill,
        metadata=metadata,
        previews=form.previews,
    )


def details_or_reasons(services: Services, plan: PromptPlan) -> Block:
    """For the shortcut's modal: the details form, or why nothing could be kept."""
    images = plan.needing_details or plan.stored
    if not images:
        reasons = "\n".join(
            f"\u2022 {escape(n.file_name)}: {escape(n.reason or 'unknown')}"
            for n in plan.failed[:20]
        )
        return message_modal("Image library", f"None of these files could be kept:\n{reasons}")
    return details_modal_for(
        services,
        team_id=plan.team_id,
        image_ids=[n.image_id for n in images],
        response_url=None,
    )


def remind_about_details(client: WebClient, reminder: DetailsReminder) -> bool:
    """DM the poster; False when Slack answered with an error (so nothing was posted and the
    reminder can be sent again), True when sent, or when no answer came (it may have been
    posted: better not sent twice)."""
    count = len(reminder.image_ids)
    noun = "image is" if count == 1 else f"{count} images are"
    titles = ", ".join(f"*{escape(t or 'untitled')}*" for t in reminder.titles[:10])
    body = [
        section(
            f":wave: Your {noun} in the library but still without details: {titles}. "
            "Tags and a category make them findable."
        ),
        {
            "type": "actions",
            "elements": [
                button(
                    "Add details",
                    ids.ADD_DETAILS,
                    ",".join(str(i) for i in reminder.image_ids[:MAX_TITLES_IN_MODAL]),
                    style="primary",
                )
            ],
        },
    ]
    try:
        client.chat_postMessage(
            channel=reminder.user_id, text=f"Your {noun} still without details", blocks=body
        )
    except SlackApiError as exc:
        log.warning("details reminder not sent (Slack said %s)", exc.response.get("error"))
        return False
    except Exception:
        log.exception("details reminder: no answer from Slack")
    return True


def announce_link_uploads(client: WebClient, notice: LinkNotice) -> None:
    """One message per burst of uploads through a link, to its admin's DM or channel."""
    count = len(notice.image_ids)
    noun = "1 image" if count == 1 else f"{count} images"
    into = f" into *{escape(notice.category)}*" if notice.category else ""
    text = f"{noun} uploaded through {escape(notice.label)}"
    shown = notice.image_ids[:MAX_TITLES_IN_MODAL]
    more = (
        f" The button opens the first {len(shown)}; find the rest in the library."
        if count > len(shown)
        else ""
    )
    body = [
        section(
            f":inbox_tray: {noun} uploaded through *{escape(notice.label)}*{into}. "
            f"They are drafts until someone adds their details.{more}"
        ),
        {
            "type": "actions",
            "elements": [
                button(
                    "Add details",
                    ids.ADD_DETAILS,
                    ",".join(str(i) for i in shown),
                    style="primary",
                )
            ],
        },
    ]
    send(
        "chat.postMessage",
        lambda: client.chat_postMessage(channel=notice.channel, text=text[:3000], blocks=body),
    )
