"""Slack's mrkdwn: user text must be escaped before it goes into a message."""

from __future__ import annotations


def escape(text: str) -> str:
    """&, < and > are Slack's control characters (`<!channel>`, `<@U1>`, `<url|label>`)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
