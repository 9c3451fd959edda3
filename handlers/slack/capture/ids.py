"""Capture: the buttons of the prompt after posting, and the message shortcut."""

from __future__ import annotations

KEEP_DUPLICATE = "capture.keep_duplicate"
DISCARD_DUPLICATE = "capture.discard_duplicate"
ADD_TO_LIBRARY_SHORTCUT = "capture.add_to_library"  # app_manifest.yml names it too

# What the same things were called before ids named their surface (see handlers.slack.routing).
OLD = {
    KEEP_DUPLICATE: "keep_duplicate",
    DISCARD_DUPLICATE: "discard_duplicate",
    ADD_TO_LIBRARY_SHORTCUT: "add_to_library",
}
