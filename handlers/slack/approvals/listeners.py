"""Approve / Reject on the cards (and App Home), the reason modal, cancelling, asking from a
search result, and an image's history."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, time
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import approvals
from bot.approval_queue import card_image, history
from bot.approvers import check_approvers, default_approvers, policy_of
from bot.services import Services
from handlers.slack.approvals import ids
from handlers.slack.approvals.send import send_request, show_outcome
from handlers.slack.approvals.views import (
    approval_card,
    history_blocks,
    reject_modal,
    request_modal,
)
from handlers.slack.clicks import visible, visible_to_clicker
from handlers.slack.context import services_of
from handlers.slack.gateway import send
from storage.models import Image

log = logging.getLogger(__name__)


def approve(
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    context: BoltContext,
    client: WebClient,
) -> None:
    services = services_of(context)
    ack()
    _decide(
        services,
        client,
        body,
        request_id=_int(action.get("value")),
        team_id=str(context.team_id),
        decision="approved",
        reason=None,
    )


def reject(ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
    ack()
    container = body.get("container") or {}
    metadata = {"channel": container.get("channel_id"), "ts": container.get("message_ts")}
    try:
        client.views_open(
            trigger_id=body["trigger_id"],
            view=reject_modal(_int(action.get("value")), metadata),
        )
    except SlackApiError as exc:
        log.info("views.open (reject) failed: %s", exc.response.get("error"))
        _dm(
            client,
            body["user"]["id"],
            "Slack took too long to open the form; click Reject again.",
        )


def reject_submitted(
    ack: Ack,
    body: dict[str, Any],
    view: dict[str, Any],
    context: BoltContext,
    client: WebClient,
) -> None:
    services = services_of(context)
    metadata = json.loads(view.get("private_metadata") or "{}")
    reason = str(
        (view["state"]["values"].get(ids.REASON_BLOCK, {}).get("value") or {}).get("value") or ""
    )
    team_id, user_id = str(context.team_id), str(body["user"]["id"])
    try:
        result = approvals.decide(
            services.factory,
            team_id=team_id,
            request_id=_int(metadata.get("request")),
            user_id=user_id,
            decision="rejected",
            reason=reason,
            is_admin=services.people.is_admin(team_id, user_id),
            now=services.clock(),
        )
    except approvals.ApprovalError as exc:
        ack(response_action="errors", errors={ids.REASON_BLOCK: str(exc)})
        return
    ack()
    show_outcome(services, client, result.request, settled=result.settled)


def cancel_request(
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    context: BoltContext,
    client: WebClient,
) -> None:
    services = services_of(context)
    ack()
    team_id, user_id = str(context.team_id), str(body["user"]["id"])
    try:
        result = approvals.cancel(
            services.factory,
            team_id=team_id,
            request_id=_int(action.get("value")),
            user_id=user_id,
            is_admin=services.people.is_admin(team_id, user_id),
            now=services.clock(),
        )
    except approvals.ApprovalError as exc:
        _dm(client, user_id, str(exc))
        return
    show_outcome(services, client, result.request, settled=result.settled)


def ask(
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    context: BoltContext,
    client: WebClient,
    respond: Respond,
) -> None:
    services = services_of(context)
    ack()
    clicked = visible_to_clicker(
        services, body=body, action=action, context=context, respond=respond
    )
    if clicked is None:
        return
    team_id, user_id, image = clicked
    if image.uploader_id != user_id and not services.people.is_admin(team_id, user_id):
        respond(
            text="Only the person who posted this image, or an admin, can send it for approval.",
            response_type="ephemeral",
            replace_original=False,
        )
        return
    try:
        client.views_open(
            trigger_id=body["trigger_id"],
            view=request_modal(
                image.id, title=image.title, approvers=default_approvers(services.factory, image)
            ),
        )
    except SlackApiError as exc:
        log.info("views.open (request) failed: %s", exc.response.get("error"))
        respond(
            text="Slack took too long to open the form; click again.",
            response_type="ephemeral",
            replace_original=False,
        )


def ask_submitted(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext, client: WebClient
) -> None:
    services = services_of(context)
    team_id, user_id = str(context.team_id), str(body["user"]["id"])
    image_id = _int(json.loads(view.get("private_metadata") or "{}").get("image"))
    values = view["state"]["values"]
    approvers = list(
        (values.get(ids.APPROVERS_BLOCK, {}).get("value") or {}).get("selected_users") or []
    )
    note = str((values.get(ids.NOTE_BLOCK, {}).get("value") or {}).get("value") or "")
    due = (values.get(ids.DUE_BLOCK, {}).get("value") or {}).get("selected_date")
    due_at = datetime.combine(date.fromisoformat(due), time(23, 59), tzinfo=UTC) if due else None
    image = visible(services, team_id=team_id, user_id=user_id, image_id=image_id)
    try:
        if (
            image is not None
            and image.uploader_id != user_id
            and not (services.people.is_admin(team_id, user_id))
        ):
            raise approvals.ApprovalError(
                "Only the person who posted this image, or an admin, can send it for approval.",
                field="approvers",
            )
        if image is None:
            raise approvals.ApprovalError(
                "That image is no longer in the library.", field="approvers"
            )
        check_approvers(
            services.people, team_id=team_id, requester=user_id, approvers=approvers, image=image
        )
        request = approvals.request_approval(
            services.factory,
            team_id=team_id,
            image_id=image_id,
            requested_by=user_id,
            approvers=approvers,
            policy=policy_of(services.factory, image),
            note=note,
            due_at=due_at,
            now=services.clock(),
        )
    except approvals.ApprovalError as exc:
        block = {"due": ids.DUE_BLOCK, "reason": ids.NOTE_BLOCK}.get(
            exc.field or "", ids.APPROVERS_BLOCK
        )
        ack(response_action="errors", errors={block: str(exc)})
        return
    ack()
    send_request(services, client, request)


def show_history(
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    context: BoltContext,
    respond: Respond,
) -> None:
    services = services_of(context)
    ack()
    clicked = visible_to_clicker(
        services, body=body, action=action, context=context, respond=respond
    )
    if clicked is None:
        return
    team_id, _, image = clicked
    text, body_blocks = history_answer(services, team_id=team_id, image=image)
    respond(text=text, blocks=body_blocks, response_type="ephemeral", replace_original=False)


def _decide(
    services: Services,
    client: WebClient,
    body: dict[str, Any],
    *,
    request_id: int,
    team_id: str,
    decision: str,
    reason: str | None,
) -> None:
    user_id = str(body["user"]["id"])
    try:
        result = approvals.decide(
            services.factory,
            team_id=team_id,
            request_id=request_id,
            user_id=user_id,
            decision=decision,
            reason=reason,
            is_admin=services.people.is_admin(team_id, user_id),
            now=services.clock(),
        )
    except approvals.ApprovalError as exc:
        _dm(client, user_id, str(exc))
        return
    # Counted or not (a repeat click, a settled request): every card shows the truth now,
    # including the one clicked (an admin's escalation card is not a recorded card).
    show_outcome(services, client, result.request, settled=result.settled)
    container = body.get("container") or {}
    if container.get("type") == "message" and container.get("message_ts"):
        image = card_image(
            services.factory, services.media, team_id=team_id, image_id=result.request.image_id
        )
        if image is not None:
            text, card = approval_card(result.request, image)
            try:
                client.chat_update(
                    channel=container["channel_id"],
                    ts=container["message_ts"],
                    text=text,
                    blocks=card,
                )
            except SlackApiError as exc:
                log.info("could not refresh the clicked card: %s", exc.response.get("error"))


def history_answer(services: Services, *, team_id: str, image: Image) -> tuple[str, list[Any]]:
    rows = []
    for event in history(services.factory, team_id=team_id, image_id=image.id):
        detail = event.detail or {}
        extra = detail.get("reason") or ", ".join(detail.get("changed") or []) or ""
        rows.append(
            (event.created_at.strftime("%Y-%m-%d %H:%M"), event.actor_id, event.action, str(extra))
        )
    return history_blocks(image.title, rows)


def _int(value: Any) -> int:
    text = str(value or "")
    return int(text) if text.isdigit() else -1


def _dm(client: WebClient, user_id: str, text: str) -> None:
    send("chat.postMessage", lambda: client.chat_postMessage(channel=user_id, text=text))
