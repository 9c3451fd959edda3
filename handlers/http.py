"""The HTTP surface, as one WSGI app: `/slack/events` (Bolt), `/healthz`, `/`, `/media/...`.

Plain WSGI keeps the sync Bolt app on a WSGI server (gunicorn), where it belongs: the sync
Starlette/FastAPI adapters would block an event loop.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from sqlalchemy import text

from bot.pixels import InvalidImage
from bot.services import Services
from storage.media import CONTENT_TYPES, LocalStore, MediaError

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


class WebApp:
    def __init__(self, services: Services, bolt_app: App | None) -> None:
        self.services = services
        self.bolt = SlackRequestHandler(bolt_app) if bolt_app is not None else None

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/slack/events":
            if self.services.settings.slack_mode == "socket":
                # Socket Mode app: requests are not signed-checked, so none are taken here.
                return _respond(start_response, "404 Not Found", "Not found\n")
            if self.bolt is None:
                return _respond(
                    start_response,
                    "503 Service Unavailable",
                    "Slack is not connected: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET.\n",
                )
            return self.bolt(environ, start_response)
        if method not in ("GET", "HEAD"):
            return _respond(start_response, "405 Method Not Allowed", "Method not allowed\n")
        if path == "/healthz":
            return self.healthz(start_response)
        if path == "/":
            return self.home(start_response)
        if path.startswith("/media/"):
            return self.media(environ, start_response)
        return _respond(start_response, "404 Not Found", "Not found\n")

    def healthz(self, start_response: StartResponse) -> Iterable[bytes]:
        checks: dict[str, Any] = {"slack": self.services.settings.slack_mode}
        status = "200 OK"
        try:
            with self.services.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # report, never crash the probe
            log.warning("health check: database unreachable (%s)", type(exc).__name__)
            checks["database"] = "unreachable"
            status = "503 Service Unavailable"
        checks["media"] = self.services.media.name
        checks["ok"] = status.startswith("200")
        return _respond(start_response, status, json.dumps(checks), "application/json")

    def home(self, start_response: StartResponse) -> Iterable[bytes]:
        settings = self.services.settings
        if settings.slack_mode == "unconfigured":
            body = (
                "<h1>Image library</h1><p><strong>Slack is not connected.</strong></p>"
                "<p>To connect it, create the Slack app from <code>app_manifest.yml</code>, "
                "install it to your workspace, then set:</p><ul>"
                "<li><code>SLACK_BOT_TOKEN</code>: the Bot User OAuth Token (xoxb-...), and</li>"
                "<li><code>SLACK_SIGNING_SECRET</code>: from Basic Information, for HTTP mode "
                "(Slack calls <code>/slack/events</code> on this server), or</li>"
                "<li><code>SLACK_APP_TOKEN</code>: an app-level token (xapp-...) with "
                "<code>connections:write</code>, for Socket Mode (no public URL needed).</li>"
                "</ul><p>Put them in <code>.env</code> or the environment and restart.</p>"
            )
        else:
            body = (
                f"<h1>Image library</h1><p>Connected to Slack ({html.escape(settings.slack_mode)}"
                " mode). Use <code>/images</code> in Slack.</p>"
            )
        page = f"<!doctype html><meta charset=utf-8><title>Image library</title>{body}"
        return _respond(start_response, "200 OK", page, "text/html; charset=utf-8")

    def media(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        store = self.services.media
        if not isinstance(store, LocalStore):
            return _respond(start_response, "404 Not Found", "Not found\n")
        checked = store.verify_signed_path(environ["PATH_INFO"], environ.get("QUERY_STRING", ""))
        if checked is None:
            return _respond(start_response, "403 Forbidden", "This link is invalid or expired\n")
        key, width, height = checked
        try:
            if width and height:
                path = store.thumbnail_path(key, width=width, height=height)
                content_type = "image/jpeg"
            else:
                path = store.path_for(key)
                content_type = CONTENT_TYPES.get(path.suffix[1:], "application/octet-stream")
            handle = path.open("rb")
        except FileNotFoundError:
            return _respond(start_response, "404 Not Found", "Not found\n")
        except (InvalidImage, MediaError) as exc:
            # An original we stored but cannot preview now (say, a decode over the budget).
            log.warning("no thumbnail for %s: %s", key, exc)
            return _respond(start_response, "404 Not Found", "No preview for this image\n")
        start_response(
            "200 OK",
            [
                ("Content-Type", content_type),
                ("Content-Length", str(path.stat().st_size)),
                ("Cache-Control", "private, max-age=3600"),
                ("X-Content-Type-Options", "nosniff"),
            ],
        )
        # Stream originals (up to the size cap) instead of reading them into memory.
        wrapper = environ.get("wsgi.file_wrapper")
        if wrapper is not None:
            return wrapper(handle, 256 * 1024)  # type: ignore[no-any-return]
        return _chunks(handle)


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(256 * 1024):
            yield chunk


def _respond(
    start_response: StartResponse,
    status: str,
    body: str,
    content_type: str = "text/plain; charset=utf-8",
) -> Iterable[bytes]:
    data = body.encode()
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(data)))])
    return [data]
