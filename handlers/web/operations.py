"""For the people running the app: `/healthz` for load balancers, `/metrics` for Prometheus,
and the timing of every answer to Slack at /slack/events.

`/metrics` is not access-controlled per person (and its labels never name one), but it is
still not for everyone: with METRICS_TOKEN set it needs `Authorization: Bearer <token>`;
without, it answers only requests from this machine (behind proxies, TRUSTED_PROXIES makes
the forwarded address the one checked).
"""

from __future__ import annotations

import contextvars
import hmac
import io
import ipaddress
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST

from handlers.slack.telemetry import classify
from handlers.web.context import services
from handlers.web.health import Health
from storage.metrics import SLACK_ACK_SECONDS, SLACK_REQUESTS, LibraryFacts, exposition

bp = Blueprint("operations", __name__)

SLACK_PATH = "/slack/events"
MAX_TIMED_BODY = 1024 * 1024  # Slack's requests are a few kilobytes


def init(app: Flask) -> None:
    """Add /healthz and /metrics, and time every answer to Slack."""
    app.register_blueprint(bp)
    app.extensions["health"] = Health(app.extensions["library"])
    app.wsgi_app = SlackAckTimer(app.wsgi_app)  # type: ignore[method-assign]


@bp.get("/healthz")
def healthz() -> Response:
    answer, status = current_app.extensions["health"].report()
    return Response(json.dumps(answer), status, mimetype="application/json")


@bp.get("/metrics")
def metrics() -> Response:
    library = services()
    refused = _refusal(library.settings.metrics_token)
    if refused is not None:
        return refused
    body = exposition(LibraryFacts(library.factory, library.clock))
    return Response(body, 200, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _refusal(token: str | None) -> Response | None:
    if token is None:
        if _from_this_machine(request.remote_addr):
            return None
        return Response(
            "Set METRICS_TOKEN to read /metrics from another machine.\n", 403, mimetype="text/plain"
        )
    given = request.headers.get("Authorization", "")
    expected = f"Bearer {token}"
    if hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode()):
        return None
    return Response(
        "Send Authorization: Bearer <METRICS_TOKEN>.\n",
        401,
        mimetype="text/plain",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _from_this_machine(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


class SlackAckTimer:
    """WSGI middleware: the time from a request to /slack/events coming in to its answer
    going out (everything the app does before Slack hears back, sign-in hooks included),
    and its outcome, by the kind and type of request."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        # Each request in a context of its own: what one names for the logs (its team, its
        # event) is forgotten when it ends, not inherited by the next on the same thread.
        return contextvars.copy_context().run(self._serve, environ, start_response)

    def _serve(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") != SLACK_PATH or environ.get("REQUEST_METHOD") != "POST":
            return self._app(environ, start_response)
        started = time.perf_counter()
        body = _buffered_body(environ)
        status = ["500"]

        def recording(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            status[0] = status_line.split(" ", 1)[0]
            return start_response(status_line, headers, exc_info)

        try:
            return self._app(environ, recording)
        finally:
            elapsed = time.perf_counter() - started
            kind, kind_of = classify(body, environ.get("CONTENT_TYPE") or "")
            SLACK_ACK_SECONDS.labels(kind=kind).observe(elapsed)
            outcome = _outcome(status[0], retried=bool(environ.get("HTTP_X_SLACK_RETRY_NUM")))
            SLACK_REQUESTS.labels(kind=kind, type=kind_of, outcome=outcome).inc()


def _buffered_body(environ: dict[str, Any]) -> bytes:
    """Read the body once, and hand the app a copy to read again."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return b""
    if not 0 < length <= MAX_TIMED_BODY:
        return b""
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _outcome(status: str, *, retried: bool) -> str:
    """acked; retry (acked, and Slack says it delivered this before: X-Slack-Retry-Num);
    refused_signature (401: not signed with our secret, or too old); error (anything else)."""
    if status.startswith("2"):
        return "retry" if retried else "acked"
    return "refused_signature" if status == "401" else "error"
