"""Home: the App Home tab, a person's own overview."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.approvals import RequestView
from bot.home import HomeImage
from handlers.slack.approvals import ids as approvals_ids
from handlers.slack.approvals.views import approval_status
from handlers.slack.blocks import (
    Block,
    button,
    context,
    escape,
    mrkdwn,
    plain,
    section,
    tag_line,
)
from handlers.slack.details import ids as details_ids


@dataclass(frozen=True)
class HomeRequest:
    request: RequestView
    title: str


def home_view(
    *,
    missing: Sequence[HomeImage],
    recent: Sequence[HomeImage],
    waiting: Sequence[HomeRequest] = (),
    requests: Sequence[HomeRequest] = (),
) -> Block:
    blocks: list[Block] = [
        {"type": "header", "text": plain("Image library", 150)},
        section(
            "Search everything with `/images <words>`, e.g. `/images CMO tag:launch`. "
            "`/images help` lists all commands."
        ),
    ]
    if waiting:
        blocks.append({"type": "divider"})
        blocks.append({"type": "header", "text": plain("Waiting for your approval", 150)})
        for item in waiting[:8]:
            blocks.append(
                section(
                    f"*{escape(item.title or 'untitled')}* \u00b7 asked by "
                    f"<@{item.request.requested_by}>"
                )
            )
            blocks.append(
                {
                    "type": "actions",
                    "block_id": f"home_approval:{item.request.id}",
                    "elements": [
                        button(
                            "Approve", approvals_ids.APPROVE, str(item.request.id), style="primary"
                        ),
                        button(
                            "Reject", approvals_ids.REJECT, str(item.request.id), style="danger"
                        ),
                    ],
                }
            )
    if requests:
        blocks.append({"type": "divider"})
        blocks.append({"type": "header", "text": plain("My requests", 150)})
        for item in requests[:8]:
            row: Block = section(
                f"*{escape(item.title or 'untitled')}*\n{approval_status(item.request)}"
            )
            if item.request.state == "open":
                row["accessory"] = button(
                    "Cancel", approvals_ids.CANCEL_REQUEST, str(item.request.id)
                )
            blocks.append(row)
    blocks += [
        {"type": "divider"},
        {"type": "header", "text": plain("Still missing details", 150)},
    ]
    if missing:
        for item in missing[:15]:
            blocks.append(
                _home_row(
                    item,
                    button(
                        "Add details", details_ids.ADD_DETAILS, str(item.image_id), style="primary"
                    ),
                )
            )
    else:
        blocks.append(context("Nothing: all your images have their details. :tada:"))
    blocks.append({"type": "divider"})
    blocks.append({"type": "header", "text": plain("My recent uploads", 150)})
    if recent:
        for item in recent[:20]:
            blocks.append(
                _home_row(
                    item, button("Edit details", details_ids.EDIT_DETAILS, str(item.image_id))
                )
            )
    else:
        blocks.append(context("No uploads yet. Post images in a watched channel to add them."))
    return {"type": "home", "blocks": blocks[:100]}


def _home_row(item: HomeImage, action: Block) -> Block:
    title = escape(item.title or "untitled")
    text = (
        f"*{title}*\n{tag_line(item.tags)}\n{item.created.isoformat()} \u00b7 {escape(item.status)}"
    )
    return {"type": "section", "text": mrkdwn(text), "accessory": action}
