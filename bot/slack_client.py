"""The Web API client every Slack call of the app goes through.

One rule lives here instead of at each call site: a message or view whose preview Slack
cannot load (an image URL it cannot reach, a file it cannot see) fails whole with
`invalid_blocks` / `invalid_arguments`, so it is sent again without its pictures. A person
then sees the titles, buttons and text, never nothing.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

log = logging.getLogger(__name__)

Block = dict[str, Any]


def without_previews(blocks: list[Block]) -> list[Block]:
    """The same blocks without pictures: image blocks dropped, image accessories and
    image elements of context blocks removed (a context left empty is dropped too)."""
    kept: list[Block] = []
    for original in blocks:
        if original.get("type") == "image":
            continue
        block = copy.deepcopy(original)
        if (block.get("accessory") or {}).get("type") == "image":
            del block["accessory"]
        if block.get("type") == "context":
            block["elements"] = [e for e in block.get("elements", []) if e.get("type") != "image"]
            if not block["elements"]:
                continue
        kept.append(block)
    return kept


def _plain_payload(payload: dict[str, Any]) -> dict[str, Any] | None:
    """`payload` with its pictures removed, or None when it had none."""
    plain = dict(payload)
    if isinstance(plain.get("blocks"), list):
        plain["blocks"] = without_previews(plain["blocks"])
    view = plain.get("view")
    if isinstance(view, dict) and isinstance(view.get("blocks"), list):
        plain["view"] = {**view, "blocks": without_previews(view["blocks"])}
    return None if plain == payload else plain


def _preview_failed(exc: SlackApiError) -> bool:
    error = exc.response.get("error")
    messages = " ".join((exc.response.get("response_metadata") or {}).get("messages") or [])
    messages += " ".join(str(e) for e in exc.response.get("errors") or [])
    return error in ("invalid_blocks", "invalid_arguments") and (
        "image" in messages.lower() or "slack_file" in messages.lower()
    )


class SlackClient(WebClient):
    """A WebClient that resends a message or view without previews when Slack could not load
    one of them."""

    def api_call(  # type: ignore[override]
        self, api_method: str, *, json: dict[str, Any] | None = None, **kwargs: Any
    ) -> SlackResponse:
        try:
            return super().api_call(api_method, json=json, **kwargs)
        except SlackApiError as exc:
            plain = _plain_payload(json) if json is not None and _preview_failed(exc) else None
            if plain is None:
                raise
            log.info("%s: Slack could not load a preview; sent without pictures", api_method)
            return super().api_call(api_method, json=plain, **kwargs)


def respond_with_fallback(send: Callable[..., Any], **message: Any) -> Any:
    """Send through a response_url (Bolt's `respond`); when Slack refuses the message because
    of its pictures, send it again without them."""
    sent = send(**message)
    status = getattr(sent, "status_code", 200)
    if status != 200 and isinstance(message.get("blocks"), list):
        plain = without_previews(message["blocks"])
        if plain != message["blocks"]:
            log.info("response_url refused the message (%s); sent without pictures", status)
            sent = send(**{**message, "blocks": plain})
    return sent
