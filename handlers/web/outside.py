"""What every page for people outside the workspace shares (client review links, agency
upload links): a rate limit per client address, and headers that keep the link's token in
this page alone: no referrer to anywhere, no framing, no caching, no indexing."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Response, current_app, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from handlers.web.security import RateLimit

F = TypeVar("F", bound=Callable[..., Any])

# Links carry secrets.token_urlsafe(32): 43 characters, 256 bits.
LINK_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,64}")
visits = RateLimit(limit=120, window=60.0)  # per client address, every outside page


def outside_page(view: F) -> F:
    """Rate limit the view and give its answer the outside pages' headers."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        wait = visits.wait(f"{request.endpoint}:{request.remote_addr}")
        if wait:
            response = make_response(
                render_template(
                    "error.html", code=429, message="Too many requests. Wait a minute."
                ),
                429,
            )
            response.headers["Retry-After"] = str(math.ceil(wait))
        else:
            try:
                response = make_response(view(*args, **kwargs))
            except HTTPException as exc:  # a 404 or 410 of these routes is private too
                response = make_response(current_app.handle_http_exception(exc))
        return _private(response)

    return cast(F, guarded)


def _private(response: Response) -> Response:
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Cache-Control"] = "no-store"
    # add_headers (after_request) keeps this CSP, which has frame-ancestors 'none' too.
    response.headers["X-Frame-Options"] = "DENY"
    return response
