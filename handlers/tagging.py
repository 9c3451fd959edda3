"""Adding details: the "Add details" / "Edit details" buttons, the message shortcut, tag
autocomplete, the modal's submission, and the duplicate choices."""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select

from bot import admin, blocks, ids
from bot.approvals import ApprovalError, get_request
from bot.details import DetailsError, DetailsInput, can_edit, save_details, suggest_tags, validate
from bot.domain import Post
from bot.finder import viewer_for
from bot.library import record_posted_files
from bot.notify import (
    details_modal_for,
    details_or_reasons,
    send_request,
    show_outcome,
)
from bot.prompts import build_plan, discard_image, keep_duplicate, preview_for, register_view
from bot.services import Services
from bot.slack_client import respond_with_fallback
from bot.slack_files import posted_file_from_slack
from handlers.approvals import check_approvers
from storage.db import session_scope
from storage.models import Image, IngestJob, IngestState

log = logging.getLogger(__name__)

FIELD_BLOCKS = {
    "tags": ids.TAGS_BLOCK,
    "category": ids.CATEGORY_BLOCK,
    "shoot_date": ids.SHOOT_DATE_BLOCK,
    "description": ids.DESCRIPTION_BLOCK,
    "approvers": ids.APPROVERS_BLOCK,
}
NOT_YOURS = "Only the person who posted these images, or an admin, can change their details."
TOO_SLOW = "Slack took too long to open the form. Click the button again, please."


