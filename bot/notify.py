"""What people see when the library changes without them clicking anything: the reaction and
private prompt once a message's images are settled, the shortcut's modal filling in, the App
Home refreshing, the details reminder.

These run wherever the change happens (the web process after an ingest, or the worker after a
retry), so they live here and not in the Bolt listeners.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError
from sqlalchemy import select

from bot import blocks, ids
from bot.admin import list_categories
from bot.home import home_images
from bot.library import IngestOutcome
from bot.prompts import PromptPlan, claim_prompt, post_date, preview_for
from bot.reminders import DetailsReminder
from storage.db import session_scope
from storage.models import Category, Image, WatchedChannel

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

STORED_REACTION = "frame_with_picture"
FAILED_REACTION = "warning"


def on_ingest_settled(services: Services, outcome: IngestOutcome) -> None:
    """Called after every ingest attempt. Tells the poster once the whole message settled."""
    if outcome.state not in ("stored", "failed"):
        return
    plan = claim_prompt(
        services.factory,
        image_id=outcome.image_id,
        media=services.media,
        duplicate_distance=services.settings.duplicate_max_distance,
        now=services.clock(),
    )
    if plan is None:
        return
    client = services.slack_client(plan.team_id)
    for reaction, wanted in ((STORED_REACTION, plan.stored), (FAILED_REACTION, plan.failed)):
        if wanted:
            _call(
                "reactions.add",
                lambda r=reaction: client.reactions_add(
                    channel=plan.channel_id, timestamp=plan.message_ts, name=r
                ),
                ignore=("already_reacted", "message_not_found", "not_in_channel"),
            )
    if plan.view_id:
        _call(
            "views.update",
            lambda: client.views_update(
                view_id=plan.view_id, view=details_or_reasons(services, plan)
            ),
            ignore=("not_found", "view_not_found"),
        )
    else:
        text, prompt = blocks.prompt_blocks(plan)
        _call(
            "chat.postEphemeral",
            lambda: client.chat_postEphemeral(
                channel=plan.channel_id, user=plan.user_id, text=text, blocks=prompt
            ),
            ignore=("user_not_in_channel", "channel_not_found", "not_in_channel"),
        )
    publish_home(services, team_id=plan.team_id, user_id=plan.user_id)


def details_or_reasons(services: Services, plan: PromptPlan) -> blocks.Block:
    """For the shortcut's modal: the details form, or why nothing could be kept."""
    images = plan.needing_details or plan.stored
    if not images:
        reasons = "\n".join(
            f"\u2022 {blocks.escape(n.file_name)}: {blocks.escape(n.reason or 'unknown')}"
            for n in plan.failed[:20]
        )
        return blocks.message_modal(
            "Image library", f"None of these files could be kept:\n{reasons}"
        )
    return details_modal_for(
        services,
        team_id=plan.team_id,
        image_ids=[n.image_id for n in images],
        response_url=None,
    )


def details_modal_for(
    services: Services, *, team_id: str, image_ids: list[int], response_url: str | None
) -> blocks.Block:
    """The details modal for these images, prefilled with what is known (their current
    details, the EXIF shoot date or else the day of the post, the category's approvers)."""
    categories = list_categories(services.factory, team_id=team_id)
    with session_scope(services.factory) as session:
        images = list(
            session.scalars(
                select(Image)
                .where(Image.team_id == team_id, Image.id.in_(image_ids))
                .order_by(Image.id)
            )
        )
        first = images[0]
        category_id = first.category_id
        if category_id is None:
            watched = session.get(WatchedChannel, (team_id, first.channel_id))
            category_id = watched.category_id if watched else None
        category = session.get(Category, category_id) if category_id else None
        shoot = first.shoot_date.date() if first.shoot_date else post_date(first.message_ts)
        prefill = blocks.DetailsPrefill(
            tags=list(first.tags),
            category_id=category_id,
            shoot_date=shoot,
            description=first.description,
            approvers=list(category.default_approvers) if category else [],
        )
        modal_images = [blocks.ModalImage(i.id, i.file_name, i.title) for i in images]
        previews = [preview_for(i, services.media) for i in images[:3]]
    metadata = {"images": [i.image_id for i in modal_images], "response_url": response_url}
    return blocks.details_modal(
        images=modal_images,
        categories=categories,
        prefill=prefill,
        metadata=metadata,
        previews=previews,
    )


def publish_home(services: Services, *, team_id: str, user_id: str) -> None:
    missing, recent = home_images(
        services.factory, team_id=team_id, user_id=user_id, media=services.media
    )
    view = blocks.home_view(missing=missing, recent=recent)
    client = services.slack_client(team_id)
    _call("views.publish", lambda: client.views_publish(user_id=user_id, view=view))


def send_details_reminder(services: Services, reminder: DetailsReminder) -> None:
    count = len(reminder.image_ids)
    noun = "image is" if count == 1 else f"{count} images are"
    titles = ", ".join(f"*{blocks.escape(t or 'untitled')}*" for t in reminder.titles[:10])
    body = [
        blocks.section(
            f":wave: Your {noun} in the library but still without details: {titles}. "
            "Tags and a category make them findable."
        ),
        {
            "type": "actions",
            "elements": [
                blocks.button(
                    "Add details",
                    ids.ADD_DETAILS,
                    ",".join(str(i) for i in reminder.image_ids[:50]),
                    style="primary",
                )
            ],
        },
    ]
    client = services.slack_client(reminder.team_id)
    _call(
        "chat.postMessage",
        lambda: client.chat_postMessage(
            channel=reminder.user_id, text=f"Your {noun} still without details", blocks=body
        ),
    )


def _call(name: str, send, *, ignore: tuple[str, ...] = ()) -> None:  # type: ignore[no-untyped-def]
    """Send one Slack call; a failure is logged with its error code, never raised."""
    try:
        send()
    except SlackApiError as exc:
        error = exc.response.get("error")
        if error not in ignore:
            log.warning("%s failed: %s %s", name, error, exc.response.get("errors") or "")
    except Exception:
        log.exception("%s failed", name)
