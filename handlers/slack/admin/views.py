"""Admin: the answers to `/images help`, `channels` and `categories`."""

from __future__ import annotations

from collections.abc import Sequence

from bot.admin import CategoryInfo, Watched
from handlers.slack.blocks import (
    Block,
    context,
    escape,
    section,
)


def channels_blocks(watched: Sequence[Watched]) -> tuple[str, list[Block]]:
    if not watched:
        text = (
            "No channel is watched yet. An admin can start with "
            "`/images watch #channel [category]`."
        )
        return text, [section(text)]
    lines = [
        f"\u2022 <#{w.channel_id}>" + (f" \u2192 {escape(w.category)}" if w.category else "")
        for w in watched[:100]
    ]
    return "Watched channels", [section("*Watched channels*\n" + "\n".join(lines))]


def categories_blocks(
    categories: Sequence[CategoryInfo], *, is_admin: bool
) -> tuple[str, list[Block]]:
    if categories:
        lines = [
            f"\u2022 *{escape(c.name)}* \u2014 {c.images} image{'s' if c.images != 1 else ''}"
            for c in categories[:100]
        ]
        body = "*Categories*\n" + "\n".join(lines)
    else:
        body = "No categories yet."
    blocks = [section(body)]
    if is_admin:
        blocks.append(
            context(
                "Admins: `/images categories add <name>` \u00b7 "
                "`/images categories rename <old> to <new>` \u00b7 "
                "`/images categories remove <name> [--move-to <other>]`"
            )
        )
    return "Categories", blocks


def help_blocks() -> tuple[str, list[Block]]:
    text = (
        "*Search*\n"
        "`/images CMO keynote` (or `/images search ...`): every word must match a title, tag, "
        "description, category or the poster's name.\n"
        '\u2022 `"launch party"` a phrase \u00b7 `-draft` without a word\n'
        "\u2022 `tag:CMO` \u00b7 `category:Marketing` or `#Marketing` \u00b7 `by:@ana` \u00b7 "
        "`in:#marketing-shoots`\n"
        "\u2022 `date:2026-11` \u00b7 `date:2026-11-03` \u00b7 `after:2026-01-01` \u00b7 "
        "`before:2026-12-31`\n"
        "\u2022 `status:approved` (also pending, draft; rejected and archived only when asked)\n\n"
        "*Image library commands*\n"
        "\u2022 `/images watch #channel [category]` \u2014 keep images posted there (admins)\n"
        "\u2022 `/images unwatch #channel` \u2014 stop (admins)\n"
        "\u2022 `/images channels` \u2014 which channels are watched\n"
        "\u2022 `/images categories` \u2014 list; admins: `add`, `rename <old> to <new>`, "
        "`remove <name> [--move-to <other>]`\n"
        "\u2022 `/images approvers <category> @ana @ben [any|all]` \u2014 who approves a "
        "category's images (admins)\n"
        "\u2022 `/images help` \u2014 this list\n"
        "Post images in a watched channel, or use the *Add to image library* message "
        "shortcut on any message with images, then add their details."
    )
    return "Image library commands", [section(text)]
