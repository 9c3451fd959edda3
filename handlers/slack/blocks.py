"""Block Kit helpers every surface shares: pure functions, plain data in, dicts out.

Every piece of user text goes through `escape` (mrkdwn) or `plain` (plain_text, trimmed to
Slack's limits) so a tag named `<!channel>` stays text and never pings anyone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.previews import Preview

Block = dict[str, Any]

# The "Open original" link button, on search results and approval cards alike.
OPEN_ORIGINAL = "shared.open_original"


def escape(text: str) -> str:
    """&, < and > are Slack's control characters (`<!channel>`, `<@U1>`, `<url|label>`)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain(text: str, limit: int) -> dict[str, Any]:
    """A plain_text object, never empty, never over `limit` characters."""
    text = text.strip() or "\u2014"
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return {"type": "plain_text", "text": text, "emoji": True}


def mrkdwn(text: str, limit: int = 3000) -> dict[str, Any]:
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return {"type": "mrkdwn", "text": text or " "}


def section(text: str, **extra: Any) -> Block:
    return {"type": "section", "text": mrkdwn(text), **extra}


def context(text: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(text, 2000)]}


def button(text: str, action_id: str, value: str, *, style: str | None = None) -> Block:
    element: Block = {
        "type": "button",
        "text": plain(text, 75),
        "action_id": action_id,
        "value": value[:2000],
    }
    if style:
        element["style"] = style
    return element


def image_block(preview: Preview) -> Block | None:
    """An image block, or None when there is nothing Slack could load."""
    alt = preview.alt[:2000] or "image"
    if preview.image_url:
        return {"type": "image", "image_url": preview.image_url, "alt_text": alt}
    if preview.slack_file_id:
        return {"type": "image", "slack_file": {"id": preview.slack_file_id}, "alt_text": alt}
    return None


def tag_line(tags: Sequence[str]) -> str:
    return " \u00b7 ".join(escape(t) for t in tags) if tags else "no tags"


def message_modal(title: str, text: str) -> Block:
    """A modal that only says something (and can be closed)."""
    return {
        "type": "modal",
        "title": plain(title, 24),
        "close": plain("Close", 24),
        "blocks": [section(text)],
    }
