"""Approve / Reject on the cards (and App Home), the reason modal, cancelling, asking from a
search result, and an image's history."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, time
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select

from bot import approvals, blocks, ids
from bot.notify import card_image, send_request, show_outcome
from bot.services import Services
from handlers.common import visible, visible_to_clicker
from storage.db import session_scope
from storage.models import Category, Image

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    def approve(
        ack: Ack,
        body: dict[str, Any],
        action: dict[str, Any],
        context: BoltContext,
        client: WebClient,
    ) -> None:
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
                view=blocks.reject_modal(_int(action.get("value")), metadata),
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
        metadata = json.loads(view.get("private_metadata") or "{}")
        reason = str(
            (view["state"]["values"].get(ids.REASON_BLOCK, {}).get("value") or {}).get("value")
            or ""
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
                is_admin=services.admins.is_admin(team_id, user_id),
                now=services.clock(),
            )
        except approvals.ApprovalError as exc:
            ack(response_action="errors", errors={ids.REASON_BLOCK: str(exc)})
            return
        ack()
        show_outcome(services, result.request, settled=result.settled)

    def cancel_request(
        ack: Ack,
        body: dict[str, Any],
        action: dict[str, Any],
        context: BoltContext,
        client: WebClient,
    ) -> None:
        ack()
        team_id, user_id = str(context.team_id), str(body["user"]["id"])
        try:
            result = approvals.cancel(
                services.factory,
                team_id=team_id,
                request_id=_int(action.get("value")),
                user_id=user_id,
                is_admin=services.admins.is_admin(team_id, user_id),
                now=services.clock(),
            )
        except approvals.ApprovalError as exc:
            _dm(client, user_id, str(exc))
            return
        show_outcome(services, result.request, settled=result.settled)

    def ask(
        ack: Ack,
        body: dict[str, Any],
        action: dict[str, Any],
        context: BoltContext,
        client: WebClient,
        respond: Respond,
    ) -> None:
        ack()
        clicked = visible_to_clicker(
            services, body=body, action=action, context=context, respond=respond
        )
        if clicked is None:
            return
        team_id, user_id, image = clicked
        if image.uploader_id != user_id and not services.admins.is_admin(team_id, user_id):
            respond(
                text="Only the person who posted this image, or an admin, can send it for "
                "approval.",
                response_type="ephemeral",
                replace_original=False,
            )
            return
        try:
            client.views_open(
                trigger_id=body["trigger_id"],
                view=blocks.request_modal(
                    image.id, title=image.title, approvers=_default_approvers(services, image)
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
        ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext
    ) -> None:
        team_id, user_id = str(context.team_id), str(body["user"]["id"])
        image_id = _int(json.loads(view.get("private_metadata") or "{}").get("image"))
        values = view["state"]["values"]
        approvers = list(
            (values.get(ids.APPROVERS_BLOCK, {}).get("value") or {}).get("selected_users") or []
        )
        note = str((values.get(ids.NOTE_BLOCK, {}).get("value") or {}).get("value") or "")
        due = (values.get(ids.DUE_BLOCK, {}).get("value") or {}).get("selected_date")
        due_at = (
            datetime.combine(date.fromisoformat(due), time(23, 59), tzinfo=UTC) if due else None
        )
        image = visible(services, team_id=team_id, user_id=user_id, image_id=image_id)
        try:
            if (
                image is not None
                and image.uploader_id != user_id
                and not (services.admins.is_admin(team_id, user_id))
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
                services, team_id=team_id, requester=user_id, approvers=approvers, image=image
            )
            request = approvals.request_approval(
                services.factory,
                team_id=team_id,
                image_id=image_id,
                requested_by=user_id,
                approvers=approvers,
                policy=_policy(services, image),
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
        send_request(services, request)

    def show_history(
        ack: Ack,
        body: dict[str, Any],
        action: dict[str, Any],
        context: BoltContext,
        respond: Respond,
    ) -> None:
        ack()
        clicked = visible_to_clicker(
            services, body=body, action=action, context=context, respond=respond
        )
        if clicked is None:
            return
        team_id, _, image = clicked
        text, body_blocks = history_answer(services, team_id=team_id, image=image)
        respond(text=text, blocks=body_blocks, response_type="ephemeral", replace_original=False)

    app.action(ids.APPROVE)(approve)
    app.action(ids.REJECT)(reject)
    app.view(ids.REJECT_MODAL)(reject_submitted)
    app.action(ids.CANCEL_REQUEST)(cancel_request)
    app.action(ids.REQUEST_APPROVAL)(ask)
    app.view(ids.REQUEST_MODAL)(ask_submitted)
    app.action(ids.SHOW_HISTORY)(show_history)


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
            is_admin=services.admins.is_admin(team_id, user_id),
            now=services.clock(),
        )
    except approvals.ApprovalError as exc:
        _dm(client, user_id, str(exc))
        return
    # Counted or not (a repeat click, a settled request): every card shows the truth now,
    # including the one clicked (an admin's escalation card is not a recorded card).
    show_outcome(services, result.request, settled=result.settled)
    container = body.get("container") or {}
    if container.get("type") == "message" and container.get("message_ts"):
        image = card_image(services, team_id=team_id, image_id=result.request.image_id)
        if image is not None:
            text, card = blocks.approval_card(result.request, image)
            try:
                client.chat_update(
                    channel=container["channel_id"],
                    ts=container["message_ts"],
                    text=text,
                    blocks=card,
                )
            except SlackApiError as exc:
                log.info("could not refresh the clicked card: %s", exc.response.get("error"))


def check_approvers(
    services: Services, *, team_id: str, requester: str, approvers: list[str], image: Image
) -> None:
    """Refuse bots, deactivated people, people who could not see the image, and the
    requester themself (self-approval is not allowed)."""
    if not approvers:
        raise approvals.ApprovalError("Name at least one person to approve it.", field="approvers")
    for approver in approvers:
        facts = services.admins.user(team_id, approver)
        if facts.is_bot:
            raise approvals.ApprovalError(
                f"<@{approver}> is a bot; bots cannot approve.", field="approvers"
            )
        if facts.deleted:
            raise approvals.ApprovalError(
                f"<@{approver}> is no longer in the workspace.", field="approvers"
            )
        if approver == requester:
            raise approvals.ApprovalError(
                "You cannot approve your own request; name someone else.", field="approvers"
            )
        if (image.channel_private or facts.is_guest) and approver not in (
            services.memberships.members(team_id, image.channel_id) or frozenset()
        ):
            raise approvals.ApprovalError(
                f"<@{approver}> cannot see this image (it comes from a channel they are not in).",
                field="approvers",
            )


def history_answer(services: Services, *, team_id: str, image: Image) -> tuple[str, list[Any]]:
    rows = []
    for event in approvals.history(services.factory, team_id=team_id, image_id=image.id):
        detail = event.detail or {}
        extra = detail.get("reason") or ", ".join(detail.get("changed") or []) or ""
        rows.append(
            (event.created_at.strftime("%Y-%m-%d %H:%M"), event.actor_id, event.action, str(extra))
        )
    return blocks.history_blocks(image.title, rows)


def _default_approvers(services: Services, image: Image) -> list[str]:
    with session_scope(services.factory) as session:
        category = session.get(Category, image.category_id) if image.category_id else None
        return list(category.default_approvers) if category else []


def _policy(services: Services, image: Image) -> str:
    with session_scope(services.factory) as session:
        policy = (
            session.scalar(select(Category.approval_policy).where(Category.id == image.category_id))
            if image.category_id
            else None
        )
    return policy or "any"


def _int(value: Any) -> int:
    text = str(value or "")
    return int(text) if text.isdigit() else -1


def _dm(client: WebClient, user_id: str, text: str) -> None:
    try:
        client.chat_postMessage(channel=user_id, text=text)
    except SlackApiError as exc:
        log.info("could not DM %s: %s", user_id, exc.response.get("error"))
