"""Details: the details modal, its options, and the summary after saving."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.details import MAX_DESCRIPTION_LENGTH, MAX_TAG_LENGTH, MAX_TITLE_LENGTH
from bot.details_form import DetailsPrefill, ModalImage
from bot.previews import Preview
from handlers.slack.blocks import (
    Block,
    context,
    escape,
    image_block,
    mrkdwn,
    plain,
    section,
    tag_line,
)
from handlers.slack.details import ids

MAX_TITLES_IN_MODAL = 20  # keeps a many-image modal well under Slack's 100 blocks


def details_modal(
    *,
    images: Sequence[ModalImage],
    has_categories: bool,
    prefill: DetailsPrefill,
    metadata: dict[str, Any],
    previews: Sequence[Preview] = (),
) -> Block:
    """The modal a poster fills in: one title per image, shared tags, category, date,
    description and approvers."""
    blocks: list[Block] = []
    for preview in previews[:3]:
        block = image_block(preview)
        if block:
            blocks.append(block)
    several = len(images) > 1
    for image in images[:MAX_TITLES_IN_MODAL]:
        label = f"Title of {image.file_name}" if several else "Title"
        blocks.append(
            {
                "type": "input",
                "block_id": f"{ids.TITLE_BLOCK}:{image.image_id}",
                "label": plain(label, 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "initial_value": image.title[:MAX_TITLE_LENGTH],
                    "max_length": MAX_TITLE_LENGTH,
                },
            }
        )
    tags_element: Block = {
        "type": "multi_external_select",
        "action_id": ids.TAGS,
        "placeholder": plain("Type to find or add tags", 150),
        "min_query_length": 1,
    }
    if prefill.tags:
        tags_element["initial_options"] = [tag_option(t) for t in prefill.tags[:100]]
    blocks.append(
        {
            "type": "input",
            "block_id": ids.TAGS_BLOCK,
            "optional": True,
            "label": plain("Tags" + (" (for all of them)" if several else ""), 2000),
            "hint": plain("People, products, places, campaigns. Up to 20.", 2000),
            "element": tags_element,
        }
    )
    if has_categories:
        # Searched as one types (any number of categories), not a static list of at most 100
        # that would drop the image's own category when it is not among them.
        category_element: Block = {
            "type": "external_select",
            "action_id": ids.CATEGORY,
            "placeholder": plain("Pick a category", 150),
            "min_query_length": 0,
        }
        if prefill.category is not None:
            category_element["initial_option"] = category_option(*prefill.category)
        blocks.append(
            {
                "type": "input",
                "block_id": ids.CATEGORY_BLOCK,
                "optional": True,
                "label": plain("Category", 2000),
                "element": category_element,
            }
        )
    else:
        blocks.append(
            context(
                "No categories yet. An admin can add one with `/images categories add Marketing`."
            )
        )
    date_element: Block = {"type": "datepicker", "action_id": "value"}
    if prefill.shoot_date:
        date_element["initial_date"] = prefill.shoot_date.isoformat()
    blocks.append(
        {
            "type": "input",
            "block_id": ids.SHOOT_DATE_BLOCK,
            "optional": True,
            "label": plain("Shoot date", 2000),
            "hint": plain("From the camera's EXIF data when it had one.", 2000),
            "element": date_element,
        }
    )
    description: Block = {
        "type": "plain_text_input",
        "action_id": "value",
        "multiline": True,
        "max_length": MAX_DESCRIPTION_LENGTH,
    }
    if prefill.description:
        description["initial_value"] = prefill.description[:MAX_DESCRIPTION_LENGTH]
    blocks.append(
        {
            "type": "input",
            "block_id": ids.DESCRIPTION_BLOCK,
            "optional": True,
            "label": plain("Description", 2000),
            "element": description,
        }
    )
    approvers: Block = {"type": "multi_users_select", "action_id": "value"}
    if prefill.approvers:
        approvers["initial_users"] = list(prefill.approvers)[:100]
    blocks.append(
        {
            "type": "input",
            "block_id": ids.APPROVERS_BLOCK,
            "optional": True,
            "label": plain("Send for approval to", 2000),
            "element": approvers,
        }
    )
    return {
        "type": "modal",
        "callback_id": ids.DETAILS_MODAL,
        "title": plain("Image details", 24),
        "submit": plain("Save", 24),
        "close": plain("Cancel", 24),
        "private_metadata": json.dumps(metadata, separators=(",", ":"))[:3000],
        "blocks": blocks[:100],
    }


def category_option(category_id: int, name: str) -> Block:
    return {"text": plain(name, 75), "value": str(category_id)}


def category_options(categories: Sequence[tuple[int, str]]) -> list[Block]:
    return [category_option(c, n) for c, n in categories[:100]]


def tag_option(tag: str, *, new: bool = False) -> Block:
    text = f"{tag} (new tag)" if new else tag
    return {"text": plain(text, 75), "value": tag[:150]}


def tag_options(suggestions: Sequence[str], *, typed: str) -> list[Block]:
    """Autocomplete answer: the typed text first when it is not a known tag, then matches."""
    options: list[Block] = []
    typed_clean = " ".join(typed.split())
    known = {s.casefold() for s in suggestions}
    if typed_clean and typed_clean.casefold() not in known:
        options.append(tag_option(typed_clean[: MAX_TAG_LENGTH * 3], new=True))
    options.extend(tag_option(s) for s in suggestions)
    return options[:100]


# -- after saving ------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    titles: Sequence[str]
    tags: Sequence[str]
    category: str | None
    shoot_date: date | None
    approvers: Sequence[str]
    previews: Sequence[Preview] = ()


def summary_blocks(summary: Summary) -> tuple[str, list[Block]]:
    """What replaces the prompt once details are saved."""
    blocks: list[Block] = []
    for preview in summary.previews[:5]:
        block = image_block(preview)
        if block:
            blocks.append(block)
    titles = ", ".join(f"*{escape(t)}*" for t in summary.titles[:10])
    if len(summary.titles) > 10:
        titles += f" and {len(summary.titles) - 10} more"
    fields = [
        mrkdwn(f"*Tags*\n{tag_line(summary.tags)}", 2000),
        mrkdwn(f"*Category*\n{escape(summary.category) if summary.category else 'none'}", 2000),
        mrkdwn(
            f"*Shoot date*\n{summary.shoot_date.isoformat() if summary.shoot_date else 'unknown'}",
            2000,
        ),
    ]
    if summary.approvers:
        people = ", ".join(f"<@{a}>" for a in summary.approvers[:20])
        fields.append(mrkdwn(f"*Approval requested from*\n{people}", 2000))
    blocks.append(section(f":white_check_mark: Saved {titles}"))
    blocks.append({"type": "section", "fields": fields})
    return f"Saved details of {len(summary.titles)} image(s)", blocks
