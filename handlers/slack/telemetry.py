"""What an operator sees of Slack's requests: which kind and type each one is (for the metrics
of /slack/events), and the team and event id on every log line written while one is handled.

Bolt runs listeners on its executor's threads, which do not inherit the request thread's
context variables by themselves: `ContextExecutor` hands them on, so a listener's lines (and
the work it starts) name the request they serve.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar
from urllib.parse import parse_qs

from slack_bolt import BoltContext

from bot.logs import name_the_work

P = ParamSpec("P")
T = TypeVar("T")

# Event types this app subscribes to (app_manifest.yml, and the install's lifecycle events);
# any other becomes "other", so a label never takes a value nobody chose.
EVENT_TYPES = frozenset(
    {
        "message",
        "file_shared",
        "app_home_opened",
        "member_joined_channel",
        "app_uninstalled",
        "tokens_revoked",
        "url_verification",
    }
)
# Interactive payload types, by the kind of request they are.
PAYLOAD_KINDS = {
    "block_actions": "action",
    "shortcut": "action",
    "message_action": "action",
    "view_submission": "view",
    "view_closed": "view",
    "block_suggestion": "options",
}


def classify(body: bytes, content_type: str) -> tuple[str, str]:
    """(kind, type) of a request to /slack/events, each from a short fixed list: kind is
    event, command, action, view, options or other; type is the event's or payload's type,
    "command" for a slash command, or "other"."""
    try:
        if content_type.startswith("application/json"):
            envelope = json.loads(body)
            event = envelope.get("event") or {}
            kind_of = str(event.get("type") or envelope.get("type") or "")
            return "event", kind_of if kind_of in EVENT_TYPES else "other"
        form = parse_qs(body.decode(), max_num_fields=64)
    except (ValueError, AttributeError):  # not JSON, not a form, or not an object
        return "other", "other"
    if "command" in form:
        return "command", "command"
    if "payload" in form:
        try:
            payload_type = str(json.loads(form["payload"][0]).get("type"))
        except (ValueError, AttributeError):
            return "other", "other"
        if payload_type in PAYLOAD_KINDS:
            return PAYLOAD_KINDS[payload_type], payload_type
    return "other", "other"


def name_the_request(context: BoltContext, body: dict[str, Any], next: Callable[[], None]) -> None:
    """Bolt middleware: every line logged while this request is handled, here or on the
    listener threads it starts, carries its team and event id. Bolt runs the listeners after
    its middleware has returned, so the names are set rather than scoped: the web door runs
    each request in a context of its own (`handlers.web.operations`), and every request
    from Slack sets them all anew."""
    name_the_work(team=context.team_id, event_id=body.get("event_id"))
    next()


class ContextExecutor(ThreadPoolExecutor):
    """A thread pool that runs each task in a copy of the submitter's context variables."""

    def submit(  # type: ignore[override]
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T]:
        context = contextvars.copy_context()
        return super().submit(context.run, fn, *args, **kwargs)  # type: ignore[arg-type]
