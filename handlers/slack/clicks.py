"""What listeners of clicks share: finding the image a button names (if the clicker may see
it), answering privately where the click happened, opening a modal on the click's trigger,
and answering through a response_url."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot.finder import visible_image
from bot.services import Services
from handlers.slack.gateway import respond_with_fallback, send
from storage.models import Image

log = logging.getLogger(__name__)

GONE = "That image is no longer in the library, or not yours to see."
TOO_SLOW = "Slack took too long to open the form. Click the button again, please."


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
    viewer = services.people.viewer(team_id, user_id)
    return visible_image(services.factory, image_id=image_id, viewer=viewer)


def tell(client: WebClient, respond: Respond, body: dict[str, Any], text: str) -> None:
    """Answer privately where the click happened: in the channel, or by DM from App Home."""
    if body.get("response_url"):
        respond(text=text, response_type="ephemeral", replace_original=False)
    else:
        send(
            "chat.postMessage",
            lambda: client.chat_postMessage(channel=body["user"]["id"], text=text),
        )


def open_modal(
    client: WebClient, body: dict[str, Any], view: dict[str, Any], *, say_so: bool = True
) -> str | None:
    """Open a modal on the click's trigger; its view id, or None when Slack refused (then,
    with `say_so`, the person is told to click again: a trigger lives three seconds)."""
    response = send(
        "views.open",
        lambda: client.views_open(trigger_id=body["trigger_id"], view=view),
        ignore=("expired_trigger_id",),  # the person is told, below
    )
    if response is None:
        user_id = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id")
        if channel and say_so:
            send(
                "chat.postEphemeral",
                lambda: client.chat_postEphemeral(channel=channel, user=user_id, text=TOO_SLOW),
            )
        return None
    return str(response["view"]["id"])


def post_to_response_url(url: str, payload: dict[str, Any]) -> None:
    """Send a message through a response_url (without its pictures if Slack refuses them)."""
    from slack_sdk.webhook import WebhookClient

    response = respond_with_fallback(
        lambda **message: WebhookClient(url, timeout=10).send_dict(message), **payload
    )
    if response.status_code != 200:
        log.warning("response_url answered %s: %s", response.status_code, response.body[:200])


def acknowledge(ack: Ack) -> None:
    """A click that needs no answer but its acknowledgement (a link button)."""
    ack()
