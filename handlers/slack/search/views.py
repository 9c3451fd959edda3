"""Search: a search answer (results, filters, paging, actions) and a shared image."""

from __future__ import annotations

import json
from typing import Any

from bot.finder import Result, ResultPage
from bot.previews import Preview
from handlers.slack.approvals import ids as approvals_ids
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
from handlers.slack.details import ids as details_ids
from handlers.slack.search import ids
from storage.search import COUNT_CAP

STATUS_LABELS = {
    "approved": ":white_check_mark: approved",
    "pending": ":hourglass_flowing_sand: pending approval",
    "rejected": ":no_entry: rejected",
    "draft": ":pencil2: draft",
    "archived": ":file_cabinet: archived",
}


def search_blocks(
    page: ResultPage, *, state: dict[str, Any], with_images: bool = True
) -> tuple[str, list[Block]]:
    """The private answer to a search: a header with the count and the query as understood,
    up to five results with previews and actions, and Newer / Older paging."""
    understood = escape(page.query.describe()) or "everything"
    count = f"{COUNT_CAP:,}+" if page.total > COUNT_CAP else f"{page.total:,}"
    noun = "image" if page.total == 1 else "images"
    blocks: list[Block] = [section(f"*{count} {noun}* for `{understood}`")]
    notes = [escape(p) for p in page.query.problems]
    notes += [
        f"No tag \u201c{escape(typed)}\u201d: showing *{escape(used)}*."
        for typed, used in page.corrected_tags.items()
    ]
    if notes:
        blocks.append(context("\n".join(notes)))
    if not page.results:
        hint = "Nothing found."
        if page.suggestions:
            hint += (
                " Did you mean "
                + ", ".join(
                    f"`tag:{escape(s) if ' ' not in s else chr(34) + escape(s) + chr(34)}`"
                    for s in page.suggestions
                )
                + "?"
            )
        blocks.append(section(hint + " `/images help` shows how to search."))
        return f"No images for {escape(page.query.describe())}", blocks
    for result in page.results:
        image = image_block(result.preview) if with_images else None
        if image is not None:
            blocks.append(image)
        blocks.append(section(_result_text(result, with_link=image is None)))
        actions = [button("Share to channel", ids.SHARE_IMAGE, str(result.image_id))]
        if result.original_url:
            actions.append(
                {
                    "type": "button",
                    "text": plain("Open original", 75),
                    "action_id": OPEN_ORIGINAL,
                    "url": result.original_url[:3000],
                    "value": str(result.image_id),
                }
            )
        if result.can_edit:
            actions.append(button("Edit details", details_ids.EDIT_DETAILS, str(result.image_id)))
        actions.append(
            button("Request approval", approvals_ids.REQUEST_APPROVAL, str(result.image_id))
        )
        actions.append(button("History", approvals_ids.SHOW_HISTORY, str(result.image_id)))
        blocks.append({"type": "actions", "elements": actions})
    paging = []
    if page.newer:
        paging.append(
            button("\u2190 Newer", ids.SEARCH_NEWER, _page_value(state, page.newer.encode()))
        )
    if page.older:
        paging.append(
            button("Older \u2192", ids.SEARCH_OLDER, _page_value(state, page.older.encode()))
        )
    if paging:
        blocks.append({"type": "actions", "block_id": "search_paging", "elements": paging})
    return f"{count} {noun} for {escape(page.query.describe())}", blocks


def _result_text(result: Result, *, with_link: bool) -> str:
    title = escape(result.title or "untitled")
    if with_link and result.original_url:
        title = f"<{result.original_url}|{title}>"
    lines = [
        f"*{title}*",
        tag_line(result.tags),
        " \u00b7 ".join(
            part
            for part in (
                escape(result.category) if result.category else None,
                result.shoot_date,
                f"by <@{result.uploader_id}>",
                STATUS_LABELS.get(result.status, escape(result.status)),
            )
            if part
        ),
    ]
    return "\n".join(lines)


def _page_value(state: dict[str, Any], cursor: str) -> str:
    """A paging button carries the query and where to continue: no server-side session."""
    value = dict(state, cursor=cursor)
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    while len(text) > 2000 and value.get("q"):
        value["q"] = value["q"][: len(value["q"]) - (len(text) - 2000) - 1]
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text


def shared_blocks(
    *,
    title: str,
    preview: Preview,
    sharer: str,
    uploader: str,
    channel_id: str,
    original_url: str | None,
) -> tuple[str, list[Block]]:
    blocks: list[Block] = []
    image = image_block(preview)
    if image is not None:
        blocks.append(image)
    name = escape(title or "an image")
    if image is None and original_url:
        name = f"<{original_url}|{name}>"
    blocks.append(
        context(
            f"*{name}* \u00b7 shared by <@{sharer}> from the image library \u00b7 "
            f"posted by <@{uploader}> in <#{channel_id}>"
        )
    )
    return f"{escape(title)} (shared from the image library)", blocks
