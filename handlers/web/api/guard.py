"""What every API request goes through: the bearer token (never the web session cookie, so
no page can make a signed-in browser call the API), rate limits, the JSON content type,
and ETags on what it reads."""

from __future__ import annotations

from typing import cast

from flask import g, request
from flask_smorest import Blueprint
from werkzeug.wrappers import Response

from bot.people import Person
from bot.tokens import holder_of
from handlers.web.api.problems import fail
from handlers.web.context import services, workspaces
from handlers.web.security import RateLimit

PREFIX = "/api/v1"
REQUESTS_PER_MINUTE = 600  # per token
FAILED_TOKENS_PER_MINUTE = 30  # per client address: guessing tokens is pointless, and slow
per_token = RateLimit(limit=REQUESTS_PER_MINUTE, window=60.0)
per_address = RateLimit(limit=FAILED_TOKENS_PER_MINUTE, window=60.0)
JSON_TYPES = ("application/json", "application/merge-patch+json")


def api_blueprint(name: str, description: str, kind: type[Blueprint] = Blueprint) -> Blueprint:
    """A blueprint of the API: its views run as the token's person only."""
    blueprint = kind(name, __name__, url_prefix=PREFIX, description=description)
    blueprint.before_request(_authenticate)
    blueprint.before_request(_check_content_type)
    blueprint.after_request(_conditional)
    return blueprint


def person() -> Person:
    found = g.get("api_person")
    if found is None:
        fail(401)
    return cast(Person, found)


def _authenticate() -> None:
    # Whatever the session cookie said (handlers.web.auth.load_person ran first), the API
    # acts only for the token's person.
    g.person = None
    library = services()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    holder = None
    if scheme.lower() == "bearer" and token.strip():
        holder = holder_of(library.factory, token.strip(), now=library.clock())
    if holder is None:
        wait = per_address.wait(request.remote_addr or "?")
        if wait:
            _too_many(wait)
        fail(401)
    if workspaces().gone(holder.team_id):
        fail(401, "The image library is not installed in this token's workspace.")
    facts = library.people.facts(holder.team_id, holder.user_id)
    if facts.deleted or facts.is_bot:
        fail(401, "This token's Slack account is deactivated.")
    wait = per_token.wait(str(holder.token_id))
    if wait:
        _too_many(wait)
    g.api_person = g.person = library.people.person(holder.team_id, holder.user_id)


def _too_many(wait: float) -> None:
    fail(429, headers={"Retry-After": str(max(1, round(wait + 0.5)))})


def _check_content_type() -> None:
    """A body must be of the type the operation documents (JSON, or the upload's
    multipart form); an empty body is no body."""
    if request.method not in ("POST", "PATCH", "PUT") or not _has_body():
        return
    expected = ("multipart/form-data",) if request.endpoint == "uploads.upload" else JSON_TYPES
    if request.mimetype not in expected:
        fail(415, f"Send this request as {' or '.join(expected)}.")


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "")


def _conditional(response: Response) -> Response:
    """Reads carry an ETag of their body; `If-None-Match` with it answers 304, no body. The
    answers are one person's view of the library: no shared cache may keep them."""
    response.headers["Cache-Control"] = "private, no-cache"
    response.vary.add("Authorization")
    if request.method == "GET" and response.status_code == 200 and not response.is_streamed:
        response.add_etag()
        return response.make_conditional(request)  # type: ignore[return-value]
    return response
