"""`/images <query>`: results privately through the command's response_url, paging in place,
sharing into the channel, opening the original."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.finder import ShareRefused, check_share, search
from bot.previews import preview_for
from bot.services import Services
from handlers.slack.admin.views import help_blocks
from handlers.slack.blocks import escape
from handlers.slack.clicks import visible_to_clicker
from handlers.slack.context import services_of
from handlers.slack.search.views import search_blocks, shared_blocks
from storage.search import Cursor, parse

log = logging.getLogger(__name__)


def run_search(
    services: Services,
    respond: Respond,
    *,
    team_id: str,
    user_id: str,
    text: str,
    cursor: Cursor | None = None,
    replace: bool = False,
) -> None:
    """Search as `user_id` and answer through `respond` (a response_url)."""
    query = parse(text)
    if query.is_empty and not query.problems:
        help_text, help_body = help_blocks()
        respond(text=help_text, blocks=help_body, response_type="ephemeral")
        return
    page = search(services, services.people.person(team_id, user_id), query, cursor=cursor)
    state = {"q": text}
    answer, body = search_blocks(page, state=state)
    sent = respond(text=answer, blocks=body, response_type="ephemeral", replace_original=replace)
    if sent.status_code != 200:
        # A preview Slack could not load fails the whole message: answer without previews.
        log.warning(
            "search answer refused (%s %s); sending it without previews",
            sent.status_code,
            str(sent.body)[:200],
        )
        answer, body = search_blocks(page, state=state, with_images=False)
        respond(text=answer, blocks=body, response_type="ephemeral", replace_original=replace)


def page(
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    context: BoltContext,
    respond: Respond,
) -> None:
    services = services_of(context)
    ack()
    try:
        state = json.loads(action.get("value") or "{}")
    except json.JSONDecodeError:
        state = {}
    cursor = Cursor.decode(str(state.get("cursor", "")))
    run_search(
        services,
        respond,
        team_id=str(context.team_id),
        user_id=str(body["user"]["id"]),
        text=str(state.get("q", "")),
        cursor=cursor,
        replace=True,
    )


def share(
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    context: BoltContext,
    client: WebClient,
    respond: Respond,
) -> None:
    services = services_of(context)
    ack()
    target = str((body.get("channel") or {}).get("id") or "")
    clicked = visible_to_clicker(
        services, body=body, action=action, context=context, respond=respond
    )
    if clicked is None or not target:
        return
    _, user_id, image = clicked
    try:
        info = client.conversations_info(channel=target)["channel"]
        check_share(
            image,
            user_id=user_id,
            target_channel=target,
            target_shared_externally=bool(info.get("is_ext_shared") or info.get("is_shared")),
            people=services.people,
        )
        text, shared = shared_blocks(
            title=image.title,
            preview=preview_for(image, services.media),
            sharer=user_id,
            uploader=image.uploader_id,
            channel_id=image.channel_id,
            original_url=image.permalink,
        )
        client.chat_postMessage(channel=target, text=text, blocks=shared)
    except ShareRefused as exc:
        respond(
            text=f":no_entry: {escape(str(exc))}", response_type="ephemeral", replace_original=False
        )
        return
    except SlackApiError as exc:
        error = exc.response.get("error")
        reason = (
            "I am not in this channel: invite me with /invite @Image Library, then share."
            if error in ("not_in_channel", "channel_not_found")
            else f"Slack refused the post ({error})."
        )
        respond(text=f":warning: {reason}", response_type="ephemeral", replace_original=False)
        return
    respond(
        text=f"Shared *{escape(image.title)}* in <#{target}>.",
        response_type="ephemeral",
        replace_original=False,
    )
