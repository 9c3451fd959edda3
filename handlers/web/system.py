"""What is not a page: Slack's requests and signed media links (the health probe and the
metrics are in `handlers.web.operations`)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request, send_file
from slack_bolt.adapter.flask import SlackRequestHandler

from bot.pixels import InvalidImage
from handlers.web.context import services
from storage.media import CONTENT_TYPES, LocalStore, MediaError

log = logging.getLogger(__name__)
bp = Blueprint("system", __name__)


@bp.post("/slack/events")
def slack_events() -> Any:
    library = services()
    if library.settings.slack_mode == "socket":
        # A Socket Mode app: its requests arrive over the socket, never unsigned here.
        return _plain("Not found\n", 404)
    bolt = current_app.extensions["bolt"]
    if bolt is None:
        return _plain(
            "Slack is not connected: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET.\n", 503
        )
    return SlackRequestHandler(bolt).handle(request)


@bp.get("/slack/install")
@bp.get("/slack/oauth_redirect")
def slack_install() -> Any:
    """Bolt's OAuth flow: the "Add to Slack" page and Slack's redirect back after it. Only
    when the app is installed in any workspace (SLACK_CLIENT_ID without SLACK_BOT_TOKEN)."""
    bolt = current_app.extensions["bolt"]
    if bolt is None or bolt.oauth_flow is None:
        return _plain("Not found\n", 404)
    return SlackRequestHandler(bolt).handle(request)


def install_page(title: str, text: str) -> str:
    """The page after Slack's authorize step (Bolt's OAuth callback, inside this request)."""
    return render_template("installed.html", title=title, text=text)


@bp.get("/media/<path:key>")
def media(key: str) -> Response:
    """Signed, expiring links to originals and thumbnails (the local store's, for Slack)."""
    store = services().media
    if not isinstance(store, LocalStore):
        return _plain("Not found\n", 404)
    # A valid link is ASCII; a raw non-UTF-8 byte (wsgiref, in Socket Mode, passes it on)
    # must fail the signature check like any other bad link, not raise.
    query = request.query_string.decode("utf-8", "replace")
    checked = store.verify_signed_path(request.path, query)
    if checked is None:
        return _plain("This link is invalid or expired\n", 403)
    key, width, height, crop = checked
    try:
        if width and height:
            path = store.thumbnail_path(key, width=width, height=height, crop=crop)
            mimetype = "image/jpeg"
        else:
            path = store.path_for(key)
            mimetype = CONTENT_TYPES.get(path.suffix[1:], "application/octet-stream")
    except FileNotFoundError:
        return _plain("Not found\n", 404)
    except (InvalidImage, MediaError) as exc:
        # An original we stored but cannot preview now (say, a decode over the budget).
        log.warning("no thumbnail for %s: %s", key, exc)
        return _plain("No preview for this image\n", 404)
    response = send_file(path, mimetype=mimetype, max_age=3600, conditional=True)
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def _plain(body: str, status: int) -> Response:
    return Response(body, status, mimetype="text/plain")
