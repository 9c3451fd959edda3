"""Details: the "Add details" / "Edit details" buttons, tag and category suggestions, and
the modal's submission."""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient
from sqlalchemy import select

from bot import admin
from bot.details import DetailsError, DetailsInput, SavedDetails, suggest_tags
from bot.editing import edit_refusal, save
from bot.previews import preview_for
from bot.services import Services
from handlers.slack.clicks import TOO_SLOW, open_modal, post_to_response_url, tell
from handlers.slack.context import services_of
from handlers.slack.details import ids
from handlers.slack.details.send import details_modal_for
from handlers.slack.details.views import Summary, category_options, summary_blocks, tag_options
from storage.db import session_scope
from storage.models import Image

log = logging.getLogger(__name__)

FIELD_BLOCKS = {
    "tags": ids.TAGS_BLOCK,
    "category": ids.CATEGORY_BLOCK,
    "shoot_date": ids.SHOOT_DATE_BLOCK,
    "description": ids.DESCRIPTION_BLOCK,
    "approvers": ids.APPROVERS_BLOCK,
}


def open_details(
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
    team_id, _, image_ids = allowed
    view = details_modal_for(
        services,
        team_id=team_id,
        image_ids=image_ids,
        # Only the prompt is replaced by the summary, never a search answer.
        response_url=body.get("response_url")
        if action["action_id"] in (ids.ADD_DETAILS, ids.OLD[ids.ADD_DETAILS])
        else None,
    )
    if open_modal(client, body, view, say_so=False) is None:
        tell(client, respond, body, TOO_SLOW)


def tag_suggestions(
    ack: Ack, body: dict[str, Any], payload: dict[str, Any], context: BoltContext
) -> None:
    services = services_of(context)
    typed = str(payload.get("value") or "")
    # Only tags on images this person may see: a private channel's tags stay in it.
    viewer = services.people.viewer(str(context.team_id), str(body["user"]["id"]))
    with session_scope(services.factory) as session:
        found = suggest_tags(session, viewer=viewer, typed=typed)
    ack(options=tag_options(found, typed=typed))


def category_suggestions(ack: Ack, payload: dict[str, Any], context: BoltContext) -> None:
    services = services_of(context)
    found = admin.find_categories(
        services.factory, team_id=str(context.team_id), typed=str(payload.get("value") or "")
    )
    ack(options=category_options(found))


def submit_details(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext
) -> None:
    services = services_of(context)
    team_id, user_id = str(context.team_id), str(body["user"]["id"])
    metadata = json.loads(view.get("private_metadata") or "{}")
    image_ids = [int(i) for i in metadata.get("images", [])]
    response_url = metadata.get("response_url")

    def saved(result: SavedDetails) -> None:
        ack()  # the modal closes first; then the summary replaces the prompt
        if response_url:
            text, summary = summary_blocks(_summary(services, team_id=team_id, saved=result))
            post_to_response_url(
                response_url,
                {
                    "replace_original": True,
                    "response_type": "ephemeral",
                    "text": text,
                    "blocks": summary,
                },
            )

    try:
        save(
            services,
            services.people.person(team_id, user_id),
            _read_form(view, image_ids),
            on_saved=saved,
        )
    except DetailsError as exc:
        ack(response_action="errors", errors=_errors(exc, image_ids))


def _ids(value: str) -> list[int]:
    return [int(part) for part in value.split(",") if part.strip().isdigit()][:50]


def clicked_images(
    services: Services,
    body: dict[str, Any],
    action: dict[str, Any],
    context: BoltContext,
    client: WebClient,
    respond: Respond,
) -> tuple[str, str, list[int]] | None:
    """(team, user, image ids) of a button naming images, when the clicker may change them;
    otherwise tell them why, privately, and return None."""
    team_id, user_id = str(context.team_id), str(body["user"]["id"])
    image_ids = _ids(action.get("value", ""))
    problem = edit_refusal(
        services.factory, services.people, team_id=team_id, user_id=user_id, image_ids=image_ids
    )
    if problem:
        tell(client, respond, body, problem)
        return None
    return team_id, user_id, image_ids


def _read_form(view: dict[str, Any], image_ids: list[int]) -> DetailsInput:
    values = view.get("state", {}).get("values", {})

    def element(block_id: str, action_id: str = "value") -> dict[str, Any]:
        # An input block holds one element: a modal opened before an upgrade names it by
        # its old action id (or, for the category, as the static select it was then).
        block = values.get(block_id) or {}
        found = block.get(action_id) or (next(iter(block.values())) if len(block) == 1 else None)
        return found or {}

    titles = {i: str(element(f"{ids.TITLE_BLOCK}:{i}").get("value") or "") for i in image_ids}
    tags = [
        o.get("value", "") for o in element(ids.TAGS_BLOCK, ids.TAGS).get("selected_options") or []
    ]
    picked = element(ids.CATEGORY_BLOCK, ids.CATEGORY)
    category = (picked.get("selected_option") or {}).get("value")
    raw_date = element(ids.SHOOT_DATE_BLOCK).get("selected_date")
    return DetailsInput(
        titles=titles,
        tags=tags,
        category_id=int(category) if category and str(category).isdigit() else None,
        shoot_date=date.fromisoformat(raw_date) if raw_date else None,
        description=str(element(ids.DESCRIPTION_BLOCK).get("value") or ""),
        approvers=list(element(ids.APPROVERS_BLOCK).get("selected_users") or []),
    )


def _first_title(image_ids: list[int]) -> str:
    return f"{ids.TITLE_BLOCK}:{image_ids[0]}" if image_ids else ids.TAGS_BLOCK


def _errors(exc: DetailsError, image_ids: list[int]) -> dict[str, str]:
    errors = {}
    for name, message in exc.fields.items():
        if name.startswith(f"{ids.TITLE_BLOCK}:"):
            errors[name] = message
        elif name in FIELD_BLOCKS:
            errors[FIELD_BLOCKS[name]] = message
        else:
            errors[_first_title(image_ids)] = message
    return errors


def _summary(services: Services, *, team_id: str, saved: SavedDetails) -> Summary:
    details = saved.details
    with session_scope(services.factory) as session:
        images = list(
            session.scalars(
                select(Image).where(Image.team_id == team_id, Image.id.in_(details.titles))
            )
        )
        previews = [preview_for(i, services.media) for i in images[:5]]
    return Summary(
        titles=[details.titles[i] for i in details.titles],
        tags=list(details.tags),
        category=saved.category,
        shoot_date=details.shoot_date,
        approvers=list(details.approvers),
        previews=previews,
    )
