"""Home: publishing a person's App Home."""

from __future__ import annotations

from slack_sdk import WebClient

from bot.approval_queue import pending_for, requested_by
from bot.home import home_images, titles
from bot.services import Services
from handlers.slack.gateway import send
from handlers.slack.home.views import HomeRequest, home_view


def publish_home(services: Services, client: WebClient, *, team_id: str, user_id: str) -> None:
    missing, recent = home_images(
        services.factory, team_id=team_id, user_id=user_id, media=services.media
    )
    waiting = pending_for(services.factory, team_id=team_id, user_id=user_id)
    mine = requested_by(services.factory, team_id=team_id, user_id=user_id)
    named = titles(
        services.factory, team_id=team_id, image_ids=[r.image_id for r in [*waiting, *mine]]
    )
    view = home_view(
        missing=missing,
        recent=recent,
        waiting=[HomeRequest(r, named.get(r.image_id, "")) for r in waiting],
        requests=[HomeRequest(r, named.get(r.image_id, "")) for r in mine],
    )
    send("views.publish", lambda: client.views_publish(user_id=user_id, view=view))
