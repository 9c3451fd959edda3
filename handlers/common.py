"""Small pieces the listeners share."""

from __future__ import annotations

from typing import Any

from slack_bolt import BoltContext, Respond

from bot.finder import viewer_for, visible_image
from bot.services import Services
from storage.models import Image

GONE = "That image is no longer in the library, or not yours to see."


def visible_to_clicker(
    services: Services,
    *,
    body: dict[str, Any],
    action: dict[str, Any],
    context: BoltContext,
    respond: Respond,
) -> tuple[str, str, Image] | None:
    """(team, user, image) for a button whose value is an image id the clicker may see;
    otherwise say so privately and return None."""
    team_id, user_id = str(context.team_id), str(body["user"]["id"])
    value = str(action.get("value") or "")
    image = visible(
        services, team_id=team_id, user_id=user_id, image_id=int(value) if value.isdigit() else -1
    )
    if image is None:
        respond(text=GONE, response_type="ephemeral", replace_original=False)
        return None
    return team_id, user_id, image


def visible(services: Services, *, team_id: str, user_id: str, image_id: int) -> Image | None:
    viewer = viewer_for(
        services.factory,
        team_id=team_id,
        user_id=user_id,
        admins=services.admins,
        memberships=services.memberships,
    )
    return visible_image(services.factory, image_id=image_id, viewer=viewer)