def register(app: App, services: Services) -> None:
    def open_details(
        ack: Ack,
        body: dict[str, Any],
        action: dict[str, Any],
        context: BoltContext,
        client: WebClient,
        respond: Respond,
    ) -> None:
        ack()
        allowed = _clicked_images(services, body, action, context, client, respond)
        if allowed is None:
            return
        team_id, _, image_ids = allowed
        view = details_modal_for(
            services,
            team_id=team_id,
            image_ids=image_ids,
            # Only the prompt is replaced by the summary, never a search answer.
            response_url=body.get("response_url")
            if action["action_id"] == ids.ADD_DETAILS
            else None,
        )
        try:
            client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackApiError as exc:
            log.info("views.open failed: %s", exc.response.get("error"))
            _tell(client, respond, body, TOO_SLOW)

    def tag_suggestions(
        ack: Ack, body: dict[str, Any], payload: dict[str, Any], context: BoltContext
    ) -> None:
        typed = str(payload.get("value") or "")
        # Only tags on images this person may see: a private channel's tags stay in it.
        viewer = viewer_for(
            services.factory,
            team_id=str(context.team_id),
            user_id=str(body["user"]["id"]),
            admins=services.admins,
            memberships=services.memberships,
        )
        with session_scope(services.factory) as session:
            found = suggest_tags(session, viewer=viewer, typed=typed)
        ack(options=blocks.tag_options(found, typed=typed))

    def category_suggestions(ack: Ack, payload: dict[str, Any], context: BoltContext) -> None:
        found = admin.find_categories(
            services.factory, team_id=str(context.team_id), typed=str(payload.get("value") or "")
        )
        ack(options=blocks.category_options(found))

    def submit_details(
        ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext
    ) -> None:
        team_id, user_id = str(context.team_id), str(body["user"]["id"])
        metadata = json.loads(view.get("private_metadata") or "{}")
        image_ids = [int(i) for i in metadata.get("images", [])]
        problem = _editable(services, team_id=team_id, user_id=user_id, image_ids=image_ids)
        if problem:
            ack(response_action="errors", errors={_first_title(image_ids): problem})
            return
        try:
            details = validate(_read_form(view, image_ids), today=services.clock().date())
            if details.approvers:
                _check_approvers(
                    services,
                    team_id=team_id,
                    user_id=user_id,
                    approvers=list(details.approvers),
                    image_ids=image_ids,
                )
            saved = save_details(
                services.factory,
                team_id=team_id,
                actor_id=user_id,
                details=details,
                now=services.clock(),
            )
        except DetailsError as exc:
            ack(response_action="errors", errors=_errors(exc, image_ids))
            return
        ack()
        summary = _summary(services, team_id=team_id, details=details, category=saved.category)
        text, summary_body = blocks.summary_blocks(summary)
        response_url = metadata.get("response_url")
        if response_url:
            _post(
                response_url,
                {
                    "replace_original": True,
                    "response_type": "ephemeral",
                    "text": text,
                    "blocks": summary_body,
                },
            )
        for request_id in saved.approval_request_ids:
            request = get_request(services.factory, team_id=team_id, request_id=request_id)
            if request is not None:
                send_request(services, request)
        services.refresh_home(team_id, user_id)

    def shortcut(
        ack: Ack,
        body: dict[str, Any],
        shortcut: dict[str, Any],
        context: BoltContext,
        client: WebClient,
    ) -> None:
        ack()
        team_id, user_id = str(context.team_id), str(body["user"]["id"])
        message = shortcut.get("message") or {}
        channel_id = str((shortcut.get("channel") or {}).get("id") or "")
        files = [posted_file_from_slack(f) for f in message.get("files") or []]
        images = [f for f in files if f.looks_like_image]
        if not images:
            _open(
                client,
                body,
                blocks.message_modal(
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
            channel_private=_is_private(client, channel_id),
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
        may_edit = poster == user_id or services.admins.is_admin(team_id, user_id)
        if not may_edit:
            services.submit_ingest(job_ids)
            _open(
                client,
                body,
                blocks.message_modal(
                    "Image library",
                    f"Adding {len(images)} image(s) to the library. Only "
                    f"<@{poster}>, who posted them, or an admin can add their details.",
                ),
            )
            return
        file_ids = [f.file_id for f in images]
        pending = _pending(services, team_id=team_id, file_ids=file_ids)

        def settled_view() -> dict[str, Any]:
            plan = build_plan(
                services.factory,
                team_id=team_id,
                channel_id=channel_id,
                message_ts=str(message.get("ts")),
                media=services.media,
            )
            if plan is None:  # discarded meanwhile
                return blocks.message_modal("Image library", "These images were discarded.")
            return details_or_reasons(services, plan)

        if not pending:
            _open(client, body, settled_view())
            return
        opened = _open(
            client,
            body,
            blocks.message_modal(
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
            if not _pending(services, team_id=team_id, file_ids=file_ids):
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
        ack()
        allowed = _clicked_images(services, body, action, context, client, respond)
        if allowed is None:
            return
        team_id, user_id, image_ids = allowed
        now = services.clock()
        if action["action_id"] == ids.KEEP_DUPLICATE:
            image = keep_duplicate(
                services.factory, team_id=team_id, image_id=image_ids[0], actor_id=user_id, now=now
            )
        else:
            image, cancelled = discard_image(
                services.factory,
                team_id=team_id,
                image_id=image_ids[0],
                actor_id=user_id,
                media=services.media,
                now=now,
            )
            if cancelled is not None:
                show_outcome(services, cancelled, settled=True)
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
            respond(replace_original=True, text=text, blocks=[blocks.section(text)])
        else:
            text, body_blocks = blocks.prompt_blocks(plan)
            respond_with_fallback(respond, replace_original=True, text=text, blocks=body_blocks)
        services.refresh_home(team_id, user_id)

    app.action(ids.ADD_DETAILS)(open_details)
    app.action(ids.EDIT_DETAILS)(open_details)
    app.options(ids.TAGS)(tag_suggestions)
    app.options(ids.CATEGORY)(category_suggestions)
    app.view(ids.DETAILS_MODAL)(submit_details)
    app.shortcut(ids.ADD_TO_LIBRARY_SHORTCUT)(shortcut)
    app.action(ids.KEEP_DUPLICATE)(duplicate_choice)
    app.action(ids.DISCARD_DUPLICATE)(duplicate_choice)


def _ids(value: str) -> list[int]:
    return [int(part) for part in value.split(",") if part.strip().isdigit()][:50]


def _clicked_images(
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
    problem = _editable(services, team_id=team_id, user_id=user_id, image_ids=image_ids)
    if problem:
        _tell(client, respond, body, problem)
        return None
    return team_id, user_id, image_ids


def _editable(
    services: Services, *, team_id: str, user_id: str, image_ids: list[int]
) -> str | None:
    """Why `user_id` may not edit these images, or None when they may."""
    with session_scope(services.factory) as session:
        images = list(
            session.scalars(select(Image).where(Image.team_id == team_id, Image.id.in_(image_ids)))
        )
    if not images or len(images) != len(image_ids):
        return "These images are no longer in the library."
    if all(i.uploader_id == user_id for i in images):
        return None
    is_admin = services.admins.is_admin(team_id, user_id)
    if all(can_edit(i, user_id=user_id, is_admin=is_admin) for i in images):
        return None
    return NOT_YOURS


def _is_private(client: WebClient, channel_id: str) -> bool:
    """Only members see a private channel's or a DM's images; when Slack will not say, we
    treat the channel as private (hiding too much is safer than showing too much)."""
    try:
        info = client.conversations_info(channel=channel_id)["channel"]
    except SlackApiError:
        return True
    return bool(info.get("is_private") or info.get("is_im") or info.get("is_mpim"))


def _check_approvers(
    services: Services, *, team_id: str, user_id: str, approvers: list[str], image_ids: list[int]
) -> None:
    with session_scope(services.factory) as session:
        images = list(session.scalars(select(Image).where(Image.id.in_(image_ids))))
    try:
        for image in images:
            check_approvers(
                services, team_id=team_id, requester=user_id, approvers=approvers, image=image
            )
    except ApprovalError as exc:
        raise DetailsError({"approvers": str(exc)}) from None


def _pending(services: Services, *, team_id: str, file_ids: list[str]) -> bool:
    with session_scope(services.factory) as session:
        states = session.scalars(
            select(IngestJob.state)
            .join(Image, Image.id == IngestJob.image_id)
            .where(Image.team_id == team_id, Image.slack_file_id.in_(file_ids))
        ).all()
    return any(s in (IngestState.QUEUED, IngestState.RUNNING) for s in states)


def _read_form(view: dict[str, Any], image_ids: list[int]) -> DetailsInput:
    values = view.get("state", {}).get("values", {})

    def element(block_id: str, action_id: str = "value") -> dict[str, Any]:
        return values.get(block_id, {}).get(action_id) or {}

    titles = {i: str(element(f"{ids.TITLE_BLOCK}:{i}").get("value") or "") for i in image_ids}
    tags = [
        o.get("value", "") for o in element(ids.TAGS_BLOCK, ids.TAGS).get("selected_options") or []
    ]
    # `value`: the static select of forms opened before the picker searched categories.
    picked = element(ids.CATEGORY_BLOCK, ids.CATEGORY) or element(ids.CATEGORY_BLOCK)
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


def _summary(
    services: Services, *, team_id: str, details: DetailsInput, category: str | None
) -> blocks.Summary:
    with session_scope(services.factory) as session:
        images = list(
            session.scalars(
                select(Image).where(Image.team_id == team_id, Image.id.in_(details.titles))
            )
        )
        previews = [preview_for(i, services.media) for i in images[:5]]
    return blocks.Summary(
        titles=[details.titles[i] for i in details.titles],
        tags=list(details.tags),
        category=category,
        shoot_date=details.shoot_date,
        approvers=list(details.approvers),
        previews=previews,
    )


def _open(client: WebClient, body: dict[str, Any], view: dict[str, Any]) -> str | None:
    """Open a modal on the click's trigger; its view id, or None when Slack refused."""
    try:
        response = client.views_open(trigger_id=body["trigger_id"], view=view)
    except SlackApiError as exc:
        log.info("views.open failed: %s", exc.response.get("error"))
        channel = (body.get("channel") or {}).get("id")
        if channel:
            try:
                client.chat_postEphemeral(channel=channel, user=body["user"]["id"], text=TOO_SLOW)
            except SlackApiError:
                log.info("could not tell %s that the form did not open", body["user"]["id"])
        return None
    return str(response["view"]["id"])


def _tell(client: WebClient, respond: Respond, body: dict[str, Any], text: str) -> None:
    """Answer privately where the click happened: in the channel, or by DM from App Home."""
    if body.get("response_url"):
        respond(text=text, response_type="ephemeral", replace_original=False)
    else:
        client.chat_postMessage(channel=body["user"]["id"], text=text)


def _post(url: str, payload: dict[str, Any]) -> None:
    from slack_sdk.webhook import WebhookClient

    response = respond_with_fallback(
        lambda **message: WebhookClient(url, timeout=10).send_dict(message), **payload
    )
    if response.status_code != 200:
        log.warning("response_url answered %s: %s", response.status_code, response.body[:200])
