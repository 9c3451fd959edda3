"""Approvals: the cards DMed to approvers, kept true as votes come in, and the reminders."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.web import SlackResponse

from bot.approval_queue import REMOVED, Nudge, card_image, record_card, thread_of
from bot.approvals import RequestView
from bot.decisions import review_base_url
from bot.reviews import NewLink, review_url
from bot.services import Services
from handlers.slack.approvals.views import approval_card, approval_status, approvers_line
from handlers.slack.blocks import Block, escape, section
from handlers.slack.gateway import send

log = logging.getLogger(__name__)

OUTCOME_EVENT = "approval_outcome"  # the metadata of the line telling how a request ended


def send_request(services: Services, client: WebClient, request: RequestView) -> None:
    """DM each approver a card, confirm privately to the requester, and say it once in the
    thread of the original post."""
    image = card_image(
        services.factory, services.media, team_id=request.team_id, image_id=request.image_id
    )
    if image is None:
        return
    text, card = approval_card(request, image)
    for approver in request.workspace_approvers:  # clients have their review link instead
        sent = post_card(client, channel=approver, text=text, body=card)
        if sent is None:
            continue
        record_card(
            services.factory,
            request_id=request.id,
            approver_id=approver,
            channel=str(sent["channel"]),
            ts=str(sent["ts"]),
        )
    people = approvers_line(request, request.approvers)
    send(
        "chat.postMessage",
        lambda: client.chat_postMessage(
            channel=request.requested_by,
            text=f"Sent *{escape(image.title or 'your image')}* for approval to {people}.",
        ),
    )
    thread = thread_of(services.factory, request)
    if thread:
        send(
            "chat.postMessage",
            lambda: client.chat_postMessage(
                channel=thread[0], thread_ts=thread[1], text=f"Sent for approval to {people}."
            ),
            ignore=("not_in_channel", "channel_not_found"),
        )
    for user in {request.requested_by, *request.workspace_approvers}:
        services.refresh_home(request.team_id, user)


def hand_over_links(
    services: Services, client: WebClient, *, user_id: str, links: list[NewLink]
) -> None:
    """Tell the requester, privately, about their clients' links: which were e-mailed, and
    the others to forward (the only time anyone sees them). Never in a channel."""
    if not links:
        return
    lines = []
    emailed = [link for link in links if link.emailed]
    if emailed:
        names = ", ".join(escape(f"{link.name} <{link.email}>") for link in emailed)
        lines.append(f"E-mailed a review link to {names}.")
    by_hand = [link for link in links if not link.emailed]
    if by_hand:
        lines.append(
            "Forward each of these review links to its person (anyone holding a link can "
            "approve or reject with it; it works until "
            f"{by_hand[0].expires_at.date().isoformat()}):"
        )
        base = review_base_url(services)
        lines += [
            f"\u2022 {escape(f'{link.name} <{link.email}>')}: {review_url(base, link.token)}"
            for link in by_hand
        ]
    send(
        "chat.postMessage",
        lambda: client.chat_postMessage(channel=user_id, text="\n".join(lines)),
    )


def post_card(
    client: WebClient, *, channel: str, text: str, body: list[Block]
) -> SlackResponse | None:
    """Post a card (the client resends it without its picture when Slack cannot load it);
    None when Slack refused it all the same."""
    return send(
        "chat.postMessage",
        lambda: client.chat_postMessage(channel=channel, text=text, blocks=body),
    )


def show_outcome(
    services: Services,
    client: WebClient,
    request: RequestView,
    *,
    settled: bool,
    told_maybe: bool = False,
) -> None:
    """Make every card tell the truth; when the request just settled, tell the requester in
    the original thread (unless, `told_maybe`, the thread already says it: a process killed
    between telling and recording it told)."""
    image = card_image(
        services.factory, services.media, team_id=request.team_id, image_id=request.image_id
    )
    # Removed from the library: the cards still say what happened.
    text, card = approval_card(request, image or REMOVED)
    for vote in request.votes:
        if vote.card_channel and vote.card_ts:
            send(
                "chat.update",
                lambda v=vote: client.chat_update(
                    channel=v.card_channel, ts=v.card_ts, text=text, blocks=card
                ),
                ignore=("message_not_found", "channel_not_found"),
            )
    if settled:
        thread = thread_of(services.factory, request)
        line = f"<@{request.requested_by}> {approval_status(request)}"
        if thread:
            # The request is named in the line's metadata: one thread can hold the same
            # words about several images of a post.
            told = {"event_type": OUTCOME_EVENT, "event_payload": {"request_id": request.id}}
            if not (told_maybe and _in_thread(client, thread, request.id)):
                send(
                    "chat.postMessage",
                    lambda: client.chat_postMessage(
                        channel=thread[0], thread_ts=thread[1], text=line, metadata=told
                    ),
                    ignore=("not_in_channel", "channel_not_found"),
                )
        else:
            send(
                "chat.postMessage",
                lambda: client.chat_postMessage(channel=request.requested_by, text=line),
            )
    for user in {request.requested_by, *request.workspace_approvers}:
        services.refresh_home(request.team_id, user)


def _in_thread(client: WebClient, thread: tuple[str, str], request_id: int) -> bool:
    """Does the thread already tell this request's outcome? Asked only after a teller died
    mid-telling."""
    replies = send(
        "conversations.replies",
        lambda: client.conversations_replies(
            channel=thread[0], ts=thread[1], limit=1000, include_all_metadata=True
        ),
        ignore=("thread_not_found", "channel_not_found", "not_in_channel"),
    )
    return replies is not None and any(
        (m.get("metadata") or {}).get("event_type") == OUTCOME_EVENT
        and (m["metadata"].get("event_payload") or {}).get("request_id") == request_id
        for m in replies.get("messages") or []
    )


def send_nudge(services: Services, client: WebClient, nudge: Nudge) -> None:
    """A reminder to the approvers still to decide; an escalation to the admins."""
    request = nudge.request
    image = card_image(
        services.factory, services.media, team_id=request.team_id, image_id=request.image_id
    )
    title = escape(image.title if image else "an image")
    waiting = [v.approver_id for v in request.votes if v.decision is None]
    # Clients are reminded by e-mail, if at all (bot.scheduler), never in Slack.
    for approver in (a for a in waiting if a in request.workspace_approvers):
        send(
            "chat.postMessage",
            lambda a=approver: client.chat_postMessage(
                channel=a,
                text=f":bell: Reminder: <@{request.requested_by}> is waiting for your decision "
                f"on *{title}* (the card with the buttons is above).",
            ),
        )
    # Under `all`, an approver who has left can never decide: the admins must.
    gone = [
        a
        for a in waiting
        if a in request.workspace_approvers and services.people.facts(request.team_id, a).deleted
    ]
    stuck = request.policy == "all" and bool(gone)
    if (nudge.escalate or stuck) and image is not None:
        who = approvers_line(request, waiting) or "nobody"
        if stuck:
            why = (
                f"{approvers_line(request, gone)} left the workspace, and every approver "
                "must approve"
            )
        else:
            why = (
                f"it has waited over {services.settings.approval_escalate_hours:g} hours; "
                f"still waiting for {who}"
            )
        text = (
            f":rotating_light: The approval of *{title}* requested by "
            f"<@{request.requested_by}> needs an admin: {why}. You can decide here."
        )
        _, card = approval_card(request, image)
        for admin_id in sorted(services.settings.slack_admin_ids):
            post_card(client, channel=admin_id, text=text, body=[section(text), *card])
