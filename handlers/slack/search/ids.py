"""Search: the buttons of a search answer."""

from __future__ import annotations

SEARCH_NEWER = "search.newer"  # two ids: an actions block may not repeat one
SEARCH_OLDER = "search.older"
SHARE_IMAGE = "search.share"

# What the same things were called before ids named their surface (see handlers.slack.routing).
OLD = {
    SEARCH_NEWER: "search_newer",
    SEARCH_OLDER: "search_older",
    SHARE_IMAGE: "share_image",
}
