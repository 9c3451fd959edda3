"""Action and callback ids that name their surface, and the ids things had before.

Messages, modals and App Homes already sitting in Slack carry the ids they were sent with,
so each surface routes its old ids to the same listener: an approval card posted before an
upgrade still approves after it.
"""

from __future__ import annotations

import re


def routed(new: str, old: str) -> re.Pattern[str]:
    """A Bolt constraint matching a surface's id and the id the same thing had before."""
    return re.compile(f"^(?:{re.escape(new)}|{re.escape(old)})$")
