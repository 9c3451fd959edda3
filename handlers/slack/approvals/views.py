"""Approvals: the approver's card, its status line, the request and reject modals,
and the history."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.approval_queue import CardImage
from bot.approvals import OUTSIDE, RequestView
from handlers.slack.approvals import ids
from handlers.slack.blocks import (
    OPEN_ORIGINAL,
    Block,
    button,
    context,
    escape,
    image_block,
    plain,
    section,
    tag_line,
)


def approval_card(request: RequestView, image: CardImage) -> tuple[str, list[Block]]:
    """An approver's DM card. Open: Approve / Reject / Open original. Settled: the truth,
    and no buttons."""
    blocks: list[Block] = []
    picture = image_block(image.preview) if image.preview else None
    if picture:
        blocks.append(picture)
    asked = f"<@{request.requested_by}> asks for your approval"
    if request.note:
        asked += f": \u201c{escape(request.note)}\u201d"
    facts = [
        f"*{escape(image.title or 'untitled')}*",
        tag_line(image.tags),
        " \u00b7 ".join(p for p in (escape(image.category or ""), image.shoot_date or "") if p),
    ]
    blocks.append(section("\n".join(f for f in facts if f)))
    blocks.append(
        context(
            asked + (f" \u00b7 due {request.due_at.date().isoformat()}" if request.due_at else "")
        )
    )
    status = approval_status(request)
    if request.state == "open":
        if request.policy == "all" and request.approved_by:
            blocks.append(context(status))
        elements = [
            button("Approve", ids.APPROVE, str(request.id), style="primary"),
            button("Reject", ids.REJECT, str(request.id), style="danger"),
        ]
        if image.original_url:
            elements.append(
                {
                    "type": "button",
                    "text": plain("Open original", 75),
                    "action_id": OPEN_ORIGINAL,
                    "url": image.original_url[:3000],
                    "value": str(request.image_id),
                }
            )
        blocks.append(
            {"type": "actions", "block_id": f"approval:{request.id}", "elements": elements}
        )
    else:
        blocks.append(section(status))
    return f"Approval request: {escape(image.title or 'an image')}", blocks


def who(request: RequestView, approver_id: str) -> str:
    """An approver as mrkdwn: a mention, or a client's name (never a broken `<@review:3>`)."""
    if approver_id.startswith(OUTSIDE):
        return f"{escape(request.outside.get(approver_id) or 'a client')} (client)"
    return f"<@{approver_id}>"


def approvers_line(request: RequestView, approvers: Sequence[str]) -> str:
    return ", ".join(who(request, a) for a in approvers)


def approval_status(request: RequestView) -> str:
    """One line of truth about a request, the same on every card and thread."""
    when = request.decided_at.strftime("%Y-%m-%d %H:%M UTC") if request.decided_at else ""
    if request.state == "approved":
        people = approvers_line(request, request.approved_by) or "an admin"
        return f":white_check_mark: Approved by {people} at {when}"
    if request.state == "rejected":
        rejection = request.rejection
        by = who(request, rejection.approver_id) if rejection else "an approver"
        reason = f": {escape(rejection.reason)}" if rejection and rejection.reason else ""
        return f":no_entry: Rejected by {by}{reason}"
    if request.state == "cancelled":
        return f":heavy_multiplication_x: Request cancelled {when}".rstrip()
    waiting = [a for a in request.approvers if a not in request.approved_by]
    if request.policy == "all" and request.approved_by:
        done = approvers_line(request, request.approved_by)
        return f"Approved so far by {done}; waiting for {approvers_line(request, waiting)}"
    return ":hourglass_flowing_sand: Waiting for " + approvers_line(request, waiting)


def reject_modal(request_id: int, metadata: dict[str, Any]) -> Block:
    return {
        "type": "modal",
        "callback_id": ids.REJECT_MODAL,
        "title": plain("Reject image", 24),
        "submit": plain("Reject", 24),
        "close": plain("Cancel", 24),
        "private_metadata": json.dumps(dict(metadata, request=request_id))[:3000],
        "blocks": [
            {
                "type": "input",
                "block_id": ids.REASON_BLOCK,
                "label": plain("Why is it rejected?", 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "multiline": True,
                    "max_length": 500,
                },
            }
        ],
    }


def request_modal(image_id: int, *, title: str, approvers: Sequence[str]) -> Block:
    approvers_element: Block = {"type": "multi_users_select", "action_id": "value"}
    if approvers:
        approvers_element["initial_users"] = list(approvers)[:100]
    return {
        "type": "modal",
        "callback_id": ids.REQUEST_MODAL,
        "title": plain("Request approval", 24),
        "submit": plain("Send", 24),
        "close": plain("Cancel", 24),
        "private_metadata": json.dumps({"image": image_id}),
        "blocks": [
            section(f"*{escape(title or 'untitled')}*"),
            {
                "type": "input",
                "block_id": ids.APPROVERS_BLOCK,
                "optional": True,  # clients alone may decide (the use case wants someone)
                "label": plain("Approvers", 2000),
                "element": approvers_element,
            },
            {
                "type": "input",
                "block_id": ids.OUTSIDE_BLOCK,
                "optional": True,
                "label": plain("People outside Slack", 2000),
                "hint": plain(
                    "One per line: Clara Silva <clara@example.com>. Each gets a private link "
                    "to approve or reject.",
                    2000,
                ),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "multiline": True,
                    "max_length": 3000,
                    "placeholder": plain("Clara Silva <clara@example.com>", 150),
                },
            },
            {
                "type": "input",
                "block_id": ids.NOTE_BLOCK,
                "optional": True,
                "label": plain("Note", 2000),
                "element": {"type": "plain_text_input", "action_id": "value", "max_length": 1000},
            },
            {
                "type": "input",
                "block_id": ids.DUE_BLOCK,
                "optional": True,
                "label": plain("Due date", 2000),
                "element": {"type": "datepicker", "action_id": "value"},
            },
        ],
    }


def history_blocks(
    title: str, events: Sequence[tuple[str, str, str, str]]
) -> tuple[str, list[Block]]:
    """(when, actor id, action, detail) rows: who uploaded, edited, asked, decided. A client's
    decision comes as (when, "", the whole line, "")."""
    lines = [
        f"\u2022 {when} \u2014 "
        + (f"<@{actor}> {escape(action.replace('_', ' '))}" if actor else escape(action))
        + (f" ({escape(detail)})" if detail else "")
        for when, actor, action, detail in events[-40:]
    ]
    body = f"*History of {escape(title or 'untitled')}*\n" + ("\n".join(lines) or "Nothing yet.")
    return f"History of {escape(title)}", [section(body)]
