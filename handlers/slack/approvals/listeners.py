"""Approvals: Approve / Reject on the cards (and App Home), the reason modal, cancelling,
asking from a search result, and an image's history. Each listener reads the payload, calls
a use case in `bot.decisions` (which tells everyone concerned) and answers the clicker."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, time
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot import decisions
from bot.approval_queue import card_image, history
from bot.approvals import ApprovalError, RequestView
from bot.approvers import default_approvers
from bot.reviews import outside_line, parse_reviewers
from bot.services import Services
from handlers.slack.approvals import ids
from handlers.slack.approvals.send import hand_over_links
from handlers.slack.approvals.views import (
    approval_card,
    history_blocks,
    reject_modal,
    request_modal,
)
from handlers.slack.blocks import escape
from handlers.slack.clicks import open_modal, visible_to_clicker
from handlers.slack.context import services_of
from handlers.slack.gateway import send

log = logging.getLogger(__name__)

TOO_SLOW = "Slack took too long to open the form; click again."


def approve(
    ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext, client: WebClient
) -> None:
    """Answered once the decision is saved: Slack's 200 tells the approver it was taken, so
    a process killed or a database gone before the save must leave them without one (Slack
    shows the click failed, and they click again)."""
    container = body.get("container") or {}
    _decide(
        services_of(context),
        client,
        team_id=str(context.team_id),
        user_id=str(body["user"]["id"]),
        request_id=_int(action.get("value")),
        decision="approved",
        reason=None,
        clicked=(container.get("channel_id"), container.get("message_ts"))
        if container.get("type") == "message"
        else None,
        ack=ack,
        in_modal=False,
    )


def reject(ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
    """Ask why first: a rejection without a reason helps nobody."""
    ack()
    container = body.get("container") or {}
    metadata = {"channel": container.get("channel_id"), "ts": container.get("message_ts")}
    view = reject_modal(_int(action.get("value")), metadata)
    if open_modal(client, body, view, say_so=False) is None:
        _dm(client, body["user"]["id"], "Slack took too long to open the form; click Reject again.")


def reject_submitted(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext, client: WebClient
) -> None:
    metadata = json.loads(view.get("private_metadata") or "{}")
    reason = str(
        (view["state"]["values"].get(ids.REASON_BLOCK, {}).get("value") or {}).get("value") or ""
    )
    _decide(
        services_of(context),
        client,
        team_id=str(context.team_id),
        user_id=str(body["user"]["id"]),
        request_id=_int(metadata.get("request")),
        decision="rejected",
        reason=reason,
        clicked=(metadata.get("channel"), metadata.get("ts")),
        ack=ack,
        in_modal=True,
    )


def cancel_request(
    ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext, client: WebClient
) -> None:
    services = services_of(context)
    ack()
    actor = services.people.person(str(context.team_id), str(body["user"]["id"]))
    try:
        decisions.cancel(services, actor, request_id=_int(action.get("value")))
    except ApprovalError as exc:
        _dm(client, actor.user_id, escape(str(exc)))


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
    if not decisions.may_ask(services.people.person(team_id, user_id), image):
        respond(text=decisions.NOT_THE_POSTER, response_type="ephemeral", replace_original=False)
        return
    view = request_modal(
        image.id, title=image.title, approvers=default_approvers(services.factory, image)
    )
    if open_modal(client, body, view, say_so=False) is None:
        respond(text=TOO_SLOW, response_type="ephemeral", replace_original=False)


def ask_submitted(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext, client: WebClient
) -> None:
    services = services_of(context)
    actor = services.people.person(str(context.team_id), str(body["user"]["id"]))
    values = view["state"]["values"]
    due = (values.get(ids.DUE_BLOCK, {}).get("value") or {}).get("selected_date")
    outside = str((values.get(ids.OUTSIDE_BLOCK, {}).get("value") or {}).get("value") or "")
    try:
        asked = decisions.ask_for_approval(
            services,
            actor,
            image_id=_int(json.loads(view.get("private_metadata") or "{}").get("image")),
            approvers=list(
                (values.get(ids.APPROVERS_BLOCK, {}).get("value") or {}).get("selected_users") or []
            ),
            note=str((values.get(ids.NOTE_BLOCK, {}).get("value") or {}).get("value") or ""),
            due_at=(
                datetime.combine(date.fromisoformat(due), time(23, 59), tzinfo=UTC) if due else None
            ),
            reviewers=parse_reviewers(outside),
            on_saved=lambda _: ack(),  # the modal closes before the approvers are asked
        )
    except ApprovalError as exc:
        block = {
            "due": ids.DUE_BLOCK,
            "reason": ids.NOTE_BLOCK,
            "reviewers": ids.OUTSIDE_BLOCK,
        }.get(exc.field or "", ids.APPROVERS_BLOCK)
        ack(response_action="errors", errors={block: str(exc)})
        return
    hand_over_links(services, client, user_id=actor.user_id, links=asked.links)


def show_history(
    ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext, respond: Respond
) -> None:
    services = services_of(context)
    ack()
    clicked = visible_to_clicker(
        services, body=body, action=action, context=context, respond=respond
    )
    if clicked is None:
        return
    team_id, _, image = clicked
    rows = []
    for event in history(services.factory, team_id=team_id, image_id=image.id):
        detail = event.detail or {}
        line = outside_line(event.action, event.actor_id, detail)
        if line is not None:  # a client's decision: "Approved by Clara (client, via ...)"
            rows.append((event.created_at.strftime("%Y-%m-%d %H:%M"), "", line, ""))
            continue
        extra = (
            detail.get("reason")
            or ", ".join(detail.get("changed") or [])
            or detail.get("label")  # an upload link's
            or ""
        )
        rows.append(
            (event.created_at.strftime("%Y-%m-%d %H:%M"), event.actor_id, event.action, str(extra))
        )
    text, body_blocks = history_blocks(image.title, rows)
    respond(text=text, blocks=body_blocks, response_type="ephemeral", replace_original=False)


def _decide(
    services: Services,
    client: WebClient,
    *,
    team_id: str,
    user_id: str,
    request_id: int,
    decision: str,
    reason: str | None,
    clicked: tuple[str | None, str | None] | None,
    ack: Ack,
    in_modal: bool,
) -> None:
    """Record the decision and answer Slack once it is saved, before the cards are updated
    (every recorded card is by the use case); then refresh the card it was taken on too,
    when that is not one of them (an admin's escalation card). A refusal is shown in the
    reason modal, or (a click) in a DM."""
    actor = services.people.person(team_id, user_id)
    try:
        result = decisions.decide(
            services,
            actor,
            request_id=request_id,
            decision=decision,
            reason=reason,
            on_saved=lambda _: ack(),
        )
    except ApprovalError as exc:
        if in_modal:
            ack(response_action="errors", errors={ids.REASON_BLOCK: str(exc)})
        else:
            ack()
            _dm(client, user_id, escape(str(exc)))
        return
    channel, ts = clicked or (None, None)
    if channel and ts:
        _refresh_card(services, client, result.request, channel=channel, ts=ts)


def _refresh_card(
    services: Services, client: WebClient, request: RequestView, *, channel: str, ts: str
) -> None:
    if any(v.card_channel == channel and v.card_ts == ts for v in request.votes):
        return  # a recorded card: the use case has updated it already
    image = card_image(
        services.factory, services.media, team_id=request.team_id, image_id=request.image_id
    )
    if image is None:
        return
    text, card = approval_card(request, image)
    send(
        "chat.update",
        lambda: client.chat_update(channel=channel, ts=ts, text=text, blocks=card),
        ignore=("message_not_found", "channel_not_found", "cant_update_message"),
    )


def _int(value: Any) -> int:
    text = str(value or "")
    return int(text) if text.isdigit() else -1


def _dm(client: WebClient, user_id: str, text: str) -> None:
    send("chat.postMessage", lambda: client.chat_postMessage(channel=user_id, text=text))
