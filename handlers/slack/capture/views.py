"""Capture: the private prompt after posting (stored, failed, duplicates)."""

from __future__ import annotations

from bot.prompts import ImageNote, PromptPlan
from handlers.slack.blocks import (
    Block,
    button,
    context,
    escape,
    section,
)
from handlers.slack.capture import ids
from handlers.slack.details import ids as details_ids


def prompt_blocks(plan: PromptPlan) -> tuple[str, list[Block]]:
    """The private message a poster gets once their message's images are settled."""
    stored, failed = plan.stored, plan.failed
    blocks: list[Block] = []
    if stored:
        count = len(stored)
        noun = "image is" if count == 1 else f"{count} images are"
        blocks.append(section(f":frame_with_picture: Your {noun} in the library."))
        for note in stored[:10]:
            blocks.extend(_duplicate_blocks(note))
        missing = plan.needing_details
        if missing:
            blocks.append(
                {
                    "type": "actions",
                    "block_id": "prompt_actions",
                    "elements": [
                        button(
                            "Add details",
                            details_ids.ADD_DETAILS,
                            ",".join(str(n.image_id) for n in missing),
                            style="primary",
                        )
                    ],
                }
            )
            blocks.append(
                context("A title, tags, a category and the shoot date make them easy to find.")
            )
    if failed:
        lines = [
            f"\u2022 *{escape(n.file_name or n.slack_file_id)}*: {escape(n.reason or 'unknown')}"
            for n in failed[:20]
        ]
        noun = "file was" if len(failed) == 1 else f"{len(failed)} files were"
        blocks.append(section(f":warning: This {noun} not kept:\n" + "\n".join(lines)))
    text = f"{len(stored)} image(s) saved to the library" + (
        f", {len(failed)} not kept" if failed else ""
    )
    return text, blocks


def _duplicate_blocks(note: ImageNote) -> list[Block]:
    duplicate = note.duplicate
    if duplicate is None:
        return []
    kind = "the very same file as" if duplicate.exact else "almost the same picture as"
    when = duplicate.created_at.date().isoformat()
    return [
        section(
            f":mag: *{escape(note.title or note.file_name)}* looks like {kind} "
            f"*{escape(duplicate.title or 'an untitled image')}*, "
            f"posted by <@{duplicate.uploader_id}> on {when}."
        ),
        {
            "type": "actions",
            "block_id": f"duplicate:{note.image_id}",
            "elements": [
                button("Keep both", ids.KEEP_DUPLICATE, str(note.image_id)),
                button(
                    "Discard the new one",
                    ids.DISCARD_DUPLICATE,
                    str(note.image_id),
                    style="danger",
                ),
            ],
        },
    ]
